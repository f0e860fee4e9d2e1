/**
 * Action documents (reference/freezer.md §6.3): a reusable `freezer_action` with its retry rules.
 * freezer-api accepts extra top-level keys here, and so does floe.
 */
import { freezerActionSchema } from './common.js';

const actionProperties = {
  action_id: { type: 'string', pattern: '^[\\w-]{1,128}$' },
  freezer_action: freezerActionSchema,
  max_retries: { type: 'integer', minimum: 0 },
  max_retries_interval: { type: 'integer', minimum: 0 },
  mandatory: { type: 'boolean' },
  user_id: { type: 'string', description: 'Ignored' },
  project_id: { type: 'string', description: 'Ignored' },
} as const;

export const actionCreateBody = {
  type: 'object',
  additionalProperties: true,
  required: ['freezer_action'],
  properties: actionProperties,
} as const;

export const actionPatchBody = {
  type: 'object',
  additionalProperties: true,
  properties: actionProperties,
  description: 'Top-level keys replace the stored ones, except freezer_action, merged key by key',
} as const;
