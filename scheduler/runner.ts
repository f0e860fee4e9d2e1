/**
 * Runner: runs a job's actions in order (reference/freezer.md §5.2 step 5).
 *
 * Rules, as freezer-scheduler: an action runs if it is `mandatory` or every action before it succeeded;
 * a failing action is tried `max_retries` more times, `max_retries_interval` seconds apart (defaults 0
 * and 60); an aborted action is not retried. The job's result is `aborted` or `fail` if an action ended
 * so (the last such one), else `success`. After an abort only mandatory actions run (a post-script that
 * unlocks a database still must).
 *
 * Each action runs through an ActionExecutor (agents.ts: a child process speaking Freezer's agent
 * contract, or the engine in-process). The run record (store.ts) is saved before every step, which is
 * what makes a restart resume the run at the action it was in rather than from the start; an action's
 * end, its result document (queued for the API) and the next step are saved in one write.
 */
import { ExitCode } from '../engine/errors.js';
import type { Clock } from './clock.js';
import type { Log } from './log.js';
import type { ActionRecord, ChildRecord, Doc, RunRecord } from './store.js';

/** Why an action's signal was aborted: the job's abort event, or the scheduler shutting down. */
export const ABORT_REASON = 'abort';
export const SHUTDOWN_REASON = 'shutdown';

/** Freezer's defaults for a job action (scheduler side: freezer/scheduler/scheduler_job.py). */
export const DEFAULT_MAX_RETRIES = 0;
export const DEFAULT_MAX_RETRIES_INTERVAL_S = 60;

/** ActionRequest: one attempt of one action. */
export interface ActionRequest {
  jobId: string;
  runId: string;
  index: number;
  attempt: number;
  /** the freezer_action: agent options with underscores */
  action: Doc;
  /** a fresh directory for this attempt */
  dir: string;
  signal: AbortSignal;
  /** called once the agent runs: its pid, and (child processes) what to record to find it again */
  onStarted?(pid: number, child?: ChildRecord): void;
  /** collect this already started child instead of starting one (after a restart) */
  resume?: ChildRecord;
}

export interface ActionOutcome {
  /** the exit code; 128+N when killed by signal N; -1 when it could not run */
  exitCode: number;
  /** the action's signal was aborted while it ran */
  signalled: boolean;
  /** a resumed child is gone without an exit code: the attempt must be made again */
  lost?: boolean;
  document?: Doc;
  bytesRead?: number;
  bytesStored?: number;
  error?: string;
}

export interface ActionExecutor {
  readonly name: string;
  /** run MUST resolve (never reject) once the action is over. */
  run(req: ActionRequest): Promise<ActionOutcome>;
}

/**
 * RunControl carries the two ways a run is stopped: the job's abort event (the current action ends as
 * `aborted`, later mandatory actions still run) and the scheduler's shutdown (the run stops where it
 * is and resumes at the next start).
 */
export class RunControl {
  aborted = false;
  readonly #shutdown: AbortSignal;
  readonly #onShutdown = () => this.#current?.abort(SHUTDOWN_REASON);
  #current?: AbortController;

  constructor(shutdown: AbortSignal) {
    this.#shutdown = shutdown;
    shutdown.addEventListener('abort', this.#onShutdown, { once: true });
  }

  get shuttingDown(): boolean {
    return this.#shutdown.aborted;
  }

  /** dispose detaches from the scheduler's shutdown signal (call it when the run is over). */
  dispose(): void {
    this.#shutdown.removeEventListener('abort', this.#onShutdown);
  }

  /** actionSignal is the signal of the next action (already aborted on shutdown). */
  actionSignal(): AbortSignal {
    const c = new AbortController();
    this.#current = c;
    if (this.#shutdown.aborted) c.abort(SHUTDOWN_REASON);
    return c.signal;
  }

  /** abort ends the current action as aborted; the run then skips what is not mandatory. */
  abort(): void {
    this.aborted = true;
    this.#current?.abort(ABORT_REASON);
  }
}

/** RunEnv: what runActions needs from the scheduler. */
export interface RunEnv {
  jobId: string;
  executor: ActionExecutor;
  clock: Clock;
  control: RunControl;
  log: Log;
  /** a fresh directory for one attempt */
  attemptDir(index: number, attempt: number): string;
  /** persist the job record (the run record is changed in place) */
  save(): void;
  /** an action's agent started (its pid goes to the API as current_pid) */
  started(pid: number): void;
  /** an action ended (not a skipped one): report its run; saved by the runner in the same write */
  finished?(a: ActionRecord): void;
  /** an action produced a result document (a backup): report it */
  document(doc: Doc, o: { index: number; attempt: number; exitCode: number; started: number; ended: number; bytesRead?: number; bytesStored?: number }): void;
}

function num(v: unknown, dflt: number): number {
  const n = typeof v === 'string' && v.trim() !== '' ? Number(v) : v;
  return typeof n === 'number' && Number.isFinite(n) && n >= 0 ? n : dflt;
}

/**
 * runActions runs (or resumes) the actions of `run` from `run.action_index`. Resolves 'done' when every
 * action has been dealt with (run.result holds the job result), or 'interrupted' on shutdown (the run
 * record says where to resume).
 */
export async function runActions(run: RunRecord, env: RunEnv): Promise<'done' | 'interrupted'> {
  const { control, log } = env;
  for (let i = run.action_index; i < run.actions.length; i++) {
    const ja = run.actions[i];
    const fa = (ja.freezer_action ?? {}) as Doc;
    const name = String(fa.action ?? 'backup');
    const mandatory = ja.mandatory === true;
    if (run.action_index !== i) {
      run.action_index = i;
      run.attempt = 1;
      env.save();
    }
    if (!mandatory && (run.result !== 'success' || control.aborted)) {
      if (control.aborted && run.result === 'success') run.result = 'aborted';
      log('warn', `job ${env.jobId}: skipping ${name} action ${i}`);
      const now = env.clock.now();
      run.done.push({ index: i, action: name, result: 'skipped', exit_code: null, attempts: 0, started: now, ended: now });
      continue;
    }
    const r = await runOne(run, i, fa, ja, env);
    if (r === 'interrupted') return 'interrupted';
  }
  run.action_index = run.actions.length;
  run.attempt = 1;
  env.save();
  return 'done';
}

async function runOne(run: RunRecord, i: number, fa: Doc, ja: Doc, env: RunEnv): Promise<'ok' | 'interrupted'> {
  const { control, log } = env;
  const name = String(fa.action ?? 'backup');
  const tries = num(ja.max_retries, DEFAULT_MAX_RETRIES) + 1;
  const intervalMs = num(ja.max_retries_interval, DEFAULT_MAX_RETRIES_INTERVAL_S) * 1000;
  const started = env.clock.now();
  let last: ActionOutcome = { exitCode: -1, signalled: false };
  let result: 'success' | 'fail' | 'aborted' = 'fail';
  let read = 0;
  let stored = 0;
  while (run.attempt <= tries) {
    const signal = control.actionSignal();
    const resume = run.child;
    const dir = resume?.dir ?? env.attemptDir(i, run.attempt);
    const t0 = env.clock.now();
    last = await env.executor.run({
      jobId: env.jobId, runId: run.run_id, index: i, attempt: run.attempt, action: fa, dir, signal, resume,
      onStarted: (pid, child) => {
        if (child) {
          run.child = child;
          env.save();
        }
        env.started(pid);
      },
    });
    const t1 = env.clock.now();
    // shutdown: a child process keeps running (run.child stays: the next start collects it); an
    // in-process action was stopped and runs again at the next start
    if (signal.aborted && signal.reason === SHUTDOWN_REASON && (last.exitCode !== 0 || run.child)) return 'interrupted';
    run.child = undefined;
    if (last.lost) {
      log('warn', `job ${env.jobId}: ${name} action ${i} was interrupted (${last.error ?? 'no exit code'}): running it again`);
      env.save();
      continue;
    }
    read += last.bytesRead ?? 0;
    stored += last.bytesStored ?? 0;
    if (last.document) {
      env.document(last.document, { index: i, attempt: run.attempt, exitCode: last.exitCode, started: t0, ended: t1, bytesRead: last.bytesRead, bytesStored: last.bytesStored });
    }
    // Freezer: an agent killed by SIGTERM (rc -15) was aborted; floe's agent exits 130 when interrupted
    const aborted = (signal.aborted && signal.reason === ABORT_REASON) || last.exitCode === 128 + 15 || last.exitCode === ExitCode.INTERRUPTED;
    if (last.exitCode === 0) {
      result = 'success';
      log('info', `job ${env.jobId}: ${name} action ${i} succeeded`);
      break;
    }
    if (aborted) {
      result = 'aborted';
      log('warn', `job ${env.jobId}: ${name} action ${i} aborted`);
      break;
    }
    log('warn', `job ${env.jobId}: ${name} action ${i} failed (attempt ${run.attempt}/${tries}, exit code ${last.exitCode})${last.error ? `: ${last.error}` : ''}`);
    run.attempt++;
    env.save();
    if (run.attempt > tries) break;
    const wait = control.actionSignal();
    try {
      await env.clock.sleep(intervalMs, wait);
    } catch {
      if (wait.reason === SHUTDOWN_REASON) return 'interrupted';
      result = 'aborted';
      break;
    }
  }
  run.done.push({
    index: i, action: name, result, exit_code: last.exitCode, attempts: Math.min(run.attempt, tries), started, ended: env.clock.now(),
    bytes_read: read || undefined, bytes_stored: stored || undefined, error: result === 'success' ? undefined : last.error,
  });
  env.finished?.(run.done[run.done.length - 1]);
  if (result !== 'success') run.result = result;
  run.action_index = i + 1;
  run.attempt = 1;
  env.save();
  return 'ok';
}
