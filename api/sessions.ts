/**
 * Sessions: jobs on several nodes that run together, so a distributed system is captured as one
 * consistent set (reference/freezer.md §5.3, §6.2).
 *
 *   GET    /sessions                          200 {"sessions": [...]}
 *   POST   /sessions                          201 {"session_id"}   status "active", session_tag 0,
 *                                                                   hold_off 30 unless given
 *   GET    /sessions/{id}                     200 | 404
 *   PATCH  /sessions/{id}                     200 {"session_id", "version"}
 *   POST   /sessions/{id}                     201 {"session_id", "version"}   create or replace
 *   DELETE /sessions/{id}                     204 | 404
 *   POST   /sessions/{id}/action              202 {"result", "session_tag"}   start / end (below)
 *   PUT    /sessions/{id}/jobs/{job_id}       204   attach: the job takes the session's schedule
 *   DELETE /sessions/{id}/jobs/{job_id}       204   detach: the job is stopped
 *
 * start {job_id, current_tag=t} against the session's tag T, within `hold_off` seconds of the last start
 * or not: t > T -> 400; inside: t < T -> success (the job joins the run), t == T -> "hold-off";
 * outside: t == T -> a new run (T+1) -> success, else "out-of-sync".
 * end {job_id, result} marks the job completed; when every job is, the session is completed with
 * result success (all succeeded) or fail.
 */
import type { FastifyInstance } from 'fastify';
import { apiError } from './errors.js';
import { StoredRecord } from './db/store.js';
import { Doc, agentClient, listQuery, mutate, newId, nowSeconds, principal, projectOf, withoutKeys } from './http.js';
import { ID_PATTERN, anyDocument, filterBody, idParams, listQuery as listQs, projectParams, withErrors } from './schemas/common.js';
import { sessionActionBody, sessionCreateBody, sessionPatchBody } from './schemas/sessions.js';

const tags = ['sessions'];
const params = idParams('session_id');
const jobParams = {
  type: 'object',
  required: ['project_id', 'session_id', 'job_id'],
  properties: { ...params.properties, job_id: { type: 'string', pattern: ID_PATTERN } },
} as const;
const SERVER_KEYS = ['session_id', 'user_id', 'project_id', '_version'];
/** Freezer's default hold-off: starts within 30 s of the last one join the same run. */
const DEFAULT_HOLD_OFF = 30;
const idVersion = { type: 'object', properties: { session_id: { type: 'string' }, version: { type: 'integer' } } };
/** job_schedule keys that say when a job runs (replaced by a session's schedule on attach). */
const TRIGGER_KEYS = /^schedule_/;

export default async function sessionsRoutes(app: FastifyInstance): Promise<void> {
  const sessions = app.store.sessions;

  app.get('/sessions', {
    config: { permission: 'sessions:get_all' },
    schema: {
      tags, summary: 'List sessions', params: projectParams, querystring: listQs(), body: filterBody(),
      response: withErrors({ 200: { type: 'object', properties: { sessions: { type: 'array', items: anyDocument } } } }),
    },
  }, async (req) => {
    const rows = await sessions.list(projectOf(req), listQuery(req));
    return { sessions: rows.map(sessionDocumentOf) };
  });

  app.post('/sessions', {
    config: { permission: 'sessions:create' },
    schema: {
      tags, summary: 'Create a session', params: projectParams, body: sessionCreateBody,
      response: withErrors({ 201: { type: 'object', properties: { session_id: { type: 'string' } } } }),
    },
  }, async (req, reply) => {
    const p = principal(req);
    const id = newId();
    const body = (req.body ?? {}) as Doc;
    await sessions.create(p.projectId, id, p.userId, { ...newSession(body), status: 'active', jobs: {} });
    reply.code(201);
    return { session_id: id };
  });

  app.get('/sessions/:session_id', {
    config: { permission: 'sessions:get' },
    schema: { tags, summary: 'Get a session', params, response: withErrors({ 200: anyDocument }, 404) },
  }, async (req) => {
    const id = (req.params as { session_id: string }).session_id;
    const rec = await sessions.get(projectOf(req), id);
    if (!rec) throw apiError('FLOE_API_ERR_NOT_FOUND', 'session', id);
    return sessionDocumentOf(rec);
  });

  app.patch('/sessions/:session_id', {
    config: { permission: 'sessions:update' },
    schema: { tags, summary: 'Change a session', params, body: sessionPatchBody, response: withErrors({ 200: idVersion }, 404, 409) },
  }, async (req) => {
    const p = principal(req);
    const id = (req.params as { session_id: string }).session_id;
    const patch = withoutKeys((req.body ?? {}) as Doc, SERVER_KEYS);
    const r = await mutate(sessions, p.projectId, id, p.userId, async (rec) => ({ doc: { ...rec.doc, ...patch }, out: null }));
    return { session_id: id, version: r.version };
  });

  app.post('/sessions/:session_id', {
    config: { permission: 'sessions:create' },
    schema: { tags, summary: 'Create or replace a session', params, body: sessionCreateBody, response: withErrors({ 201: idVersion }) },
  }, async (req, reply) => {
    const p = principal(req);
    const id = (req.params as { session_id: string }).session_id;
    const body = (req.body ?? {}) as Doc;
    const version = await sessions.replace(p.projectId, id, p.userId, { status: 'active', jobs: {}, ...newSession(body) });
    reply.code(201);
    return { session_id: id, version };
  });

  app.delete('/sessions/:session_id', {
    config: { permission: 'sessions:delete' },
    schema: { tags, summary: 'Delete a session', params, response: withErrors({ 204: { type: 'null' } }, 404) },
  }, async (req, reply) => {
    const id = (req.params as { session_id: string }).session_id;
    if (!(await sessions.delete(projectOf(req), id))) throw apiError('FLOE_API_ERR_NOT_FOUND', 'session', id);
    reply.code(204).send();
  });

  app.post('/sessions/:session_id/action', {
    config: { permission: 'sessions:action:create' },
    schema: {
      tags, summary: 'A job of the session starts or ends', params, body: sessionActionBody,
      response: withErrors({ 202: { type: 'object', properties: { result: { type: 'string' }, session_tag: { type: 'integer' } } } }, 404, 409),
    },
  }, async (req, reply) => {
    const p = principal(req);
    const id = (req.params as { session_id: string }).session_id;
    const body = req.body as { start?: { job_id: string; current_tag: number }; end?: { job_id: string; result: string } };
    const now = nowSeconds(app);
    const r = await mutate(sessions, p.projectId, id, p.userId, async (rec) => {
      const doc = structuredClone(rec.doc);
      const jobId = (body.start ?? body.end)!.job_id;
      const job = sessionJob(doc, jobId, id);
      const bound = agentClient(p);
      if (bound && job.client_id !== bound) throw apiError('FLOE_API_ERR_AGENT_SCOPE', bound);
      const result = body.start ? start(doc, job, body.start.current_tag, now) : end(doc, job, body.end!.result, now);
      return result === 'success' ? { doc, out: { result, tag: doc.session_tag } } : { out: { result, tag: doc.session_tag } };
    });
    reply.code(202);
    return { result: r.out.result, session_tag: Number(r.out.tag ?? 0) };
  });

  app.put('/sessions/:session_id/jobs/:job_id', {
    config: { permission: 'sessions:job:add' },
    schema: { tags, summary: 'Attach a job: it takes the session\'s schedule', params: jobParams, response: withErrors({ 204: { type: 'null' } }, 404, 409) },
  }, async (req, reply) => {
    const p = principal(req);
    const { session_id: sid, job_id: jid } = req.params as { session_id: string; job_id: string };
    const job = await app.store.jobs.get(p.projectId, jid);
    if (!job) throw apiError('FLOE_API_ERR_NOT_FOUND', 'job', jid);
    const js = (job.doc.job_schedule ?? {}) as Doc;
    const s = await mutate(sessions, p.projectId, sid, p.userId, async (rec) => {
      const jobs = { ...((rec.doc.jobs ?? {}) as Doc) };
      jobs[jid] = { client_id: job.doc.client_id, status: js.status ?? '', result: js.result ?? '', time_started: js.time_started ?? -1, time_ended: js.time_ended ?? -1 };
      return { doc: { ...rec.doc, jobs }, out: rec.doc };
    });
    const session = s.doc ?? s.out;
    await mutate(app.store.jobs, p.projectId, jid, p.userId, async (rec) => {
      const schedule: Doc = {};
      for (const [k, v] of Object.entries((rec.doc.job_schedule ?? {}) as Doc)) if (!TRIGGER_KEYS.test(k)) schedule[k] = v;
      Object.assign(schedule, (session.schedule ?? {}) as Doc);
      const doc: Doc = { ...rec.doc, session_id: sid, session_tag: session.session_tag ?? 0, job_schedule: schedule };
      return { doc, columns: { clientId: String(doc.client_id ?? ''), sessionId: sid }, out: null };
    });
    reply.code(204).send();
  });

  app.delete('/sessions/:session_id/jobs/:job_id', {
    config: { permission: 'sessions:job:remove' },
    schema: { tags, summary: 'Detach a job: it is stopped', params: jobParams, response: withErrors({ 204: { type: 'null' } }, 404, 409) },
  }, async (req, reply) => {
    const p = principal(req);
    const { session_id: sid, job_id: jid } = req.params as { session_id: string; job_id: string };
    await mutate(sessions, p.projectId, sid, p.userId, async (rec) => {
      const jobs = { ...((rec.doc.jobs ?? {}) as Doc) };
      if (!(jid in jobs)) return { out: null };
      delete jobs[jid];
      return { doc: { ...rec.doc, jobs }, out: null };
    });
    const job = await app.store.jobs.get(p.projectId, jid);
    if (job && job.doc.session_id === sid) {
      await mutate(app.store.jobs, p.projectId, jid, p.userId, async (rec) => {
        const doc: Doc = { ...rec.doc, session_id: '', session_tag: 0, job_schedule: { ...((rec.doc.job_schedule ?? {}) as Doc), event: 'stop' } };
        return { doc, columns: { clientId: String(doc.client_id ?? ''), sessionId: '' }, out: null };
      });
    }
    reply.code(204).send();
  });
}

/** newSession is a session document from a create/replace body, with Freezer's defaults. */
function newSession(body: Doc): Doc {
  return {
    description: '', hold_off: DEFAULT_HOLD_OFF, schedule: {}, result: '',
    time_start: -1, time_end: -1, time_started: -1, time_ended: -1,
    ...withoutKeys(body, SERVER_KEYS),
    session_tag: typeof body.session_tag === 'number' ? body.session_tag : 0,
  };
}

function sessionJob(doc: Doc, jobId: string, sessionId: string): Doc {
  const jobs = (doc.jobs ?? {}) as Record<string, Doc>;
  const job = jobs[jobId];
  if (!job || typeof job !== 'object') throw apiError('FLOE_API_ERR_NOT_IN_SESSION', jobId, sessionId);
  return job;
}

/** start applies a job's start request to the session document (see the file comment). */
function start(doc: Doc, job: Doc, jobTag: number, now: number): string {
  const tag = Number(doc.session_tag ?? 0);
  if (jobTag > tag) throw apiError('FLOE_API_ERR_SESSION_TAG', tag, jobTag);
  const holdOff = Number(doc.hold_off ?? DEFAULT_HOLD_OFF);
  const sinceLastStart = now - Number(doc.time_start ?? -1);
  const markRunning = () => Object.assign(job, { status: 'running', result: '', time_started: now });
  if (sinceLastStart <= holdOff) {
    if (jobTag < tag) {
      markRunning();
      return 'success';
    }
    return 'hold-off';
  }
  if (jobTag !== tag) return 'out-of-sync';
  Object.assign(doc, { session_tag: tag + 1, time_start: now, status: 'running', result: '' });
  markRunning();
  return 'success';
}

/** end records a job's end and completes the session when every job has ended. */
function end(doc: Doc, job: Doc, result: string, now: number): string {
  Object.assign(job, { status: 'completed', result, time_ended: now });
  const jobs = Object.values((doc.jobs ?? {}) as Record<string, Doc>);
  const overall = jobs.some((j) => j.status !== 'completed') ? 'running' : jobs.some((j) => j.result !== 'success') ? 'fail' : 'success';
  if (doc.status !== 'completed' && overall !== 'running') Object.assign(doc, { time_end: now, result: overall, status: 'completed' });
  return 'success';
}

/** sessionDocumentOf is freezer-api's session document. */
export function sessionDocumentOf(r: StoredRecord): Doc {
  return { ...r.doc, session_id: r.id, user_id: r.userId, project_id: r.projectId };
}
