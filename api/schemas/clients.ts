/**
 * Client documents (reference/freezer.md §6.3): POST takes the flat client info
 * `{client_id, hostname, description, uuid, supported_*[], is_central}`; the stored document wraps it as
 * `{client: {...}, user_id, project_id}`.
 */
import { CLIENT_ID_PATTERN, HOSTNAME_PATTERN, anyDocument } from './common.js';

const stringList = { type: 'array', maxItems: 64, items: { type: 'string', maxLength: 64 } } as const;

export const clientCreateBody = {
  type: 'object',
  additionalProperties: true,
  required: ['client_id'],
  properties: {
    client_id: { type: 'string', maxLength: 255, pattern: CLIENT_ID_PATTERN },
    hostname: { type: 'string', maxLength: 255, pattern: HOSTNAME_PATTERN },
    description: { type: 'string' },
    uuid: { type: 'string', pattern: '^[\\w-]{1,64}$' },
    supported_actions: stringList,
    supported_modes: stringList,
    supported_storages: stringList,
    supported_engines: stringList,
    is_central: { type: 'boolean' },
    user_id: { type: 'string', description: 'Ignored: the token\'s user is recorded' },
    project_id: { type: 'string', description: 'Ignored: the URL\'s project is recorded' },
  },
} as const;

export const clientDocument = {
  type: 'object',
  properties: { client: anyDocument, user_id: { type: 'string' }, project_id: { type: 'string' } },
} as const;
