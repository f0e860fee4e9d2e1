/**
 * Backups: the metadata of backups made by agents (reference/freezer.md §6.2-6.3). The API never
 * touches backup data; DELETE removes the record only.
 *
 *   GET    /backups                200 {"backups": [...]}   filters, limit/offset, time_after/time_before
 *   POST   /backups                201 {"backup_id"}        body: the agent's result document
 *                                   200 {"backup_id"}        the same backup was already recorded (below)
 *   GET    /backups/{backup_id}    200 document | 404
 *   PATCH  /backups/{backup_id}    200 updated document     {status?, backup_metadata? (merged)}
 *   DELETE /backups/{backup_id}    204 | 404
 *
 * The time filter works (freezer-api's does not): it bounds `backup_metadata.time_stamp`, kept in a
 * column. Listings are newest first.
 *
 * POST is idempotent on the backup's natural identity (identityOf): an agent whose answer was lost posts
 * the same document again and gets the first backup_id with 200, never a second record. A unique index
 * on (project, identity) settles concurrent repeats. Documents without a time_stamp have no identity.
 * The identity is fixed at creation: a PATCH of backup_metadata does not change it.
 */
import type { FastifyInstance } from 'fastify';
import { createHash } from 'node:crypto';
import { ApiError, apiError } from './errors.js';
import { StoredRecord } from './db/store.js';
import { Doc, listQuery, mutate, newId, principal, projectOf } from './http.js';
import { filterBody, idParams, listQuery as listQs, projectParams, withErrors } from './schemas/common.js';
import { backupCreateBody, backupDocument, backupPatchBody } from './schemas/backups.js';

const tags = ['backups'];
const params = idParams('backup_id');

export default async function backupsRoutes(app: FastifyInstance): Promise<void> {
  const backups = app.store.backups;

  app.get('/backups', {
    config: { permission: 'backups:get_all' },
    schema: {
      tags, summary: 'List backups (newest first)', params: projectParams, querystring: listQs(true), body: filterBody(true),
      response: withErrors({ 200: { type: 'object', properties: { backups: { type: 'array', items: backupDocument } } } }),
    },
  }, async (req) => {
    const rows = await backups.list(projectOf(req), listQuery(req, true));
    return { backups: rows.map(backupDocumentOf) };
  });

  app.post('/backups', {
    config: { permission: 'backups:create' },
    schema: {
      tags, summary: 'Record a backup (the agent\'s result document)', params: projectParams, body: backupCreateBody,
      response: withErrors({ 200: { type: 'object', properties: { backup_id: { type: 'string' } } }, 201: { type: 'object', properties: { backup_id: { type: 'string' } } } }, 409),
    },
  }, async (req, reply) => {
    const p = principal(req);
    const { status, ...metadata } = req.body as Doc;
    const identity = identityOf(metadata);
    const first = identity ? await backupByIdentity(app, p.projectId, identity) : null;
    if (first) {
      reply.code(200);
      return { backup_id: first };
    }
    const id = newId();
    try {
      await backups.create(p.projectId, id, p.userId, metadata, {
        status: typeof status === 'string' ? status : 'available',
        ...columnsOf(metadata),
        userName: '',
        ...(identity ? { identity } : {}),
      });
    } catch (err) {
      // two identical POSTs at once: the unique index let one through; answer the other with its id
      const winner = identity && err instanceof ApiError && err.code === 'FLOE_API_ERR_EXISTS' ? await backupByIdentity(app, p.projectId, identity) : null;
      if (!winner) throw err;
      reply.code(200);
      return { backup_id: winner };
    }
    reply.code(201);
    return { backup_id: id };
  });

  app.get('/backups/:backup_id', {
    config: { permission: 'backups:get' },
    schema: { tags, summary: 'Get a backup', params, response: withErrors({ 200: backupDocument }, 404) },
  }, async (req) => {
    const id = (req.params as { backup_id: string }).backup_id;
    const rec = await backups.get(projectOf(req), id);
    if (!rec) throw apiError('FLOE_API_ERR_NOT_FOUND', 'backup', id);
    return backupDocumentOf(rec);
  });

  app.patch('/backups/:backup_id', {
    config: { permission: 'backups:update' },
    schema: { tags, summary: 'Change a backup\'s status or metadata', params, body: backupPatchBody, response: withErrors({ 200: backupDocument }, 404, 409) },
  }, async (req) => {
    const p = principal(req);
    const id = (req.params as { backup_id: string }).backup_id;
    const patch = req.body as { status?: string; backup_metadata?: Doc };
    const r = await mutate(backups, p.projectId, id, p.userId, async (rec) => {
      const doc = { ...rec.doc, ...(patch.backup_metadata ?? {}) };
      const status = patch.status ?? rec.status ?? 'available';
      return { doc, columns: { status, ...columnsOf(doc) }, out: { ...rec, doc, status } };
    });
    return backupDocumentOf({ ...r.out, userId: p.userId, version: r.version });
  });

  app.delete('/backups/:backup_id', {
    config: { permission: 'backups:delete' },
    schema: { tags, summary: 'Forget a backup (its data in storage is not touched)', params, response: withErrors({ 204: { type: 'null' } }, 404) },
  }, async (req, reply) => {
    const id = (req.params as { backup_id: string }).backup_id;
    if (!(await backups.delete(projectOf(req), id))) throw apiError('FLOE_API_ERR_NOT_FOUND', 'backup', id);
    reply.code(204).send();
  });
}

/**
 * identityOf is the natural identity of a backup: sha-256 of (hostname, backup_name, engine_name
 * (default tar), time_stamp, curr_backup_level), or undefined without a numeric time_stamp (nothing
 * then tells two backups apart).
 */
export function identityOf(metadata: Doc): string | undefined {
  const ts = metadata.time_stamp;
  if (typeof ts !== 'number') return undefined;
  const engine = typeof metadata.engine_name === 'string' && metadata.engine_name !== '' ? metadata.engine_name : 'tar';
  const level = metadata.curr_backup_level ?? '';
  return createHash('sha256').update(JSON.stringify([metadata.hostname, metadata.backup_name, engine, ts, level])).digest('hex');
}

async function backupByIdentity(app: FastifyInstance, projectId: string, identity: string): Promise<string | null> {
  const row = await app.store.db.backup.findUnique({ where: { projectId_identity: { projectId, identity } }, select: { id: true } });
  return row?.id ?? null;
}

function columnsOf(metadata: Doc): { jobId: string; timeStamp: number } {
  const ts = metadata.time_stamp;
  return {
    jobId: typeof metadata.job_id === 'string' ? metadata.job_id : '',
    timeStamp: typeof ts === 'number' && Number.isFinite(ts) && ts >= 0 ? ts : 0,
  };
}

/** backupDocumentOf is freezer-api's backup document. */
export function backupDocumentOf(r: StoredRecord): Doc {
  return {
    backup_id: r.id, user_id: r.userId, user_name: r.userName ?? '', project_id: r.projectId,
    status: r.status ?? 'available', backup_metadata: r.doc,
  };
}
