/**
 * Store: what the scheduler keeps on disk, under its jobs directory, so it survives the API going away
 * and itself being killed.
 *
 *   <jobs_dir>/job_<job_id>.conf        Freezer's mirror of each job from the API (JSON, indent 4); in
 *                                       --no-api mode the *.conf files there are the jobs (the user's)
 *   <jobs_dir>/.floe/jobs/<id>.json     one JobRecord per job: the job document as this scheduler sees
 *                                       it, its trigger state, the run in progress, the reports not yet
 *                                       delivered to the API (the outbox) and the last runs' metrics
 *   <jobs_dir>/.floe/runs/<run_id>/     per action attempt: action.ini, and the agent's stdout, stderr,
 *                                       pid and exit code (rc) when it runs as a child process
 *   <jobs_dir>/.floe/scheduler.pid      the pid file: one scheduler per jobs directory
 *   <jobs_dir>/.floe/scheduler.log      the daemon's log
 *
 * Exactly-once rests on one rule: every change to a job (a fire consumed, an action finished, a report
 * queued or delivered) is one atomic replacement of that job's record (write, fsync, rename), made
 * before the effect it allows. So a scheduler killed at any instant restarts from a record that says
 * which fire times were consumed, which action was running (and which process ran it), and which reports
 * are still owed; it never runs a fire time twice and never forgets a run.
 * Records are written synchronously: each is a few KiB, and a sync write cannot interleave with another.
 */
import { createHash } from 'node:crypto';
import {
  closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, readdirSync, renameSync, rmSync,
  unlinkSync, writeSync,
} from 'node:fs';
import { basename, join } from 'node:path';
import { FloeError, ExitCode, UsageError, errnoMessage } from '../engine/errors.js';
import type { RunMetrics } from './metrics.js';

export type Doc = Record<string, unknown>;
/** Phase: where a job is in its life on this node (Freezer's StopState / ScheduledState / RunningState). */
export type Phase = 'stop' | 'scheduled' | 'running' | 'removed';

/** ChildRecord: the agent process of the action in progress, when actions run as child processes. */
export interface ChildRecord {
  /** the attempt's directory (stdout, stderr, pid, rc files) */
  dir: string;
  /** the wrapper shell's pid */
  pid: number;
  /** the agent's own pid, once known */
  agent_pid?: number;
}

/** ActionRecord: one finished (or skipped) action of a run. */
export interface ActionRecord {
  index: number;
  action: string;
  result: 'success' | 'fail' | 'aborted' | 'skipped';
  exit_code: number | null;
  attempts: number;
  started: number;
  ended: number;
  bytes_read?: number;
  bytes_stored?: number;
  error?: string;
}

/** RunRecord: the run in progress. Written before each step, so a restart resumes it where it was. */
export interface RunRecord {
  run_id: string;
  /** the trigger fire time this run consumed (epoch ms) */
  fire: number;
  started: number;
  /** the job's actions as they were when the run started (a job edited meanwhile does not change it) */
  actions: Doc[];
  /** the action running, or next to run */
  action_index: number;
  /** the attempt (1-based) of that action */
  attempt: number;
  /** combined result so far: success until an action fails or is aborted */
  result: 'success' | 'fail' | 'aborted';
  done: ActionRecord[];
  session_started: boolean;
  child?: ChildRecord;
  /** an abort was asked for */
  abort?: boolean;
}

export type ReportKind = 'patch' | 'backup' | 'session_end' | 'run';

/** Report: something owed to the API, delivered in order. */
export interface Report {
  seq: number;
  kind: ReportKind;
  /**
   * patch: {job_schedule: {...}, session_tag?}; backup: the agent's document; session_end: {end: {...}};
   * run: the run report (its run_id, a UUID made before it was queued, makes a repeated POST harmless)
   */
  body: Doc;
  session_id?: string;
  /** backup: the key that finds this document again (run_metrics.report_id) */
  report_id?: string;
  /** backup: an attempt may have reached the API (the answer was lost): look before posting again */
  maybe_sent?: boolean;
}

export interface TriggerState {
  /** triggerKey() of the schedule this state belongs to */
  key: string;
  anchor: number | null;
  /** the last fire time consumed (run, skipped or missed) */
  last_fire: number | null;
}

export interface JobRecord {
  format: 1;
  job_id: string;
  doc: Doc;
  phase: Phase;
  trigger: TriggerState;
  run: RunRecord | null;
  outbox: Report[];
  next_seq: number;
  /** the latest runs, newest last (at most HISTORY_RUNS) */
  history: RunMetrics[];
  /** SHA-1 of the job document last read from the API or the job file (unchanged: nothing to do) */
  seen?: string;
}

/** HISTORY_RUNS: runs kept per job for `floe scheduler status` (each is a few hundred bytes). */
export const HISTORY_RUNS = 20;
const ID_RE = /^[\w-]{1,128}$/;

/** fileId is the job id when it is safe as a file name (freezer-api's ids are), else its SHA-1. */
export function fileId(jobId: string): string {
  return ID_RE.test(jobId) ? jobId : createHash('sha1').update(jobId).digest('hex');
}

/** writeAtomic replaces `path` with `data`: a reader or a crash sees the old file or the new one. */
export function writeAtomic(path: string, data: string, mode = 0o600): void {
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w', mode);
  try {
    writeSync(fd, data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}

export class JobStore {
  readonly jobsDir: string;
  readonly stateDir: string;
  readonly #recordsDir: string;
  readonly runsDir: string;

  constructor(jobsDir: string) {
    this.jobsDir = jobsDir;
    this.stateDir = join(jobsDir, '.floe');
    this.#recordsDir = join(this.stateDir, 'jobs');
    this.runsDir = join(this.stateDir, 'runs');
  }

  /** open creates the directories (the state ones private: action files may hold passwords). */
  open(): this {
    try {
      mkdirSync(this.jobsDir, { recursive: true });
      for (const d of [this.stateDir, this.#recordsDir, this.runsDir]) mkdirSync(d, { recursive: true, mode: 0o700 });
    } catch (err) {
      throw new UsageError(`cannot use the jobs directory ${this.jobsDir}: ${errnoMessage(err)}`);
    }
    return this;
  }

  get pidFile(): string {
    return join(this.stateDir, 'scheduler.pid');
  }

  get logFile(): string {
    return join(this.stateDir, 'scheduler.log');
  }

  /** load returns every job record (a damaged one is reported through `onBad` and skipped). */
  load(onBad: (file: string, err: unknown) => void = () => undefined): JobRecord[] {
    const out: JobRecord[] = [];
    if (!existsSync(this.#recordsDir)) return out;
    for (const name of readdirSync(this.#recordsDir).sort()) {
      if (!name.endsWith('.json')) continue;
      const file = join(this.#recordsDir, name);
      try {
        const rec = JSON.parse(readFileSync(file, 'utf8')) as JobRecord;
        if (rec.format !== 1 || typeof rec.job_id !== 'string') throw new Error('not a job record');
        out.push(rec);
      } catch (err) {
        onBad(file, err);
      }
    }
    return out;
  }

  save(rec: JobRecord): void {
    writeAtomic(join(this.#recordsDir, `${fileId(rec.job_id)}.json`), JSON.stringify(rec));
  }

  /** forget removes a job's record and its mirror file. */
  forget(jobId: string): void {
    rmSync(join(this.#recordsDir, `${fileId(jobId)}.json`), { force: true });
    rmSync(this.mirrorPath(jobId), { force: true });
  }

  dropMirror(jobId: string): void {
    rmSync(this.mirrorPath(jobId), { force: true });
  }

  mirrorPath(jobId: string): string {
    return join(this.jobsDir, `job_${fileId(jobId)}.conf`);
  }

  /** writeMirror saves a job document as freezer-scheduler does (job_<id>.conf, JSON, indent 4). */
  writeMirror(doc: Doc): void {
    writeAtomic(this.mirrorPath(String(doc.job_id)), `${JSON.stringify(doc, null, 4)}\n`);
  }

  /**
   * readJobFiles reads the *.conf job files of the jobs directory (--no-api mode, and a first start with
   * the API down). A file without job_id gets a stable one from its name (Freezer draws a random one at
   * every start, which would run the job again after each restart).
   */
  readJobFiles(onBad: (file: string, err: unknown) => void = () => undefined): Doc[] {
    const docs: Doc[] = [];
    if (!existsSync(this.jobsDir)) return docs;
    for (const name of readdirSync(this.jobsDir).sort()) {
      if (!name.toLowerCase().endsWith('.conf')) continue;
      const file = join(this.jobsDir, name);
      try {
        const doc = JSON.parse(readFileSync(file, 'utf8')) as Doc;
        if (!doc || typeof doc !== 'object' || Array.isArray(doc)) throw new Error('not a JSON object');
        if (typeof doc.job_id !== 'string' || doc.job_id === '') {
          doc.job_id = `file-${createHash('sha1').update(basename(name)).digest('hex').slice(0, 16)}`;
        }
        docs.push(doc);
      } catch (err) {
        onBad(file, err);
      }
    }
    return docs;
  }

  /** runDir is a fresh directory for one action attempt of a run. */
  runDir(runId: string, index: number, attempt: number): string {
    const dir = join(this.runsDir, runId, `${index}-${attempt}`);
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    return dir;
  }

  /** dropRun removes a finished run's files. */
  dropRun(runId: string): void {
    rmSync(join(this.runsDir, runId), { recursive: true, force: true });
  }
}

/** SchedulerRunningError: another scheduler holds the pid file of this jobs directory. */
export class SchedulerRunningError extends FloeError {
  readonly pid: number;
  constructor(pid: number, pidFile: string) {
    super('FLOE_ERR_SCHEDULER_RUNNING', `a scheduler is already running with pid ${pid} (pid file ${pidFile})`, ExitCode.FAILURE);
    this.pid = pid;
  }
}

/** readPid returns the pid in a pid file, or undefined. */
export function readPid(pidFile: string): number | undefined {
  try {
    const n = Number(readFileSync(pidFile, 'utf8').trim());
    return Number.isInteger(n) && n > 0 ? n : undefined;
  } catch {
    return undefined;
  }
}

/** isAlive: a process with that pid exists (EPERM: it exists, owned by someone else). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * cmdlineHas: the process's command line contains `needle` (guards against a recycled pid). Where
 * /proc is missing it answers true: the pid alone is trusted.
 */
export function cmdlineHas(pid: number, needle: string): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').includes(needle);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ENOENT' || !existsSync('/proc/self');
  }
}

/** runningScheduler returns the pid of the live scheduler named by a pid file, if there is one. */
export function runningScheduler(pidFile: string): number | undefined {
  const pid = readPid(pidFile);
  return pid !== undefined && isAlive(pid) && cmdlineHas(pid, 'scheduler') ? pid : undefined;
}

/**
 * acquirePidFile makes this process the owner of `pidFile`, created exclusively; a stale file (its
 * process is gone, e.g. after a SIGKILL) is taken over. Throws SchedulerRunningError if one is live.
 */
export function acquirePidFile(pidFile: string, pid = process.pid): void {
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fd = openSync(pidFile, 'wx', 0o644);
      try {
        writeSync(fd, `${pid}\n`);
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new UsageError(`cannot write the pid file ${pidFile}: ${errnoMessage(err)}`);
      }
    }
    const holder = readPid(pidFile);
    if (holder === pid) return;
    const live = runningScheduler(pidFile);
    if (live !== undefined) throw new SchedulerRunningError(live, pidFile);
    try {
      unlinkSync(pidFile);
    } catch {
      // removed by another starting scheduler: try again
    }
  }
  throw new UsageError(`cannot take the pid file ${pidFile}: other schedulers are starting at the same time`);
}

/** releasePidFile removes the pid file if this process owns it. */
export function releasePidFile(pidFile: string, pid = process.pid): void {
  if (readPid(pidFile) === pid) rmSync(pidFile, { force: true });
}
