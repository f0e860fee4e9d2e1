/**
 * Run reports: one per run of one action of a job (Freezer's SQL backend keeps them as
 * `action_reports`: id, result, time_elapsed, report_date, log). floe keeps the metrics an operator
 * charts: duration, bytes read and stored, rate, exit code. Not a Freezer document: every field is typed
 * and no other key is accepted.
 */
import { DEFAULT_LIMIT, ID_PATTERN, ISO_DATE, MAX_LIMIT } from './common.js';

export const RUN_ACTIONS = ['backup', 'restore', 'exec', 'admin', 'info'] as const;
export const RUN_RESULTS = ['success', 'fail', 'aborted'] as const;
/** MAX_RUN_LOG: the log kept with a run (its tail; the whole log stays on the node). 16 KiB. */
export const MAX_RUN_LOG = 16_384;
/** Epoch seconds up to 1e15, as backups' time_stamp; byte counts up to 2^53 (exact in JSON numbers). */
const epoch = { type: 'integer', minimum: 0, maximum: 1e15 } as const;
const bytes = { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER } as const;
const seconds = { type: 'number', minimum: 0, maximum: 1e15 } as const;

export const runCreateBody = {
  type: 'object',
  additionalProperties: false,
  required: ['action', 'result', 'exit_code', 'time_started', 'time_ended', 'duration', 'bytes_read', 'bytes_stored', 'rate'],
  properties: {
    run_id: { type: 'string', pattern: ID_PATTERN, description: 'The agent\'s id for this run (e.g. a UUID kept before posting): a second POST with it changes nothing' },
    action: { type: 'string', enum: RUN_ACTIONS },
    result: { type: 'string', enum: RUN_RESULTS },
    exit_code: { type: 'integer', minimum: 0, maximum: 255 },
    time_started: epoch,
    time_ended: epoch,
    duration: { ...seconds, description: 'Seconds' },
    bytes_read: bytes,
    bytes_stored: bytes,
    rate: { type: 'number', minimum: 0, maximum: 1e18, description: 'Bytes read per second' },
    backup_id: { type: 'string', pattern: `${ID_PATTERN}|^$` },
    session_id: { type: 'string', pattern: `${ID_PATTERN}|^$` },
    log: { type: 'string', maxLength: MAX_RUN_LOG },
  },
} as const;

export const runDocument = {
  type: 'object',
  properties: {
    run_id: { type: 'string' }, job_id: { type: 'string' }, client_id: { type: 'string' }, project_id: { type: 'string' },
    user_id: { type: 'string' }, action: { type: 'string' }, result: { type: 'string' }, exit_code: { type: 'integer' },
    time_started: { type: 'integer' }, time_ended: { type: 'integer' }, duration: { type: 'number' },
    bytes_read: { type: 'integer' }, bytes_stored: { type: 'integer' }, rate: { type: 'number' },
    backup_id: { type: 'string' }, session_id: { type: 'string' }, log: { type: 'string' },
  },
} as const;

const timeParam = { type: 'string', pattern: `^[0-9]{1,12}$|${ISO_DATE}`, description: 'Epoch seconds or an ISO date; bounds time_started' };

/** runListQuery: paging and exact filters (all answered by indexed columns). */
export function runListQuery(withJob: boolean) {
  return {
    type: 'object',
    properties: {
      limit: { type: 'integer', minimum: 1, maximum: MAX_LIMIT, default: DEFAULT_LIMIT },
      offset: { type: 'integer', minimum: 0, maximum: 1_000_000_000, default: 0 },
      ...(withJob ? { job_id: { type: 'string', pattern: ID_PATTERN } } : {}),
      client_id: { type: 'string', minLength: 1, maxLength: 256 },
      result: { type: 'string', enum: RUN_RESULTS },
      action: { type: 'string', enum: RUN_ACTIONS },
      time_after: timeParam,
      time_before: timeParam,
    },
  } as const;
}
