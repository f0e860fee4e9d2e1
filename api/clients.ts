/**
 * Clients: the nodes (schedulers) of a project and what they can run (reference/freezer.md §6.2-6.3).
 *
 *   GET    /clients               200 {"clients": [...]}
 *   POST   /clients               201 {"client_id"}   registers; a known client_id updates its
 *                                                      capabilities, hostname and description
 *   GET    /clients/{client_id}   200 | 404
 *   DELETE /clients/{client_id}   204 | 404
 *
 * Client ids are per project (Freezer's are global and answer 409 across projects: that would tell one
 * project about another's nodes). `is_central: true` needs the admin role. An agent token bound to a
 * client may register that client only.
 */
import type { FastifyInstance } from 'fastify';
import { apiError } from './errors.js';
import { Principal } from './auth.js';
import { StoredRecord } from './db/store.js';
import { Doc, agentClient, mutate, newId, principal, projectOf, withoutKeys } from './http.js';
import { CLIENT_ID_PATTERN, filterBody, idParams, listQuery as listQs, projectParams, withErrors } from './schemas/common.js';
import { clientCreateBody, clientDocument } from './schemas/clients.js';
import { listQuery } from './http.js';

const tags = ['clients'];
const params = idParams('client_id', CLIENT_ID_PATTERN);
/** Keys a re-registration updates (Freezer: capabilities and description). */
const UPDATABLE = ['hostname', 'description', 'supported_actions', 'supported_modes', 'supported_storages', 'supported_engines', 'is_central'];

export default async function clientsRoutes(app: FastifyInstance): Promise<void> {
  const clients = app.store.clients;

  app.get('/clients', {
    config: { permission: 'clients:get_all' },
    schema: {
      tags, summary: 'List clients', params: projectParams, querystring: listQs(), body: filterBody(),
      response: withErrors({ 200: { type: 'object', properties: { clients: { type: 'array', items: clientDocument } } } }),
    },
  }, async (req) => {
    const rows = await clients.list(projectOf(req), listQuery(req));
    return { clients: rows.map(clientDocumentOf) };
  });

  app.post('/clients', {
    config: { permission: 'clients:create' },
    schema: {
      tags, summary: 'Register a client, or update a registered one', params: projectParams, body: clientCreateBody,
      response: withErrors({ 201: { type: 'object', properties: { client_id: { type: 'string' } } } }),
    },
  }, async (req, reply) => {
    const p = principal(req);
    const info = withoutKeys(req.body as Doc, ['user_id', 'project_id']);
    const clientId = info.client_id as string;
    checkAllowed(p, clientId, info);
    reply.code(201);
    for (let attempt = 0; attempt < 3; attempt++) {
      if (await clients.get(p.projectId, clientId)) {
        await mutate(clients, p.projectId, clientId, p.userId, async (rec) => {
          const doc = { ...rec.doc };
          for (const k of UPDATABLE) if (info[k] !== undefined) doc[k] = info[k];
          return { doc, columns: { isCentral: doc.is_central === true }, out: null };
        });
        return { client_id: clientId };
      }
      const doc: Doc = { uuid: newId(), hostname: '', description: '', ...info, is_central: info.is_central === true };
      try {
        await clients.create(p.projectId, clientId, p.userId, doc, { isCentral: doc.is_central === true });
        return { client_id: clientId };
      } catch (err) {
        // registered by a concurrent request: update it instead
        if ((err as { code?: string }).code !== 'FLOE_API_ERR_EXISTS') throw err;
      }
    }
    throw apiError('FLOE_API_ERR_CONFLICT', 'client', clientId);
  });

  app.get('/clients/:client_id', {
    config: { permission: 'clients:get' },
    schema: { tags, summary: 'Get a client', params, response: withErrors({ 200: clientDocument }, 404) },
  }, async (req) => {
    const id = (req.params as { client_id: string }).client_id;
    const rec = await clients.get(projectOf(req), id);
    if (!rec) throw apiError('FLOE_API_ERR_NOT_FOUND', 'client', id);
    return clientDocumentOf(rec);
  });

  app.delete('/clients/:client_id', {
    config: { permission: 'clients:delete' },
    schema: { tags, summary: 'Unregister a client', params, response: withErrors({ 204: { type: 'null' } }, 404) },
  }, async (req, reply) => {
    const id = (req.params as { client_id: string }).client_id;
    if (!(await clients.delete(projectOf(req), id))) throw apiError('FLOE_API_ERR_NOT_FOUND', 'client', id);
    reply.code(204).send();
  });
}

function checkAllowed(p: Principal, clientId: string, info: Doc): void {
  const bound = agentClient(p);
  if (bound && bound !== clientId) throw apiError('FLOE_API_ERR_AGENT_SCOPE', bound);
  if (info.is_central === true && p.role !== 'admin') throw apiError('FLOE_API_ERR_CENTRAL_CLIENT');
}

/** clientDocumentOf is freezer-api's client document. */
export function clientDocumentOf(r: StoredRecord): Doc {
  return { client: { ...r.doc, client_id: r.id }, user_id: r.userId, project_id: r.projectId };
}
