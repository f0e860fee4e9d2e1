/**
 * Outbox delivery: the reports each job owes the API (store.ts `outbox`), sent in order, exactly once.
 *
 *   patch        PATCH /jobs/{id}; consecutive ones are merged into one request (job_schedule key by key)
 *   backup       POST /backups; if an earlier attempt may have reached the API (its answer was lost),
 *                the document is first looked up by `run_metrics.report_id`, so it is never recorded twice
 *                (floe's API also answers a repeat with the first backup_id: an agent token may not look)
 *   session_end  POST /sessions/{id}/action {"end": ...}
 *   run          POST /jobs/{id}/runs: one action run's metrics; floe's API is idempotent on the body's
 *                run_id (made before queueing), so posting again after a lost answer is harmless
 * A report leaves the outbox (one atomic record write) only once the API took it, or refused it for
 * good (a 4xx: logged and dropped, as it would fail forever). When the API cannot be reached delivery
 * stops, and the next poll or run tries again. One delivery runs at a time.
 */
import { ApiRequestError } from './client.js';
import type { SchedulerApi } from './client.js';
import type { Job } from './job.js';
import type { Log } from './log.js';
import type { Doc, Report } from './store.js';

export class Outbox {
  readonly #api: SchedulerApi;
  readonly #log: Log;
  readonly #jobs: () => Iterable<Job>;
  #flushing?: Promise<boolean>;
  #again = false;

  constructor(o: { api: SchedulerApi; log: Log; jobs: () => Iterable<Job> }) {
    this.#api = o.api;
    this.#log = o.log;
    this.#jobs = o.jobs;
  }

  /** kick starts a delivery in the background (or asks the running one to go round again). */
  kick(): void {
    if (this.#flushing) {
      this.#again = true;
      return;
    }
    void this.flush();
  }

  /** flush delivers every job's reports; resolves false when the API could not be reached. */
  flush(): Promise<boolean> {
    if (this.#flushing) return this.#flushing;
    this.#flushing = (async () => {
      let ok = true;
      do {
        this.#again = false;
        for (const job of [...this.#jobs()]) {
          if (!(await this.#flushJob(job))) {
            ok = false;
            break;
          }
        }
      } while (ok && this.#again);
      return ok;
    })().finally(() => { this.#flushing = undefined; });
    return this.#flushing;
  }

  async #flushJob(job: Job): Promise<boolean> {
    const api = this.#api;
    while (job.rec.outbox.length > 0) {
      const box = job.rec.outbox;
      const head = box[0];
      let batch: Report[] = [head];
      try {
        if (head.kind === 'patch') {
          batch = [];
          for (const r of box) {
            if (r.kind !== 'patch') break;
            batch.push(r);
          }
          await api.patchJob(job.id, mergePatches(batch));
        } else if (head.kind === 'backup') {
          await this.#postBackup(job, head);
        } else if (head.kind === 'run') {
          await api.postRun(job.id, head.body);
        } else {
          await api.sessionAction(head.session_id!, head.body);
        }
      } catch (err) {
        if (err instanceof ApiRequestError && err.retryable) {
          if (head.kind === 'backup' && err.maybeSent && !head.maybe_sent) {
            head.maybe_sent = true;
            job.save();
          }
          this.#log('debug', `job ${job.id}: report not delivered yet: ${err.message}`);
          return false;
        }
        // an API without run reports (freezer-api) answers 404: not an error of this scheduler
        const level = head.kind === 'run' && err instanceof ApiRequestError && err.status === 404 ? 'warn' : 'error';
        this.#log(level, `job ${job.id}: dropping a ${head.kind} report the API refuses: ${(err as Error).message}`);
      }
      // reports queued meanwhile stay: only the delivered ones leave
      const done = new Set(batch.map((r) => r.seq));
      job.rec.outbox = job.rec.outbox.filter((r) => !done.has(r.seq));
      job.save();
    }
    return true;
  }

  /** #postBackup posts a backup document once: after an ambiguous failure it looks for it first. */
  async #postBackup(job: Job, r: Report): Promise<void> {
    const api = this.#api;
    if (r.maybe_sent && r.report_id) {
      try {
        if ((await api.findBackups([{ report_id: r.report_id }])).length > 0) {
          this.#log('info', `job ${job.id}: backup ${r.report_id} was already recorded`);
          return;
        }
      } catch (err) {
        // an agent token may not list backups (403): post again, a duplicate is unlikely and harmless
        if (!(err instanceof ApiRequestError) || err.retryable) throw err;
        this.#log('warn', `job ${job.id}: cannot check whether backup ${r.report_id} was recorded (${err.message}): posting it again`);
      }
    }
    const id = await api.createBackup(r.body);
    this.#log('info', `job ${job.id}: backup recorded in the API as ${id}`);
  }
}

/** mergePatches folds consecutive PATCH reports into one request (job_schedule merged key by key). */
export function mergePatches(batch: Report[]): Doc {
  const out: Doc = {};
  for (const r of batch) {
    for (const [k, v] of Object.entries(r.body)) {
      if (k === 'job_schedule') out.job_schedule = { ...((out.job_schedule as Doc | undefined) ?? {}), ...(v as Doc) };
      else out[k] = v;
    }
  }
  return out;
}
