/**
 * Actions: a project's library of reusable `freezer_action` definitions, with their retry rules
 * (reference/freezer.md §6.2-6.3). Jobs embed copies of their actions; creating or changing a job
 * stores its actions here too (storeJobActions), as freezer-api does.
 *
 *   GET    /actions               200 {"actions": [...]}
 *   POST   /actions               201 {"action_id"}
 *   GET    /actions/{action_id}   200 | 404
 *   PATCH  /actions/{action_id}   200 {"action_id", "version"}   freezer_action merged key by key
 *   POST   /actions/{action_id}   201 {"action_id", "version"}   create or replace
 *   DELETE /actions/{action_id}   204 | 404
 *
 * Jobs keep the copy they were saved with (as freezer-api's Elasticsearch backend; its SQL backend
 * re-reads linked actions): deleting or changing an action does not change existing jobs.
 */
import type { FastifyInstance } from 'fastify';
import { apiError } from './errors.js';
import { Principal } from './auth.js';
import { Collection, StoredRecord } from './db/store.js';
import { Doc, listQuery, mutate, newId, principal, projectOf, sameJson, withoutKeys } from './http.js';
import { anyDocument, filterBody, idParams, listQuery as listQs, projectParams, withErrors } from './schemas/common.js';
import { actionCreateBody, actionPatchBody } from './schemas/actions.js';

const tags = ['actions'];
const params = idParams('action_id');
/** Keys the server owns: a body's values for them are ignored. */
const SERVER_KEYS = ['action_id', 'user_id', 'project_id', '_version'];
const idVersion = { type: 'object', properties: { action_id: { type: 'string' }, version: { type: 'integer' } } };

export default async function actionsRoutes(app: FastifyInstance): Promise<void> {
  const actions = app.store.actions;

  app.get('/actions', {
    config: { permission: 'actions:get_all' },
    schema: {
      tags, summary: 'List actions', params: projectParams, querystring: listQs(), body: filterBody(),
      response: withErrors({ 200: { type: 'object', properties: { actions: { type: 'array', items: anyDocument } } } }),
    },
  }, async (req) => {
    const rows = await actions.list(projectOf(req), listQuery(req));
    return { actions: rows.map(actionDocumentOf) };
  });

  app.post('/actions', {
    config: { permission: 'actions:create' },
    schema: {
      tags, summary: 'Create an action', params: projectParams, body: actionCreateBody,
      response: withErrors({ 201: { type: 'object', properties: { action_id: { type: 'string' } } } }, 409),
    },
  }, async (req, reply) => {
    const p = principal(req);
    const body = req.body as Doc;
    const id = typeof body.action_id === 'string' ? body.action_id : newId();
    await actions.create(p.projectId, id, p.userId, actionDoc(body));
    reply.code(201);
    return { action_id: id };
  });

  app.get('/actions/:action_id', {
    config: { permission: 'actions:get' },
    schema: { tags, summary: 'Get an action', params, response: withErrors({ 200: anyDocument }, 404) },
  }, async (req) => {
    const id = (req.params as { action_id: string }).action_id;
    const rec = await actions.get(projectOf(req), id);
    if (!rec) throw apiError('FLOE_API_ERR_NOT_FOUND', 'action', id);
    return actionDocumentOf(rec);
  });

  app.patch('/actions/:action_id', {
    config: { permission: 'actions:update' },
    schema: { tags, summary: 'Change an action', params, body: actionPatchBody, response: withErrors({ 200: idVersion }, 404, 409) },
  }, async (req) => {
    const p = principal(req);
    const id = (req.params as { action_id: string }).action_id;
    const patch = withoutKeys(req.body as Doc, SERVER_KEYS);
    const r = await mutate(actions, p.projectId, id, p.userId, async (rec) => {
      const doc: Doc = { ...rec.doc, ...patch };
      if (patch.freezer_action) doc.freezer_action = { ...(rec.doc.freezer_action as Doc), ...(patch.freezer_action as Doc) };
      return { doc, out: null };
    });
    return { action_id: id, version: r.version };
  });

  app.post('/actions/:action_id', {
    config: { permission: 'actions:create' },
    schema: { tags, summary: 'Create or replace an action', params, body: actionCreateBody, response: withErrors({ 201: idVersion }) },
  }, async (req, reply) => {
    const p = principal(req);
    const id = (req.params as { action_id: string }).action_id;
    const version = await actions.replace(p.projectId, id, p.userId, actionDoc(req.body as Doc));
    reply.code(201);
    return { action_id: id, version };
  });

  app.delete('/actions/:action_id', {
    config: { permission: 'actions:delete' },
    schema: { tags, summary: 'Delete an action (jobs keep their copies)', params, response: withErrors({ 204: { type: 'null' } }, 404) },
  }, async (req, reply) => {
    const id = (req.params as { action_id: string }).action_id;
    if (!(await actions.delete(projectOf(req), id))) throw apiError('FLOE_API_ERR_NOT_FOUND', 'action', id);
    reply.code(204).send();
  });
}

/** actionDoc is the stored form of an action body, with Freezer's defaults (5 retries, 6 s apart). */
export function actionDoc(body: Doc): Doc {
  return {
    max_retries: 5,
    max_retries_interval: 6,
    mandatory: false,
    ...withoutKeys(body, SERVER_KEYS),
    freezer_action: (body.freezer_action as Doc | undefined) ?? {},
  };
}

/** actionDocumentOf is freezer-api's action document. */
export function actionDocumentOf(r: StoredRecord): Doc {
  return { ...r.doc, action_id: r.id, user_id: r.userId, project_id: r.projectId };
}

/** sameAction compares two freezer_actions as freezer-api does (ignoring _version and user_id). */
function sameAction(a: unknown, b: unknown): boolean {
  const strip = (x: unknown) => withoutKeys((x ?? {}) as Doc, ['_version', 'user_id']);
  return sameJson(strip(a), strip(b));
}

/**
 * storeJobActions saves a job's embedded actions as action records and returns them with their ids:
 * an action with a known id and the same freezer_action keeps it; a known id with a different
 * freezer_action gets a new id (the stored one is not changed); an unknown or missing id is created.
 */
export async function storeJobActions(actions: Collection, p: Principal, jobActions: Doc[]): Promise<Doc[]> {
  const out: Doc[] = [];
  for (const a of jobActions) {
    const doc = actionDoc(a);
    let id = typeof a.action_id === 'string' ? a.action_id : '';
    if (id) {
      const existing = await actions.get(p.projectId, id);
      if (existing && sameAction(existing.doc.freezer_action, doc.freezer_action)) {
        out.push({ ...doc, action_id: id });
        continue;
      }
      if (existing) id = '';
    }
    id ||= newId();
    try {
      await actions.create(p.projectId, id, p.userId, doc);
    } catch (err) {
      // the same id saved by a concurrent request: an action id names one definition, keep it
      if ((err as { code?: string }).code !== 'FLOE_API_ERR_EXISTS') throw err;
    }
    out.push({ ...doc, action_id: id });
  }
  return out;
}
