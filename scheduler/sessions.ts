/**
 * Sessions: jobs on several nodes that start together (reference/freezer.md §5.3).
 *
 * Before a session member's run, the scheduler asks `POST /sessions/{sid}/action {"start": {job_id,
 * current_tag}}`. The API answers with the session's tag and one of:
 *   success       this node's run belongs to the session's current round (it may have opened it: the
 *                 first member to start outside the `hold_off` window after the last round starts a new one)
 *   hold-off      this job already started in the current round, less than hold_off seconds ago
 *   out-of-sync   this job's tag is behind and the round's window is over
 * On success the returned tag becomes the job's `session_tag`. After the run, `{"end": {job_id,
 * current_tag, result}}` records the result (the session's is `fail` if any member's is not `success`).
 *
 * As freezer-scheduler, start is tried up to START_TRIES times and the job runs anyway if it never
 * succeeds (a backup is worth more than a perfectly grouped one). floe adds two things: it waits a
 * little between tries (Freezer retries at once, so a restarting API or a hold-off is never outlasted),
 * and on `out-of-sync` it takes the session's tag, which lets a node that missed rounds join the next
 * one instead of staying out of sync forever. `end` is a report in the job's outbox (store.ts), so an
 * API that is down when the run ends still gets it later.
 */
import type { ApiClient } from './client.js';
import { ApiRequestError } from './client.js';
import type { Clock } from './clock.js';
import type { Log } from './log.js';

/** START_TRIES: Freezer's five attempts. */
export const START_TRIES = 5;
/** START_RETRY_MS: the pause between attempts (a hold-off window is seconds long; the API restarts fast). */
export const START_RETRY_MS = 1000;

export interface SessionStart {
  /** the session accepted the start */
  started: boolean;
  /** the tag the job has now */
  tag: number;
  /** the API's last answer ("success", "hold-off", "out-of-sync") or the last error */
  answer: string;
}

/** startSession asks the session to let job `jobId` start; it never throws (the job runs anyway). */
export async function startSession(
  api: Pick<ApiClient, 'sessionAction'>, o: { sessionId: string; jobId: string; tag: number; clock: Clock; log: Log; signal?: AbortSignal; retryMs?: number },
): Promise<SessionStart> {
  let tag = o.tag;
  let answer = '';
  for (let attempt = 1; attempt <= START_TRIES; attempt++) {
    try {
      const r = await api.sessionAction(o.sessionId, { start: { job_id: o.jobId, current_tag: tag } });
      answer = r.result;
      if (r.result === 'success') {
        o.log('info', `session ${o.sessionId}: job ${o.jobId} started (session tag ${r.session_tag})`);
        return { started: true, tag: r.session_tag, answer };
      }
      if (r.result === 'out-of-sync') {
        o.log('warn', `session ${o.sessionId}: job ${o.jobId} is out of sync (tag ${tag}, session ${r.session_tag}): taking the session's tag`);
        tag = r.session_tag;
        continue;
      }
      o.log('info', `session ${o.sessionId}: job ${o.jobId}: ${r.result}`);
    } catch (err) {
      answer = (err as Error).message;
      o.log('warn', `session ${o.sessionId}: cannot start job ${o.jobId}: ${answer}`);
      if (err instanceof ApiRequestError && err.status === 400) tag = 0; // our tag is ahead of the session's (a reset session)
      else if (err instanceof ApiRequestError && !err.retryable) break;
    }
    if (attempt < START_TRIES) {
      try {
        await o.clock.sleep(o.retryMs ?? START_RETRY_MS, o.signal);
      } catch {
        break;
      }
    }
  }
  o.log('error', `session ${o.sessionId}: unable to start job ${o.jobId} in the session (${answer}): running it anyway`);
  return { started: false, tag, answer };
}

/** endBody is the body of the session end request. */
export function endBody(jobId: string, tag: number, result: string): Record<string, unknown> {
  return { end: { job_id: jobId, current_tag: tag, result } };
}
