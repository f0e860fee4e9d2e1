/**
 * Jobs: what a client (scheduler) must run and when (reference/freezer.md §5, §6.2-6.3).
 *
 *   GET    /jobs                  200 {"jobs": [...]}   schedulers poll this with match client_id
 *   POST   /jobs                  201 {"job_id"}
 *   GET    /jobs/{job_id}         200 | 404
 *   PATCH  /jobs/{job_id}         200 {"job_id", "version"}   job_schedule merged key by key
 *   POST   /jobs/{job_id}         201 {"job_id", "version"}   create or replace
 *   DELETE /jobs/{job_id}         204 | 404
 *   POST   /jobs/{job_id}/event   202 {"result"}   {"start"|"stop"|"abort": null}
 *
 * A job's client must be registered in the project and support the job's actions (action, mode,
 * storage, and engine: `engine_name` or `engine`), else 422. `action_defaults` are merged into every
 * action that lacks the key, then dropped. Embedded actions are saved as action records (actions.ts).
 * An agent token sees the jobs of its client (all the project's if unbound) and may change only
 * their run status (job_schedule status/result/event/current_pid/time_started/time_ended, session_tag).
 */
import type { FastifyInstance } from 'fastify';
import { apiError } from './errors.js';
import { Principal } from './auth.js';
import { StoredRecord } from './db/store.js';
import { storeJobActions } from './actions.js';
import { Doc, agentClient, listQuery, mutate, newId, nowSeconds, principal, projectOf, sameJson, withoutKeys } from './http.js';
import { anyDocument, filterBody, idParams, listQuery as listQs, projectParams, withErrors } from './schemas/common.js';
import { jobCreateBody, jobEventBody, jobPatchBody } from './schemas/jobs.js';

const tags = ['jobs'];
const params = idParams('job_id');
/** Keys the server owns (or Freezer's clients echo back): a body's values are ignored. */
const SERVER_KEYS = ['job_id', 'user_id', 'project_id', 'user_credentials', '_version'];
/** The job_schedule keys an agent may change: the run status, nothing about what or when. */
const AGENT_SCHEDULE_KEYS = new Set(['status', 'result', 'event', 'current_pid', 'time_started', 'time_ended']);
const idVersion = { type: 'object', properties: { job_id: { type: 'string' }, version: { type: 'integer' } } };

export default async function jobsRoutes(app: FastifyInstance): Promise<void> {
  const jobs = app.store.jobs;

  app.get('/jobs', {
    config: { permission: 'jobs:get_all' },
    schema: {
      tags, summary: 'List jobs (creation order)', params: projectParams, querystring: listQs(), body: filterBody(),
      response: withErrors({ 200: { type: 'object', properties: { jobs: { type: 'array', items: anyDocument } } } }),
    },
  }, async (req) => {
    const bound = agentClient(principal(req));
    const q = listQuery(req);
    if (bound) q.where = { clientId: bound };
    const rows = await jobs.list(projectOf(req), q);
    return { jobs: rows.map(jobDocumentOf) };
  });

  app.post('/jobs', {
    config: { permission: 'jobs:create' },
    schema: {
      tags, summary: 'Create a job', params: projectParams, body: jobCreateBody,
      response: withErrors({ 201: { type: 'object', properties: { job_id: { type: 'string' } } } }, 409, 422),
    },
  }, async (req, reply) => {
    const p = principal(req);
    const body = req.body as Doc;
    const id = typeof body.job_id === 'string' ? body.job_id : newId();
    const doc = await buildJob(app, p, body, id);
    await jobs.create(p.projectId, id, p.userId, doc, columnsOf(doc));
    reply.code(201);
    return { job_id: id };
  });

  app.get('/jobs/:job_id', {
    config: { permission: 'jobs:get' },
    schema: { tags, summary: 'Get a job', params, response: withErrors({ 200: anyDocument }, 404) },
  }, async (req) => {
    const id = (req.params as { job_id: string }).job_id;
    return jobDocumentOf(await visibleJob(app, principal(req), id));
  });

  app.patch('/jobs/:job_id', {
    config: { permission: 'jobs:update' },
    schema: { tags, summary: 'Change a job', params, body: jobPatchBody, response: withErrors({ 200: idVersion }, 404, 409, 422) },
  }, async (req) => {
    const p = principal(req);
    const id = (req.params as { job_id: string }).job_id;
    const patch = withoutKeys(req.body as Doc, SERVER_KEYS);
    const version = p.role === 'agent' ? await agentPatch(app, p, id, patch) : await patchJob(app, p, id, patch);
    return { job_id: id, version };
  });

  app.post('/jobs/:job_id', {
    config: { permission: 'jobs:create' },
    schema: { tags, summary: 'Create or replace a job', params, body: jobCreateBody, response: withErrors({ 201: idVersion }, 422) },
  }, async (req, reply) => {
    const p = principal(req);
    const id = (req.params as { job_id: string }).job_id;
    const prior = await jobs.get(p.projectId, id);
    const doc = await buildJob(app, p, req.body as Doc, id, prior?.doc);
    const version = await jobs.replace(p.projectId, id, p.userId, doc, columnsOf(doc));
    reply.code(201);
    return { job_id: id, version };
  });

  app.delete('/jobs/:job_id', {
    config: { permission: 'jobs:delete' },
    schema: { tags, summary: 'Delete a job', params, response: withErrors({ 204: { type: 'null' } }, 404) },
  }, async (req, reply) => {
    const id = (req.params as { job_id: string }).job_id;
    if (!(await jobs.delete(projectOf(req), id))) throw apiError('FLOE_API_ERR_NOT_FOUND', 'job', id);
    reply.code(204).send();
  });

  app.post('/jobs/:job_id/event', {
    config: { permission: 'jobs:event:create' },
    schema: {
      tags, summary: 'Start, stop or abort a job', params, body: jobEventBody,
      response: withErrors({ 202: { type: 'object', properties: { result: { type: 'string' } } } }, 404, 409),
    },
  }, async (req, reply) => {
    const p = principal(req);
    const id = (req.params as { job_id: string }).job_id;
    const event = Object.keys(req.body as Doc)[0] as 'start' | 'stop' | 'abort';
    const r = await mutate(jobs, p.projectId, id, p.userId, async (rec) => {
      const schedule = { ...((rec.doc.job_schedule as Doc | undefined) ?? {}) };
      if (schedule.event === event) return { out: `${event} already requested` };
      schedule.event = event;
      if (event === 'start') Object.assign(schedule, { status: '', result: '' });
      return { doc: { ...rec.doc, job_schedule: schedule }, out: 'success' };
    });
    reply.code(202);
    return { result: r.out };
  });
}

/** buildJob makes the stored job document from a create/replace body (prior: the replaced job). */
async function buildJob(app: FastifyInstance, p: Principal, body: Doc, id: string, prior?: Doc): Promise<Doc> {
  const { action_defaults: defaults, job_actions: actions, job_schedule: schedule, ...rest } = withoutKeys(body, SERVER_KEYS);
  const jobActions = applyDefaults(actions as Doc[], defaults as Doc | undefined);
  await checkClient(app, p, rest.client_id as string, jobActions);
  const priorSchedule = (prior?.job_schedule ?? {}) as Doc;
  const now = nowSeconds(app);
  const jobSchedule: Doc = prior
    ? { time_created: priorSchedule.time_created ?? now, time_started: -1, time_ended: -1, ...(schedule as Doc | undefined) }
    : { ...(schedule as Doc | undefined), time_created: now, time_started: -1, time_ended: -1 };
  return {
    description: '', session_id: '', session_tag: 0, ...rest,
    job_id: id, user_id: p.userId, project_id: p.projectId,
    job_schedule: jobSchedule,
    job_actions: await storeJobActions(app.store.actions, p, jobActions),
  };
}

async function patchJob(app: FastifyInstance, p: Principal, id: string, patch: Doc): Promise<number> {
  const current = await visibleJob(app, p, id);
  const clientId = (patch.client_id ?? current.doc.client_id) as string;
  let newActions: Doc[] | undefined;
  // checked and saved once, before the retry loop: storing actions must not be repeated
  if (patch.job_actions !== undefined || patch.action_defaults !== undefined) {
    const base = (patch.job_actions ?? current.doc.job_actions ?? []) as Doc[];
    const merged = applyDefaults(base, patch.action_defaults as Doc | undefined);
    await checkClient(app, p, clientId, merged);
    newActions = await storeJobActions(app.store.actions, p, merged);
  } else if (clientId !== current.doc.client_id) {
    await checkClient(app, p, clientId, (current.doc.job_actions ?? []) as Doc[]);
  }
  const { job_schedule: schedule, job_actions: _a, action_defaults: _d, ...rest } = patch;
  const r = await mutate(app.store.jobs, p.projectId, id, p.userId, async (rec) => {
    const doc: Doc = { ...rec.doc, ...rest, user_id: p.userId };
    if (schedule) doc.job_schedule = { ...((rec.doc.job_schedule as Doc | undefined) ?? {}), ...(schedule as Doc) };
    if (newActions) doc.job_actions = newActions;
    return { doc, columns: columnsOf(doc), out: null };
  });
  return r.version;
}

/** agentPatch lets an agent record the run status of its job, and nothing else. */
async function agentPatch(app: FastifyInstance, p: Principal, id: string, patch: Doc): Promise<number> {
  const r = await mutate(app.store.jobs, p.projectId, id, p.userId, async (rec) => {
    const bound = agentClient(p);
    if (bound && rec.doc.client_id !== bound) throw apiError('FLOE_API_ERR_NOT_FOUND', 'job', id);
    const current = (rec.doc.job_schedule ?? {}) as Doc;
    const changed: string[] = [];
    for (const [k, v] of Object.entries(patch)) {
      if (k === 'job_schedule') {
        for (const [sk, sv] of Object.entries(v as Doc)) {
          if (!AGENT_SCHEDULE_KEYS.has(sk) && !sameJson(sv, current[sk])) changed.push(`job_schedule.${sk}`);
        }
      } else if (k !== 'session_tag' && !sameJson(v, rec.doc[k])) changed.push(k);
    }
    if (changed.length) throw apiError('FLOE_API_ERR_AGENT_FIELDS', changed.join(', '));
    const doc: Doc = { ...rec.doc, job_schedule: { ...current, ...((patch.job_schedule as Doc | undefined) ?? {}) } };
    if (patch.session_tag !== undefined) doc.session_tag = patch.session_tag;
    return { doc, out: null };
  });
  return r.version;
}

/** visibleJob gets a job the caller may see (an agent bound to a client: that client's only). */
async function visibleJob(app: FastifyInstance, p: Principal, id: string): Promise<StoredRecord> {
  const rec = await app.store.jobs.get(p.projectId, id);
  const bound = agentClient(p);
  if (!rec || (bound && rec.doc.client_id !== bound)) throw apiError('FLOE_API_ERR_NOT_FOUND', 'job', id);
  return rec;
}

/** Capability lists of a client, by the freezer_action keys they constrain. */
const CAPABILITIES: Array<[list: string, keys: string[], what: string]> = [
  ['supported_actions', ['action'], 'action'],
  ['supported_modes', ['mode'], 'mode'],
  ['supported_storages', ['storage'], 'storage'],
  ['supported_engines', ['engine_name', 'engine'], 'engine'],
];

/** checkClient: the job's client is registered here and supports every action (422 otherwise). */
async function checkClient(app: FastifyInstance, p: Principal, clientId: string, jobActions: Doc[]): Promise<void> {
  const client = await app.store.clients.get(p.projectId, clientId);
  if (!client) throw apiError('FLOE_API_ERR_UNKNOWN_CLIENT', clientId);
  for (const a of jobActions) {
    const fa = (a.freezer_action ?? {}) as Doc;
    for (const [list, keys, what] of CAPABILITIES) {
      const supported = client.doc[list];
      if (!Array.isArray(supported) || supported.length === 0) continue;
      for (const k of keys) {
        const v = fa[k];
        if (typeof v === 'string' && v !== '' && !supported.includes(v)) throw apiError('FLOE_API_ERR_CAPABILITY', clientId, what, v);
      }
    }
  }
}

/** applyDefaults merges action_defaults into each action's freezer_action where the key is missing. */
function applyDefaults(actions: Doc[], defaults: Doc | undefined): Doc[] {
  return actions.map((a) => {
    const fa = { ...((a.freezer_action as Doc | undefined) ?? {}) };
    for (const [k, v] of Object.entries(defaults ?? {})) if (fa[k] === undefined || fa[k] === null) fa[k] = v;
    return { ...a, freezer_action: fa };
  });
}

function columnsOf(doc: Doc): { clientId: string; sessionId: string } {
  return { clientId: String(doc.client_id ?? ''), sessionId: typeof doc.session_id === 'string' ? doc.session_id : '' };
}

/** jobDocumentOf is freezer-api's job document. */
export function jobDocumentOf(r: StoredRecord): Doc {
  return { ...r.doc, job_id: r.id, user_id: r.userId, project_id: r.projectId };
}
