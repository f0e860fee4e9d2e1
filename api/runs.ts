/**
 * Runs: the API's record of every action run (backup, restore, exec, admin, info) with its metrics,
 * as Freezer's SQL backend keeps `action_reports`. Not a Freezer endpoint: floe's addition.
 *
 *   POST /jobs/{job_id}/runs   201 {"run_id"} new | 200 {"run_id"} already recorded (same run_id, same job)
 *   GET  /jobs/{job_id}/runs   200 {"runs": [...]}   newest first; filters as below
 *   GET  /runs                 200 {"runs": [...]}   ?limit&offset&job_id&client_id&result&action&time_after&time_before
 *
 * POST is idempotent on the agent's `run_id` (it keeps the id before posting and posts again after a
 * lost answer): the first record wins, a repeat changes nothing. The same run_id on another job is a 409.
 * An agent token posts runs of its own client's jobs only (another client's job is a 404, as for GET
 * /jobs/{id}); it cannot read runs. Filters and paging are SQL on indexed columns.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { apiError } from './errors.js';
import { Doc, agentClient, newId, principal, projectOf, toEpoch } from './http.js';
import { idParams, projectParams, withErrors } from './schemas/common.js';
import { runCreateBody, runDocument, runListQuery } from './schemas/runs.js';

const tags = ['runs'];
const listResponse = { 200: { type: 'object', properties: { runs: { type: 'array', items: runDocument } } } };
const idResponse = { type: 'object', properties: { run_id: { type: 'string' } } };

interface RunBody {
  run_id?: string; action: string; result: string; exit_code: number; time_started: number; time_ended: number;
  duration: number; bytes_read: number; bytes_stored: number; rate: number; backup_id?: string; session_id?: string; log?: string;
}

interface RunQs {
  limit?: number; offset?: number; job_id?: string; client_id?: string; result?: string; action?: string;
  time_after?: string; time_before?: string;
}

export default async function runsRoutes(app: FastifyInstance): Promise<void> {
  const db = app.store.db;

  app.post('/jobs/:job_id/runs', {
    config: { permission: 'runs:create' },
    schema: {
      tags, summary: 'Record one run of an action of a job, with its metrics (idempotent on run_id)', params: idParams('job_id'), body: runCreateBody,
      response: withErrors({ 200: idResponse, 201: idResponse }, 404, 409),
    },
  }, async (req, reply) => {
    const p = principal(req);
    const jobId = (req.params as { job_id: string }).job_id;
    const b = req.body as RunBody;
    if (b.time_ended < b.time_started) throw apiError('FLOE_API_ERR_VALIDATION', 'body/time_ended must not be before time_started');
    const job = await app.store.jobs.get(p.projectId, jobId);
    const bound = agentClient(p);
    if (!job || (bound && job.doc.client_id !== bound)) throw apiError('FLOE_API_ERR_NOT_FOUND', 'job', jobId);
    const id = b.run_id ?? newId();
    const data = {
      projectId: p.projectId, id, userId: p.userId, jobId, clientId: String(job.doc.client_id ?? ''),
      action: b.action, result: b.result, exitCode: b.exit_code,
      timeStarted: BigInt(b.time_started), timeEnded: BigInt(b.time_ended), duration: b.duration,
      bytesRead: BigInt(b.bytes_read), bytesStored: BigInt(b.bytes_stored), rate: b.rate,
      backupId: b.backup_id ?? '', sessionId: b.session_id ?? '', log: b.log ?? '',
    };
    try {
      await db.run.create({ data });
    } catch (err) {
      if ((err as { code?: string })?.code !== 'P2002') throw err;
      const first = await db.run.findUnique({ where: { projectId_id: { projectId: p.projectId, id } }, select: { jobId: true } });
      if (!first || first.jobId !== jobId) throw apiError('FLOE_API_ERR_RUN_EXISTS', id, first?.jobId ?? '?');
      reply.code(200);
      return { run_id: id };
    }
    reply.code(201);
    return { run_id: id };
  });

  app.get('/jobs/:job_id/runs', {
    config: { permission: 'runs:get_all' },
    schema: { tags, summary: 'List the runs of a job (newest first)', params: idParams('job_id'), querystring: runListQuery(false), response: withErrors(listResponse) },
  }, async (req) => ({ runs: await listRuns(app, req, (req.params as { job_id: string }).job_id) }));

  app.get('/runs', {
    config: { permission: 'runs:get_all' },
    schema: { tags, summary: 'List runs (newest first)', params: projectParams, querystring: runListQuery(true), response: withErrors(listResponse) },
  }, async (req) => ({ runs: await listRuns(app, req, (req.query as RunQs).job_id) }));
}

/** listRuns pages the project's runs, newest first, filtered by indexed columns in the database. */
async function listRuns(app: FastifyInstance, req: FastifyRequest, jobId: string | undefined): Promise<Doc[]> {
  const qs = req.query as RunQs;
  const where: Record<string, unknown> = { projectId: projectOf(req) };
  if (jobId !== undefined) where.jobId = jobId;
  if (qs.client_id !== undefined) where.clientId = qs.client_id;
  if (qs.result !== undefined) where.result = qs.result;
  if (qs.action !== undefined) where.action = qs.action;
  if (qs.time_after !== undefined || qs.time_before !== undefined) {
    where.timeStarted = {
      ...(qs.time_after !== undefined ? { gte: BigInt(toEpoch(qs.time_after, 'time_after')) } : {}),
      ...(qs.time_before !== undefined ? { lte: BigInt(toEpoch(qs.time_before, 'time_before')) } : {}),
    };
  }
  const rows = await app.store.db.run.findMany({
    where, orderBy: [{ timeStarted: 'desc' }, { id: 'asc' }], skip: qs.offset ?? 0, take: qs.limit ?? 10,
  });
  return rows.map((r) => ({
    run_id: r.id, job_id: r.jobId, client_id: r.clientId, project_id: r.projectId, user_id: r.userId,
    action: r.action, result: r.result, exit_code: r.exitCode,
    time_started: Number(r.timeStarted), time_ended: Number(r.timeEnded), duration: r.duration,
    bytes_read: Number(r.bytesRead), bytes_stored: Number(r.bytesStored), rate: r.rate,
    backup_id: r.backupId, session_id: r.sessionId, log: r.log,
  }));
}
