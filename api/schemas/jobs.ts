/**
 * Job documents (reference/freezer.md §6.3, §5). No top-level key outside this list and no
 * `job_schedule` key outside the schedule's are accepted, as freezer-api. `user_id`, `project_id` and
 * `user_credentials` may be sent back as read (a client re-posting a job it got) but are not taken.
 */
import { CLIENT_ID_PATTERN, anyDocument, freezerActionSchema, scheduleSchema } from './common.js';

export const jobActionSchema = {
  type: 'object',
  additionalProperties: true,
  required: ['freezer_action'],
  properties: {
    action_id: { type: 'string', pattern: '^[\\w-]{1,128}$' },
    freezer_action: freezerActionSchema,
    max_retries: { type: 'integer', minimum: 0 },
    max_retries_interval: { type: 'integer', minimum: 0 },
    mandatory: { type: 'boolean' },
  },
} as const;

const jobProperties = {
  job_actions: { type: 'array', maxItems: 100, items: jobActionSchema },
  job_schedule: scheduleSchema,
  job_id: { type: 'string', pattern: '^[\\w-]{1,128}$' },
  client_id: { type: 'string', maxLength: 255, pattern: CLIENT_ID_PATTERN },
  session_id: { type: 'string', pattern: '^[\\w-]{0,128}$' },
  session_tag: { type: 'integer' },
  session_name: { type: 'string' },
  description: { type: 'string' },
  _version: { type: 'integer' },
  action_defaults: freezerActionSchema,
  user_id: { type: 'string', description: 'Ignored' },
  project_id: { type: 'string', description: 'Ignored' },
  user_credentials: { type: 'object', description: 'Ignored' },
} as const;

export const jobCreateBody = {
  type: 'object',
  additionalProperties: false,
  required: ['job_actions', 'client_id'],
  properties: jobProperties,
} as const;

export const jobPatchBody = {
  type: 'object',
  additionalProperties: false,
  properties: jobProperties,
  description: 'Top-level keys replace the stored ones, except job_schedule, merged key by key',
} as const;

export const jobEventBody = {
  type: 'object',
  additionalProperties: false,
  minProperties: 1,
  maxProperties: 1,
  description: 'One event: {"start": null}, {"stop": null} or {"abort": null}',
  properties: { start: {}, stop: {}, abort: {} },
} as const;

export const jobDocument = anyDocument;
