/**
 * JSON schemas shared by the routes: ids, list parameters, filter bodies, schedules, errors.
 *
 * Bodies are validated strictly (no type coercion, unknown keys rejected where freezer-api's schemas
 * reject them); query strings and path parameters are coerced (`?limit=10` is the number 10).
 * Patterns are freezer-api's (freezer_api/common/json_schemas.py), anchored where Freezer forgot to.
 * Response schemas document the API (OpenAPI at /docs); responses are serialized with JSON.stringify,
 * never filtered through them.
 */

/** ID_PATTERN: job, action, session and backup ids (Freezer: `^[\w-]+$`), at most 128 characters. */
export const ID_PATTERN = '^[\\w-]{1,128}$';
const FQDN = '([a-zA-Z\\d]|[a-zA-Z\\d][a-zA-Z\\d-]{0,61}[a-zA-Z\\d])(\\.([a-zA-Z\\d]|[a-zA-Z\\d][a-zA-Z\\d-]{0,61}[a-zA-Z\\d]))*';
/** CLIENT_ID_PATTERN: `[<project>_]<fqdn>`, as Freezer. */
export const CLIENT_ID_PATTERN = `^(?:[\\w-]+_)?${FQDN}$`;
/** HOSTNAME_PATTERN: an FQDN; Freezer's pattern is unanchored (accepts anything), floe anchors it. */
export const HOSTNAME_PATTERN = `^${FQDN}$`;
/** ISO_DATE: YYYY-MM-DDThh:mm:ss, optional fraction, optional Z or ±hh:mm (Freezer's date pattern). */
export const ISO_DATE = '^(-?(?:[1-9][0-9]*)?[0-9]{4})-(1[0-2]|0[1-9])-(3[01]|0[1-9]|[12][0-9])T(2[0-3]|[01][0-9]):([0-5][0-9]):([0-5][0-9])(\\.[0-9]+)?(Z|[+-](?:2[0-3]|[01][0-9]):[0-5][0-9])?$';

/** MAX_LIMIT: the largest page (Freezer has none; 1000 documents is already megabytes). */
export const MAX_LIMIT = 1000;
export const DEFAULT_LIMIT = 10;

export const idString = { type: 'string', pattern: ID_PATTERN } as const;

export const projectParams = {
  type: 'object',
  required: ['project_id'],
  properties: { project_id: { type: 'string', pattern: '^[A-Za-z0-9_-]{1,64}$', description: 'The project (the token\'s)' } },
} as const;

/** idParams: `{project_id, <name>}` path parameters. */
export function idParams(name: string, pattern = ID_PATTERN) {
  return {
    type: 'object',
    required: ['project_id', name],
    properties: { ...projectParams.properties, [name]: { type: 'string', pattern } },
  } as const;
}

const jsonFilterParam = {
  anyOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' } }],
  description: 'A JSON list of {"key": value} objects (the same as the body\'s), e.g. [{"client_id":"node1"}]',
};

const timeParam = {
  type: 'string',
  pattern: `^[0-9]{1,12}$|${ISO_DATE}`,
  description: 'Epoch seconds or an ISO date (YYYY-MM-DDThh:mm:ss, optional Z or offset; without one: the server\'s local time)',
};

/** listQuery: every list endpoint's query string. Unknown parameters are ignored, as Freezer does. */
export function listQuery(withTime = false) {
  return {
    type: 'object',
    properties: {
      limit: { type: 'integer', minimum: 1, maximum: MAX_LIMIT, default: DEFAULT_LIMIT },
      offset: { type: 'integer', minimum: 0, maximum: 1_000_000_000, default: 0 },
      match: jsonFilterParam,
      match_not: jsonFilterParam,
      all_projects: { type: 'string', description: 'Accepted and ignored: a token sees its own project only' },
      ...(withTime ? { time_after: timeParam, time_before: timeParam } : {}),
    },
  } as const;
}

const matchList = {
  anyOf: [
    { type: 'array', maxItems: 32, items: { type: 'object', minProperties: 1 } },
    { type: 'object', minProperties: 1 },
  ],
} as const;

/** filterBody: the optional JSON body of a GET list (Freezer sends filters that way). */
export function filterBody(withTime = false) {
  return {
    type: 'object',
    additionalProperties: false,
    description: 'Search filter. `match`: every {key: value} must be found anywhere in the document; `match_not`: none may; `{"_all": "text"}`: free text.',
    properties: {
      match: matchList,
      match_not: matchList,
      ...(withTime ? {
        time_after: { anyOf: [{ type: 'integer', minimum: 0 }, { type: 'string', pattern: ISO_DATE }] },
        time_before: { anyOf: [{ type: 'integer', minimum: 0 }, { type: 'string', pattern: ISO_DATE }] },
      } : {}),
    },
  } as const;
}

const dateString = { type: 'string', pattern: ISO_DATE } as const;

/** scheduleProperties: a job's `job_schedule` and a session's `schedule` (Freezer: no other keys). */
export const scheduleSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    time_created: { type: 'integer' },
    time_started: { type: 'integer' },
    time_ended: { type: 'integer' },
    event: { type: 'string', enum: ['', 'stop', 'start', 'abort', 'remove'] },
    status: { type: 'string', enum: ['', 'completed', 'stop', 'scheduled', 'running', 'aborting', 'removed'] },
    result: { type: 'string', enum: ['', 'success', 'fail', 'aborted'] },
    schedule_date: dateString,
    schedule_interval: { type: 'string', pattern: '^(continuous|([0-9]+ +(weeks|days|hours|minutes|seconds)))$' },
    schedule_start_date: dateString,
    schedule_end_date: dateString,
    schedule_year: { type: 'string', pattern: '^[0-9]{4}$' },
    schedule_month: { type: 'string' },
    schedule_day: { type: 'string' },
    schedule_week: { type: 'string' },
    schedule_day_of_week: { type: 'string' },
    schedule_hour: { type: 'string' },
    schedule_minute: { type: 'string' },
    schedule_second: { type: 'string' },
    current_pid: { type: 'integer' },
  },
} as const;

/** freezerActionSchema: the agent options of an action (any option, a few typed as Freezer does). */
export const freezerActionSchema = {
  type: 'object',
  additionalProperties: true,
  properties: {
    action: { type: 'string', pattern: '^[\\w-]+$' },
    mode: { type: 'string', pattern: '^[\\w-]+$' },
    src_file: { type: 'string' },
    backup_name: { type: 'string' },
    container: { type: 'string' },
    restore_abs_path: { type: 'string' },
  },
} as const;

export const errorResponse = {
  type: 'object',
  description: 'An error: freezer-api\'s title and description, plus floe\'s code (docs/api-errors.md)',
  properties: { title: { type: 'string' }, description: { type: 'string' }, code: { type: 'string' } },
} as const;

/** anyDocument: a response that is one of the API's JSON documents. */
export const anyDocument = { type: 'object', additionalProperties: true } as const;

/** errors documents the error answers every /v2 route can give, plus `extra` statuses. */
export function withErrors(responses: Record<number, unknown>, ...extra: number[]): Record<number, unknown> {
  const out: Record<number, unknown> = { ...responses, 400: errorResponse, 401: errorResponse, 403: errorResponse };
  for (const s of extra) out[s] = errorResponse;
  return out;
}
