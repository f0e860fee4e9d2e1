/**
 * Metrics: what each run cost, measured by the scheduler and reported with its results.
 *
 * Per action and per run: duration, bytes read from the source and stored, the rate (bytes read per
 * second of the action), exit code and attempts. Bytes come from the agent's result document
 * (`source_bytes`, `stored_bytes`: floe's agent writes them; freezer-agent does not, so they are absent)
 * or, in-process, from the engine's progress events.
 *
 * Where they go: every action run is posted to floe's API as a run report (POST /jobs/{id}/runs,
 * {@link runReport}; Freezer's SQL backend keeps `action_reports` alike); each backup document the
 * scheduler posts also carries them under `run_metrics` ({@link backupRunMetrics}); and every run is kept
 * in the job's local record and shown by `floe scheduler status`.
 */
import { randomUUID } from 'node:crypto';
import type { ActionRecord } from './store.js';

export interface RunMetrics {
  run_id: string;
  job_id: string;
  /** the trigger fire time (epoch ms) */
  fire: number;
  started: number;
  ended: number;
  duration_s: number;
  result: string;
  /** the last non-zero exit code of the run's actions, else 0 */
  exit_code: number;
  bytes_read: number;
  bytes_stored: number;
  rate_bytes_per_s: number;
  actions: ActionRecord[];
}

/** bytesOf reads the byte counts of an agent result document (floe's keys), when present. */
export function bytesOf(doc: Record<string, unknown> | undefined): { read?: number; stored?: number } {
  const n = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : undefined);
  return { read: n(doc?.source_bytes), stored: n(doc?.stored_bytes) };
}

/** rate is bytes per second, rounded; 0 for an instant or empty action. */
export function rate(bytes: number, ms: number): number {
  return ms > 0 ? Math.round((bytes * 1000) / ms) : 0;
}

/** summarize adds up a finished run's actions. */
export function summarize(run: { run_id: string; fire: number; started: number }, jobId: string, result: string, ended: number, actions: ActionRecord[]): RunMetrics {
  const read = actions.reduce((s, a) => s + (a.bytes_read ?? 0), 0);
  const stored = actions.reduce((s, a) => s + (a.bytes_stored ?? 0), 0);
  const busy = actions.reduce((s, a) => s + Math.max(0, a.ended - a.started), 0);
  const failed = [...actions].reverse().find((a) => a.exit_code !== null && a.exit_code !== 0);
  return {
    run_id: run.run_id, job_id: jobId, fire: run.fire, started: run.started, ended,
    duration_s: Math.round(ended - run.started) / 1000,
    result, exit_code: failed?.exit_code ?? 0,
    bytes_read: read, bytes_stored: stored, rate_bytes_per_s: rate(read, busy),
    actions,
  };
}

/**
 * backupRunMetrics is the `run_metrics` object added to a backup document posted to the API.
 * `report_id` (run id and action index) is unique: it lets the scheduler find the document again when
 * the answer to a POST was lost, so a backup is never recorded twice.
 */
export function backupRunMetrics(o: {
  runId: string; clientId: string; index: number; attempt: number; exitCode: number;
  started: number; ended: number; bytesRead?: number; bytesStored?: number;
}): Record<string, unknown> {
  const ms = Math.max(0, o.ended - o.started);
  return {
    report_id: reportId(o.runId, o.index),
    run_id: o.runId,
    client_id: o.clientId,
    action_index: o.index,
    attempt: o.attempt,
    exit_code: o.exitCode,
    time_started: Math.floor(o.started / 1000),
    time_ended: Math.floor(o.ended / 1000),
    duration_s: ms / 1000,
    bytes_read: o.bytesRead ?? null,
    bytes_stored: o.bytesStored ?? null,
    rate_bytes_per_s: o.bytesRead !== undefined ? rate(o.bytesRead, ms) : null,
  };
}

/** RUN_ACTIONS: the actions floe's API keeps run reports for (api/schemas/runs.ts). */
const RUN_ACTIONS = new Set(['backup', 'restore', 'exec', 'admin', 'info']);
/** MAX_RUN_LOG: the API keeps at most this many characters of a run's log (its tail is sent). */
const MAX_RUN_LOG = 16_384;

/**
 * runReport is the body of POST /jobs/{id}/runs for one finished action, or undefined for an action the
 * API does not keep runs of. `run_id` is a fresh UUID: made once, stored in the outbox with the report,
 * and sent with every attempt, so the API records the run once however often it is posted.
 * An exit code the API cannot take (-1: the agent could not run) is reported as 255.
 */
export function runReport(a: ActionRecord, sessionId: string): Record<string, unknown> | undefined {
  if (!RUN_ACTIONS.has(a.action) || a.result === 'skipped') return undefined;
  const ms = Math.max(0, a.ended - a.started);
  const read = a.bytes_read ?? 0;
  const code = a.exit_code ?? 0;
  return {
    run_id: randomUUID(),
    action: a.action,
    result: a.result,
    exit_code: code >= 0 && code <= 255 ? code : 255,
    time_started: Math.floor(a.started / 1000),
    time_ended: Math.floor(Math.max(a.ended, a.started) / 1000),
    duration: ms / 1000,
    bytes_read: read,
    bytes_stored: a.bytes_stored ?? 0,
    rate: rate(read, ms),
    ...(sessionId ? { session_id: sessionId } : {}),
    ...(a.error ? { log: a.error.slice(-MAX_RUN_LOG) } : {}),
  };
}

export function reportId(runId: string, index: number): string {
  return `${runId}-${index}`;
}
