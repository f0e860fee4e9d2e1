/**
 * Scheduler: the node daemon's loop (reference/freezer.md §5.2).
 *
 *   start    load the job records (store.ts), resume the runs a previous process left, poll, arm timers
 *   poll     every `interval`: deliver the outbox, register the client (until it works), list this
 *            client's jobs, apply their events and definitions, mirror them to the jobs directory.
 *            With --no-api the jobs are the *.conf files of the jobs directory, read again each time.
 *   wake     at each fire time: coalesce missed fire times, drop those later than the grace time, skip
 *            those of a job still running (no overlapping runs), start the others within
 *            `concurrentJobs`, queueing the rest
 *   run      session start, the actions (runner.ts), backup documents and session end to the outbox,
 *            the job's next status
 *   stop     no new runs; in-process actions stop (they run again at the next start), child agents are
 *            left to finish and collected at the next start; one last delivery of the outbox
 *
 * The API may be unreachable at any time: the scheduler then keeps running the jobs it knows, and the
 * reports wait in each job's outbox until the API answers again (outbox.ts: in order, exactly once).
 */
import { createHash } from 'node:crypto';
import { hostname as osHostname } from 'node:os';
import type { SchedulerApi } from './client.js';
import { Outbox } from './outbox.js';
import { Clock, Timer, systemClock } from './clock.js';
import { Job, JobDeps, JobEvent, JobStatus } from './job.js';
import { Log, silentLog } from './log.js';
import { backupRunMetrics, reportId, runReport } from './metrics.js';
import { ActionExecutor, RunControl, runActions } from './runner.js';
import { endBody, startSession } from './sessions.js';
import { ActionRecord, Doc, JobStore } from './store.js';

export type { SchedulerApi } from './client.js';

/** KEEP_COMPLETED_MS: how long the record of a completed job is kept after its last run (7 days). */
export const KEEP_COMPLETED_MS = 7 * 86_400_000;

export interface Capabilities {
  actions: string[];
  modes: string[];
  storages: string[];
  engines: string[];
}

/** FREEZER_CAPABILITIES: freezer-scheduler's defaults (every value it knows). */
export const FREEZER_CAPABILITIES: Capabilities = {
  actions: ['backup', 'restore', 'info', 'admin', 'exec'],
  modes: ['fs', 'mongo', 'mysql', 'sqlserver', 'cinder', 'glance', 'cindernative', 'nova'],
  storages: ['local', 'swift', 'ssh', 's3', 'ftp', 'ftps'],
  engines: ['tar', 'rsync', 'rsyncv2', 'nova', 'osbrick', 'glance'],
};

export interface SchedulerOptions {
  clientId: string;
  /** undefined: --no-api (jobs from the jobs directory's files) */
  api?: SchedulerApi;
  store: JobStore;
  executor: ActionExecutor;
  clock?: Clock;
  log?: Log;
  /** API poll period (Freezer's --interval, default 60 s) */
  intervalMs: number;
  concurrentJobs?: number;
  disableExec?: boolean;
  capabilities?: Capabilities;
  graceMs?: number;
  /** extra keys of the client registration (description...) */
  clientInfo?: Doc;
  sessionRetryMs?: number;
  /** how long stop() waits for in-process actions to stop */
  stopTimeoutMs?: number;
}

export class Scheduler {
  readonly #o: SchedulerOptions;
  readonly #clock: Clock;
  readonly #log: Log;
  readonly #jobs = new Map<string, Job>();
  readonly #runs = new Map<string, Promise<void>>();
  readonly #queue: Job[] = [];
  readonly #shutdown = new AbortController();
  #wakeTimer?: Timer;
  #pollTimer?: Timer;
  #polling?: Promise<void>;
  readonly #outbox?: Outbox;
  #registered = false;
  #stopping = false;
  #deps: JobDeps;

  constructor(o: SchedulerOptions) {
    if (!o.clientId) throw new TypeError('options.clientId must be a non-empty string');
    if (!(o.intervalMs > 0)) throw new RangeError('options.intervalMs must be positive');
    if (o.concurrentJobs !== undefined && !(Number.isInteger(o.concurrentJobs) && o.concurrentJobs >= 1)) {
      throw new RangeError('options.concurrentJobs must be an integer >= 1');
    }
    this.#o = o;
    this.#clock = o.clock ?? systemClock;
    this.#log = o.log ?? silentLog;
    this.#deps = { store: o.store, now: () => this.#clock.now(), log: this.#log, graceMs: o.graceMs, reports: o.api !== undefined };
    if (o.api) this.#outbox = new Outbox({ api: o.api, log: this.#log, jobs: () => this.#jobs.values() });
  }

  /** jobs lists the jobs this scheduler knows. */
  jobs(): Job[] {
    return [...this.#jobs.values()];
  }

  job(id: string): Job | undefined {
    return this.#jobs.get(id);
  }

  /** running is the number of runs in progress. */
  get running(): number {
    return this.#runs.size;
  }

  /** start loads the records, resumes interrupted runs, polls once and arms the timers. */
  async start(): Promise<void> {
    for (const rec of this.#o.store.load((f, e) => this.#log('error', `ignoring damaged job record ${f}: ${(e as Error).message}`))) {
      const job = Job.restore(rec, this.#deps);
      this.#jobs.set(job.id, job);
      if (rec.phase === 'running' && !rec.run) rec.phase = 'scheduled';
    }
    for (const job of this.#jobs.values()) {
      if (job.phase === 'running' && job.rec.run) {
        this.#log('info', `job ${job.id}: resuming run ${job.rec.run.run_id} at action ${job.rec.run.action_index}`);
        this.#execute(job);
      }
    }
    await this.poll();
    this.#armPoll();
    this.#wake();
  }

  /** stop shuts the scheduler down (see the file comment). */
  async stop(): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    this.#wakeTimer?.cancel();
    this.#pollTimer?.cancel();
    this.#shutdown.abort('shutdown');
    const runs = Promise.allSettled([...this.#runs.values()]);
    let timer: Timer | undefined;
    await Promise.race([runs, new Promise<void>((r) => { timer = this.#clock.setTimer(this.#o.stopTimeoutMs ?? 30_000, r); })]);
    timer?.cancel();
    await this.#polling?.catch(() => undefined);
    await this.flush().catch(() => false);
  }

  #armPoll(): void {
    if (this.#stopping) return;
    this.#pollTimer = this.#clock.setTimer(this.#o.intervalMs, () => {
      void this.poll().finally(() => this.#armPoll());
    });
  }

  /** poll runs one poll now (also on SIGHUP: `floe scheduler reload`). */
  poll(): Promise<void> {
    this.#polling ??= this.#pollOnce().finally(() => { this.#polling = undefined; });
    return this.#polling;
  }

  async #pollOnce(): Promise<void> {
    const api = this.#o.api;
    try {
      if (!api) {
        this.#sync(this.#o.store.readJobFiles((f, e) => this.#log('error', `ignoring job file ${f}: ${(e as Error).message}`)), false);
        return;
      }
      if (!(await this.flush())) return;
      if (!this.#registered) {
        await api.registerClient(this.#clientDoc());
        this.#registered = true;
        this.#log('info', `registered client ${this.#o.clientId} at ${api.url}`);
      }
      const docs = await api.listJobs(this.#o.clientId);
      this.#sync(docs.filter((d) => this.#capable(d)), true);
    } catch (err) {
      this.#log('warn', `poll: ${(err as Error).message} (running the known jobs)`);
    }
  }

  #clientDoc(): Doc {
    const c = this.#o.capabilities ?? FREEZER_CAPABILITIES;
    return {
      client_id: this.#o.clientId, hostname: osHostname(), is_central: false,
      supported_actions: c.actions, supported_modes: c.modes, supported_storages: c.storages, supported_engines: c.engines,
      ...this.#o.clientInfo,
    };
  }

  /** #capable: every action of the job is within this node's capabilities (Freezer drops others). */
  #capable(doc: Doc): boolean {
    const c = this.#o.capabilities;
    if (!c) return true;
    for (const ja of (doc.job_actions as Doc[] | undefined) ?? []) {
      const fa = (ja?.freezer_action ?? {}) as Doc;
      const checks: Array<[unknown, string[]]> = [[fa.action, c.actions], [fa.mode, c.modes], [fa.storage, c.storages], [fa.engine_name ?? fa.engine, c.engines]];
      for (const [v, list] of checks) {
        if (typeof v === 'string' && v !== '' && !list.includes(v)) {
          this.#log('debug', `job ${String(doc.job_id)}: '${v}' is not supported here: ignored`);
          return false;
        }
      }
    }
    return true;
  }

  /** #sync applies a list of job documents: new jobs, changed ones, events, and jobs gone. */
  #sync(docs: Doc[], fromApi: boolean): void {
    const seen = new Set<string>();
    for (const doc of docs) {
      if (!doc || typeof doc.job_id !== 'string' || !doc.job_id) continue;
      const id = doc.job_id;
      seen.add(id);
      const hash = createHash('sha1').update(JSON.stringify(doc)).digest('hex');
      let job = this.#jobs.get(id);
      if (!job) {
        job = Job.create(doc, this.#deps);
        this.#jobs.set(id, job);
        job.rec.seen = hash;
        this.#applyEvent(job, job.initialEvent());
      } else {
        // a report still owed means the API's copy is older than ours: wait for the next poll
        if (job.rec.outbox.length > 0 || job.rec.seen === hash) continue;
        job.rec.seen = hash;
        if (job.adopt(doc)) {
          this.#log('info', `job ${id}: schedule changed: ${job.trigger?.describe ?? 'invalid'}`);
          job.reschedule();
        }
        if (job.event) this.#applyEvent(job, job.event);
        else job.save();
      }
      if (fromApi) this.#mirror(job);
    }
    const now = this.#clock.now();
    for (const job of [...this.#jobs.values()]) {
      if (seen.has(job.id)) continue;
      if (job.phase === 'running') {
        if (job.event !== JobEvent.REMOVE) job.processEvent(JobEvent.REMOVE);
      } else if (!fromApi) {
        this.#forget(job);
      } else if (job.status === JobStatus.COMPLETED && job.phase === 'stop') {
        // the API lists no completed job: keep its record (history, `floe scheduler status`) for a while
        if (now - job.endedAt() > KEEP_COMPLETED_MS) this.#forget(job);
        else this.#o.store.dropMirror(job.id);
      } else if (job.rec.outbox.length === 0) {
        this.#forget(job);
      }
    }
    this.#wake();
  }

  #applyEvent(job: Job, event: string): void {
    if (job.processEvent(event) === 'abort-run') {
      this.#log('warn', `job ${job.id}: aborting the running action`);
      job.control?.abort();
    }
    if (job.phase !== 'scheduled') this.#dequeue(job);
    this.kickFlush();
  }

  #mirror(job: Job): void {
    try {
      this.#o.store.writeMirror(job.rec.doc);
    } catch (err) {
      this.#log('error', `cannot save job ${job.id} to ${this.#o.store.jobsDir}: ${(err as Error).message}`);
    }
  }

  #forget(job: Job): void {
    this.#jobs.delete(job.id);
    this.#dequeue(job);
    this.#o.store.forget(job.id);
    this.#log('info', `job ${job.id} removed`);
  }

  #dequeue(job: Job): void {
    const i = this.#queue.indexOf(job);
    if (i >= 0) this.#queue.splice(i, 1);
    job.pending = undefined;
  }

  /** #wake handles every fire time that is due and arms the timer for the next one. */
  #wake(): void {
    if (this.#stopping) return;
    this.#wakeTimer?.cancel();
    const now = this.#clock.now();
    for (const job of this.#jobs.values()) {
      if (job.phase !== 'scheduled' && job.phase !== 'running') continue;
      const d = job.due(now);
      if (d.kind === 'none') continue;
      if (job.phase === 'running') job.consume(d.fire, 'skipped: the previous run is still running');
      else if (d.kind === 'missed') job.consume(d.fire, `missed: more than ${(this.#o.graceMs ?? 3600_000) / 1000} s late`);
      else if (job.pending === undefined) {
        job.pending = d.fire;
        this.#queue.push(job);
      } else {
        job.pending = d.fire; // coalesce with the fire already waiting for a slot
      }
    }
    this.#startQueued();
    let next: number | undefined;
    for (const job of this.#jobs.values()) {
      if ((job.phase !== 'scheduled' && job.phase !== 'running') || job.pending !== undefined) continue;
      const t = job.nextFire();
      if (t !== undefined && (next === undefined || t < next)) next = t;
    }
    if (next !== undefined) this.#wakeTimer = this.#clock.setTimer(next - now, () => this.#wake());
  }

  #startQueued(): void {
    const limit = this.#o.concurrentJobs ?? 1;
    while (this.#runs.size < limit && this.#queue.length > 0 && !this.#stopping) {
      const job = this.#queue.shift()!;
      const fire = job.pending;
      if (fire === undefined || job.phase !== 'scheduled') continue;
      job.beginRun(fire);
      this.kickFlush();
      this.#execute(job);
    }
  }

  /** #execute runs (or resumes) the job's run record in the background. */
  #execute(job: Job): void {
    const p = this.#runJob(job)
      .catch((err) => this.#log('error', `job ${job.id}: ${(err as Error)?.stack ?? String(err)}`))
      .finally(() => {
        this.#runs.delete(job.id);
        if (job.phase === 'removed') this.#forget(job);
        this.kickFlush();
        this.#wake();
      });
    this.#runs.set(job.id, p);
  }

  async #runJob(job: Job): Promise<void> {
    const control = new RunControl(this.#shutdown.signal);
    job.control = control;
    try {
      await this.#runSteps(job, control);
    } finally {
      control.dispose();
    }
  }

  async #runSteps(job: Job, control: RunControl): Promise<void> {
    const run = job.rec.run!;
    if (run.abort) control.abort();
    this.#log('info', `job ${job.id} running (run ${run.run_id}, fire ${new Date(run.fire).toISOString()})`);
    const api = this.#o.api;
    if (job.sessionId && !run.session_started) {
      if (api) {
        const s = await startSession(api, {
          sessionId: job.sessionId, jobId: job.id, tag: job.sessionTag, clock: this.#clock, log: this.#log,
          signal: this.#shutdown.signal, retryMs: this.#o.sessionRetryMs,
        });
        if (s.tag !== job.sessionTag) job.sessionTag = s.tag;
      } else {
        this.#log('warn', `job ${job.id}: session ${job.sessionId} ignored: no API (--no-api)`);
      }
      if (this.#shutdown.signal.aborted) return;
      run.session_started = true;
      job.save();
    }
    if (this.#o.disableExec && run.actions.some((a) => (a.freezer_action as Doc | undefined)?.action === 'exec')) {
      this.#log('warn', `job ${job.id} fails: it contains an exec action and exec actions are disabled (--disable-exec)`);
      run.result = 'fail';
    } else if ((await runActions(run, this.#runEnv(job, control))) === 'interrupted') {
      this.#log('info', `job ${job.id}: run ${run.run_id} interrupted by the shutdown; it resumes at the next start`);
      return;
    }
    if (job.sessionId && api) job.queue('session_end', endBody(job.id, job.sessionTag, run.result), { session_id: job.sessionId });
    job.finishRun();
    this.#o.store.dropRun(run.run_id);
    this.#log('info', `job ${job.id} ${run.result} (run ${run.run_id}); status ${job.status}`);
  }

  #runEnv(job: Job, control: RunControl) {
    const run = job.rec.run!;
    return {
      jobId: job.id,
      executor: this.#o.executor,
      clock: this.#clock,
      control,
      log: this.#log,
      attemptDir: (i: number, attempt: number) => this.#o.store.runDir(run.run_id, i, attempt),
      save: () => job.save(),
      started: (pid: number) => {
        job.setSchedule({ current_pid: pid });
        job.save();
        this.kickFlush();
      },
      finished: (a: ActionRecord) => {
        if (!this.#o.api) return;
        const body = runReport(a, job.sessionId ?? '');
        // queued, and saved by the runner in the same write that records the action's end
        if (body) job.queue('run', body);
      },
      document: (doc: Doc, m: { index: number; attempt: number; exitCode: number; started: number; ended: number; bytesRead?: number; bytesStored?: number }) => {
        if (!this.#o.api) return;
        const metrics = backupRunMetrics({ runId: run.run_id, clientId: this.#o.clientId, ...m });
        // queued, and saved by the runner in the same write that records the action's end
        job.queue('backup', { ...doc, job_id: job.id, run_metrics: metrics }, { report_id: reportId(run.run_id, m.index) });
      },
    };
  }

  /** kickFlush starts delivering the outbox in the background. */
  kickFlush(): void {
    this.#outbox?.kick();
  }

  /** flush delivers every job's outbox; false when the API is unreachable (the rest waits). */
  flush(): Promise<boolean> {
    return this.#outbox ? this.#outbox.flush() : Promise.resolve(true);
  }
}
