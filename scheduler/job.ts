/**
 * Job: one job on this node, its state machine and its record (reference/freezer.md §5.2 steps 3-6).
 *
 * Phases are Freezer's states: stop (StopState), scheduled (ScheduledState), running (RunningState),
 * plus removed. Events arrive in `job_schedule.event` from the API:
 *
 *   phase      start                    stop                       abort                          remove
 *   stop       schedule -> scheduled    status stop                status stop                    removed
 *   scheduled  (clear the event)        unschedule -> status stop  unschedule -> status stop      removed
 *   running    (clear the event)        completed after the run    end the action now: aborted,   removed after
 *                                                                   status aborting, then completed the run
 * A new job starts by itself (Freezer's autostart) unless its status is `stop`. When a run ends the job
 * is `completed` if its trigger has no more fire times or a stop/abort came, else `scheduled` again.
 * Statuses: "" completed stop scheduled running aborting removed. Results: "" success fail aborted.
 * (Freezer's ScheduledState.abort sets status stop but leaves the job scheduled; floe unschedules it.)
 *
 * Every change goes to the API as a PATCH of the job_schedule keys it changed (never the schedule
 * itself, so an edit made meanwhile in the API is not overwritten), queued in the record's outbox and
 * saved in the same atomic write as the change (store.ts).
 */
import { randomBytes } from 'node:crypto';
import { seconds } from './clock.js';
import type { Log } from './log.js';
import { HISTORY_RUNS, JobRecord, JobStore, Doc, Phase, Report, RunRecord } from './store.js';
import { Due, Trigger, dueFire, triggerKey, triggerOf, MISFIRE_GRACE_MS } from './triggers.js';
import { summarize } from './metrics.js';
import type { RunControl } from './runner.js';

export const JobStatus = {
  NONE: '', COMPLETED: 'completed', STOP: 'stop', SCHEDULED: 'scheduled', RUNNING: 'running', ABORTING: 'aborting', REMOVED: 'removed',
} as const;
export const JobEvent = { NONE: '', STOP: 'stop', START: 'start', ABORT: 'abort', REMOVE: 'remove' } as const;
export const JobResult = { NONE: '', SUCCESS: 'success', FAIL: 'fail', ABORTED: 'aborted' } as const;
/** TIME_NULL: Freezer's "not yet" for time_started / time_ended. */
export const TIME_NULL = -1;

/** The job_schedule keys that describe a run's status: this node's to set, never taken from the API. */
const RUN_STATUS_KEYS = ['status', 'result', 'time_started', 'time_ended', 'current_pid'];

export interface JobDeps {
  store: JobStore;
  now: () => number;
  log: Log;
  graceMs?: number;
  /** false (--no-api): nothing is queued for an API */
  reports?: boolean;
}

export class Job {
  rec: JobRecord;
  trigger?: Trigger;
  /** set while a run is in progress */
  control?: RunControl;
  /** a due fire waiting for a free slot (--concurrent-jobs) */
  pending?: number;
  readonly #deps: JobDeps;

  private constructor(rec: JobRecord, deps: JobDeps) {
    this.rec = rec;
    this.#deps = deps;
    this.#parseTrigger();
  }

  /** create makes the record of a job seen for the first time (not saved yet). */
  static create(doc: Doc, deps: JobDeps): Job {
    const copy = structuredClone(doc);
    copy.job_schedule = { ...((copy.job_schedule as Doc | undefined) ?? {}) };
    const rec: JobRecord = {
      format: 1, job_id: String(copy.job_id), doc: copy, phase: 'stop',
      trigger: { key: triggerKey(copy.job_schedule as Doc), anchor: null, last_fire: null },
      run: null, outbox: [], next_seq: 1, history: [],
    };
    return new Job(rec, deps);
  }

  /** restore wraps a record read from disk. */
  static restore(rec: JobRecord, deps: JobDeps): Job {
    return new Job(rec, deps);
  }

  get id(): string {
    return this.rec.job_id;
  }
  get schedule(): Doc {
    return this.rec.doc.job_schedule as Doc;
  }
  get status(): string {
    return String(this.schedule.status ?? '');
  }
  get event(): string {
    return String(this.schedule.event ?? '');
  }
  get phase(): Phase {
    return this.rec.phase;
  }
  get sessionId(): string {
    return typeof this.rec.doc.session_id === 'string' ? this.rec.doc.session_id : '';
  }
  get sessionTag(): number {
    return Number(this.rec.doc.session_tag ?? 0) || 0;
  }
  set sessionTag(tag: number) {
    this.rec.doc.session_tag = tag;
    this.queue('patch', { session_tag: tag });
  }

  /** endedAt is when the job's last run ended (epoch ms), or 0. */
  endedAt(): number {
    const last = this.rec.history[this.rec.history.length - 1];
    const ended = Number(this.schedule.time_ended);
    return Math.max(last?.ended ?? 0, ended > 0 ? ended * 1000 : 0);
  }

  /** initialEvent is what a job seen for the first time does: its event, else Freezer's autostart. */
  initialEvent(): string {
    if (this.event) return this.event;
    return this.status === JobStatus.STOP ? JobEvent.STOP : JobEvent.START;
  }

  /**
   * adopt takes the API's version of the job: its definition (actions, schedule, session) and its event.
   * Run-status keys stay this node's. Returns true when the schedule changed (the trigger restarts).
   */
  adopt(apiDoc: Doc): boolean {
    const local = this.schedule;
    const doc = structuredClone(apiDoc);
    const js: Doc = { ...((doc.job_schedule as Doc | undefined) ?? {}) };
    for (const k of RUN_STATUS_KEYS) {
      if (k in local) js[k] = local[k];
      else delete js[k];
    }
    doc.job_schedule = js;
    this.rec.doc = doc;
    const key = triggerKey(js);
    if (key === this.rec.trigger.key) return false;
    this.rec.trigger = { key, anchor: null, last_fire: null };
    this.#parseTrigger();
    return true;
  }

  #parseTrigger(): void {
    try {
      this.trigger = triggerOf(this.schedule);
    } catch (err) {
      this.trigger = undefined;
      this.#deps.log('error', `job ${this.id}: unable to schedule: ${(err as Error).message}`);
    }
  }

  /** queue adds a report to the outbox (saved with the next save). */
  queue(kind: Report['kind'], body: Doc, extra: Partial<Report> = {}): void {
    if (this.#deps.reports === false) return;
    this.rec.outbox.push({ seq: this.rec.next_seq++, kind, body, ...extra });
  }

  /** setSchedule changes run-status keys locally and queues the PATCH that tells the API. */
  setSchedule(fields: Doc): void {
    Object.assign(this.schedule, fields);
    this.queue('patch', { job_schedule: { ...fields } });
  }

  save(): void {
    this.#deps.store.save(this.rec);
  }

  /**
   * processEvent applies an event (table in the file comment) and saves. Returns 'abort-run' when the
   * running action must be stopped now.
   */
  processEvent(event: string): 'abort-run' | undefined {
    const phase = this.rec.phase;
    let out: 'abort-run' | undefined;
    this.#deps.log('info', `job ${this.id} event: ${event || '(none)'} (${phase})`);
    if (event === JobEvent.REMOVE) {
      if (phase === 'running') this.schedule.event = JobEvent.REMOVE;
      else this.#remove();
    } else if (phase === 'running') {
      if (event === JobEvent.START) this.setSchedule({ event: '' });
      else if (event === JobEvent.STOP) this.schedule.event = JobEvent.STOP;
      else if (event === JobEvent.ABORT && this.status !== JobStatus.ABORTING) {
        this.schedule.event = JobEvent.ABORT;
        this.setSchedule({ status: JobStatus.ABORTING });
        this.rec.run && (this.rec.run.abort = true);
        out = 'abort-run';
      }
    } else if (event === JobEvent.START) {
      if (phase === 'stop') this.#schedule(true);
      else this.setSchedule({ event: '' });
    } else if (event === JobEvent.STOP || event === JobEvent.ABORT) {
      this.#unschedule();
      this.setSchedule({ event: '', status: JobStatus.STOP });
    }
    this.save();
    return out;
  }

  /** reschedule restarts a scheduled job's trigger after its schedule changed. */
  reschedule(): void {
    if (this.rec.phase !== 'scheduled') return;
    this.#schedule(false);
    this.save();
  }

  #schedule(fresh: boolean): void {
    if (fresh) this.rec.trigger = { key: triggerKey(this.schedule), anchor: null, last_fire: null };
    this.pending = undefined;
    const now = this.#deps.now();
    if (this.trigger && this.rec.trigger.anchor === null) this.rec.trigger.anchor = this.trigger.anchor(now);
    const next = this.nextFire();
    this.rec.phase = next === undefined ? 'stop' : 'scheduled';
    this.setSchedule({ event: '', status: next === undefined ? JobStatus.COMPLETED : JobStatus.SCHEDULED });
  }

  #unschedule(): void {
    this.pending = undefined;
    this.rec.phase = 'stop';
  }

  #remove(): void {
    this.pending = undefined;
    this.rec.phase = 'removed';
    this.schedule.status = JobStatus.REMOVED;
  }

  /** nextFire is the next fire time not yet consumed, or undefined (not scheduled, or no more). */
  nextFire(): number | undefined {
    const t = this.rec.trigger;
    if (!this.trigger || t.anchor === null) return undefined;
    return this.trigger.next(t.anchor, t.last_fire ?? undefined);
  }

  /** due says what the trigger asks for now (coalesced, with the misfire grace time). */
  due(now: number): Due {
    const t = this.rec.trigger;
    if (!this.trigger || t.anchor === null) return { kind: 'none' };
    return dueFire(this.trigger, t.anchor, t.last_fire ?? undefined, now, this.#deps.graceMs ?? MISFIRE_GRACE_MS);
  }

  /** consume marks a fire time as dealt with without a run (missed, or skipped while running). */
  consume(fire: number, why: string): void {
    this.rec.trigger.last_fire = fire;
    this.#deps.log('warn', `job ${this.id}: run of ${new Date(fire).toISOString()} ${why}`);
    if (this.rec.phase === 'scheduled' && this.nextFire() === undefined) {
      this.rec.phase = 'stop';
      this.setSchedule({ status: JobStatus.COMPLETED });
    }
    this.save();
  }

  /** beginRun consumes `fire` and records the new run; saved before anything runs. */
  beginRun(fire: number): RunRecord {
    const now = this.#deps.now();
    this.pending = undefined;
    this.rec.trigger.last_fire = fire;
    const run: RunRecord = {
      run_id: `${seconds(now)}-${randomBytes(4).toString('hex')}`,
      fire, started: now,
      actions: structuredClone((this.rec.doc.job_actions as Doc[] | undefined) ?? []),
      action_index: 0, attempt: 1, result: 'success', done: [], session_started: false,
    };
    this.rec.run = run;
    this.rec.phase = 'running';
    this.setSchedule({ status: JobStatus.RUNNING, result: '', time_started: seconds(now), time_ended: TIME_NULL });
    this.save();
    return run;
  }

  /**
   * finishRun records the run's end (Freezer's finish()): result, time_ended, the next status, the
   * metrics in the history. Session end is queued by the caller before this.
   */
  finishRun(): void {
    const run = this.rec.run;
    if (!run) return;
    const now = this.#deps.now();
    const result = run.result;
    this.rec.history.push(summarize(run, this.id, result, now, run.done));
    if (this.rec.history.length > HISTORY_RUNS) this.rec.history.splice(0, this.rec.history.length - HISTORY_RUNS);
    this.rec.run = null;
    this.control = undefined;
    const fields: Doc = { result, time_ended: seconds(now) };
    const event = this.event;
    // the schedule changed during the run: its trigger starts now
    if (this.trigger && this.rec.trigger.anchor === null) this.rec.trigger.anchor = this.trigger.anchor(now);
    if (event === JobEvent.REMOVE) {
      this.#remove();
    } else if (event === JobEvent.STOP || event === JobEvent.ABORT || this.nextFire() === undefined) {
      this.rec.phase = 'stop';
      Object.assign(fields, { status: JobStatus.COMPLETED, event: '' });
    } else {
      this.rec.phase = 'scheduled';
      fields.status = JobStatus.SCHEDULED;
    }
    this.setSchedule(fields);
    this.save();
  }
}
