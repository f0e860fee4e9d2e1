/**
 * Session documents (reference/freezer.md §5.3, §6.2): a group of jobs started together.
 * freezer-api accepts extra top-level keys in sessions, and so does floe.
 */
import { ID_PATTERN, scheduleSchema } from './common.js';

const sessionJob = {
  type: 'object',
  properties: {
    client_id: { type: 'string' },
    status: { type: 'string' },
    result: { type: 'string' },
    time_started: { type: 'integer' },
    time_ended: { type: 'integer' },
  },
} as const;

const sessionProperties = {
  session_id: { type: 'string', pattern: ID_PATTERN, description: 'Ignored on create (the server makes it)' },
  session_tag: { type: 'integer', minimum: 0 },
  description: { type: 'string' },
  hold_off: { type: 'integer', minimum: 0, description: 'Seconds during which a new start joins the current run (default 30)' },
  schedule: scheduleSchema,
  jobs: { type: 'object', additionalProperties: sessionJob, propertyNames: { pattern: ID_PATTERN } },
  status: { type: 'string' },
  result: { type: 'string' },
  time_start: { type: 'integer' },
  time_end: { type: 'integer' },
  time_started: { type: 'integer' },
  time_ended: { type: 'integer' },
  user_id: { type: 'string', description: 'Ignored' },
  project_id: { type: 'string', description: 'Ignored' },
} as const;

export const sessionCreateBody = { type: 'object', additionalProperties: true, properties: sessionProperties } as const;
export const sessionPatchBody = sessionCreateBody;

const jobRef = { type: 'string', pattern: ID_PATTERN } as const;

export const sessionActionBody = {
  type: 'object',
  additionalProperties: false,
  minProperties: 1,
  maxProperties: 1,
  description: '{"start": {job_id, current_tag}} or {"end": {job_id, current_tag, result}}',
  properties: {
    start: {
      type: 'object', additionalProperties: true, required: ['job_id', 'current_tag'],
      properties: { job_id: jobRef, current_tag: { type: 'integer', minimum: 0 } },
    },
    end: {
      type: 'object', additionalProperties: true, required: ['job_id', 'result'],
      properties: { job_id: jobRef, current_tag: { type: 'integer', minimum: 0 }, result: { type: 'string', enum: ['', 'success', 'fail', 'aborted'] } },
    },
  },
} as const;
