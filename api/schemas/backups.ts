/**
 * Backup documents (reference/freezer.md §6.3): the body of POST is the agent's result document
 * (§2.6); `status`, when present, moves up to the record. Freezer requires non-empty container,
 * hostname and backup_name; floe also types the fields it reads (time_stamp, levels, job_id).
 */
import { ID_PATTERN, anyDocument } from './common.js';

export const BACKUP_STATUSES = ['creating', 'available', 'error', 'deleting', 'deleted'] as const;

export const backupCreateBody = {
  type: 'object',
  additionalProperties: true,
  required: ['container', 'hostname', 'backup_name'],
  properties: {
    container: { type: 'string', minLength: 1 },
    hostname: { type: 'string', minLength: 1 },
    backup_name: { type: 'string', minLength: 1 },
    status: { type: 'string', enum: BACKUP_STATUSES },
    time_stamp: { type: 'integer', minimum: 0, maximum: 1e15, description: 'Epoch seconds of the backup: the time filter and the listing order' },
    curr_backup_level: { anyOf: [{ type: 'integer', minimum: 0 }, { type: 'string', maxLength: 0 }] },
    job_id: { type: 'string', pattern: `${ID_PATTERN}|^$` },
  },
} as const;

export const backupPatchBody = {
  type: 'object',
  additionalProperties: false,
  minProperties: 1,
  properties: {
    status: { type: 'string', enum: BACKUP_STATUSES },
    backup_metadata: {
      type: 'object',
      additionalProperties: true,
      description: 'Merged key by key into the stored backup_metadata',
      properties: {
        container: { type: 'string', minLength: 1 },
        hostname: { type: 'string', minLength: 1 },
        backup_name: { type: 'string', minLength: 1 },
        time_stamp: { type: 'integer', minimum: 0, maximum: 1e15 },
      },
    },
  },
} as const;

export const backupDocument = {
  type: 'object',
  properties: {
    backup_id: { type: 'string' },
    user_id: { type: 'string' },
    user_name: { type: 'string' },
    project_id: { type: 'string' },
    status: { type: 'string', enum: BACKUP_STATUSES },
    backup_metadata: anyDocument,
  },
} as const;
