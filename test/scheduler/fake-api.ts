/**
 * A small freezer-api v2 for the scheduler's tests: the endpoints a node uses, with Freezer's rules
 * (job_schedule merged on PATCH, completed jobs left out of a client's list, session start/end and
 * hold-off as reference/freezer.md §5.3), and faults to inject.
 *
 * `FakeFreezerApi` is the model. Used directly it is an in-memory `SchedulerApi` (with a FakeClock, no
 * I/O at all); `serve()` puts the same model behind a real HTTP server on 127.0.0.1 for client tests.
 * Faults: `down` (every call fails as "connection refused"), and `loseAnswer` (the next matching call is
 * processed, then its answer is lost: the ambiguous failure the outbox must not turn into a duplicate).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApiRequestError, SessionAnswer } from '../../scheduler/client.js';
import type { SchedulerApi } from '../../scheduler/scheduler.js';

export type Doc = Record<string, unknown>;

export interface Call {
  method: string;
  path: string;
  body?: unknown;
}

function refused(what: string): ApiRequestError {
  return new ApiRequestError(`${what}: ECONNREFUSED`, { status: 0, retryable: true, maybeSent: false });
}

/** find looks a key up anywhere in a document (Freezer's search). */
function hasPair(doc: unknown, key: string, value: unknown): boolean {
  if (Array.isArray(doc)) return doc.some((d) => hasPair(d, key, value));
  if (doc && typeof doc === 'object') {
    for (const [k, v] of Object.entries(doc as Doc)) {
      if (k === key && JSON.stringify(v) === JSON.stringify(value)) return true;
      if (hasPair(v, key, value)) return true;
    }
  }
  return false;
}

export class FakeFreezerApi implements SchedulerApi {
  readonly url = 'http://fake-api/';
  project = 'proj';
  token = 'secret-token-123';
  clients = new Map<string, Doc>();
  jobs = new Map<string, Doc>();
  backups: Doc[] = [];
  /** run reports by run_id (floe's POST /jobs/{id}/runs: idempotent on run_id) */
  runs = new Map<string, Doc>();
  sessions = new Map<string, Doc>();
  calls: Call[] = [];
  /** every call fails as if the server were stopped */
  down = false;
  /** the next call whose "METHOD path" matches is processed, then fails as if its answer were lost */
  loseAnswer?: RegExp;
  /** seconds, for sessions */
  now: () => number = () => Math.floor(Date.now() / 1000);

  #enter(method: string, path: string, body?: unknown): void {
    if (this.down) throw refused(`${method} ${path}`);
    this.calls.push({ method, path, body: body === undefined ? undefined : structuredClone(body) });
  }

  #leave(method: string, path: string): void {
    if (this.loseAnswer && this.loseAnswer.test(`${method} ${path}`)) {
      this.loseAnswer = undefined;
      throw new ApiRequestError(`${method} ${path}: ECONNRESET socket hang up`, { status: 0, retryable: true, maybeSent: true });
    }
  }

  /** patches lists the job_schedule PATCHes made to a job, in order. */
  patches(jobId: string): Doc[] {
    return this.calls.filter((c) => c.method === 'PATCH' && c.path === `/jobs/${jobId}`).map((c) => c.body as Doc);
  }

  /** statuses lists the job_schedule.status values a job was PATCHed with. */
  statuses(jobId: string): string[] {
    return this.patches(jobId).map((p) => (p.job_schedule as Doc | undefined)?.status).filter((s): s is string => typeof s === 'string');
  }

  addJob(doc: Doc): Doc {
    const job: Doc = { session_id: '', session_tag: 0, ...structuredClone(doc) };
    job.job_schedule = { time_created: this.now(), time_started: -1, time_ended: -1, ...((doc.job_schedule as Doc) ?? {}) };
    this.jobs.set(String(job.job_id), job);
    return job;
  }

  /** event is POST /jobs/{id}/event. */
  event(jobId: string, event: 'start' | 'stop' | 'abort'): void {
    const js = this.jobs.get(jobId)!.job_schedule as Doc;
    js.event = event;
    if (event === 'start') Object.assign(js, { status: '', result: '' });
  }

  schedule(jobId: string): Doc {
    return this.jobs.get(jobId)!.job_schedule as Doc;
  }

  addSession(id: string, doc: Doc = {}): Doc {
    const s = { session_tag: 0, hold_off: 30, jobs: {}, status: 'active', result: '', time_start: -1, time_end: -1, schedule: {}, ...doc };
    this.sessions.set(id, s);
    return s;
  }

  /** attach is PUT /sessions/{sid}/jobs/{jid}: the job takes the session's schedule and tag. */
  attach(sid: string, jid: string): void {
    const s = this.sessions.get(sid)!;
    const job = this.jobs.get(jid)!;
    (s.jobs as Doc)[jid] = { client_id: job.client_id, status: '', result: '', time_started: -1, time_ended: -1 };
    const js: Doc = {};
    for (const [k, v] of Object.entries(job.job_schedule as Doc)) if (!k.startsWith('schedule_')) js[k] = v;
    Object.assign(js, s.schedule as Doc);
    Object.assign(job, { session_id: sid, session_tag: s.session_tag, job_schedule: js });
  }

  async registerClient(info: Doc): Promise<void> {
    this.#enter('POST', '/clients', info);
    this.clients.set(String(info.client_id), structuredClone(info));
    this.#leave('POST', '/clients');
  }

  async listJobs(clientId: string): Promise<Doc[]> {
    this.#enter('GET', '/jobs', { match: [{ client_id: clientId }], match_not: [{ status: 'completed' }] });
    const out = [...this.jobs.values()]
      .filter((j) => j.client_id === clientId && (j.job_schedule as Doc).status !== 'completed')
      .map((j) => structuredClone(j));
    this.#leave('GET', '/jobs');
    return out;
  }

  async patchJob(jobId: string, patch: Doc): Promise<void> {
    const path = `/jobs/${jobId}`;
    this.#enter('PATCH', path, patch);
    const job = this.jobs.get(jobId);
    if (!job) throw new ApiRequestError(`PATCH ${path}: HTTP 404`, { status: 404, retryable: false, maybeSent: false });
    for (const [k, v] of Object.entries(patch)) {
      if (k === 'job_schedule') Object.assign(job.job_schedule as Doc, structuredClone(v));
      else job[k] = structuredClone(v);
    }
    this.#leave('PATCH', path);
  }

  async postRun(jobId: string, body: Doc): Promise<string> {
    const path = `/jobs/${jobId}/runs`;
    this.#enter('POST', path, body);
    if (!this.jobs.has(jobId)) throw new ApiRequestError(`POST ${path}: HTTP 404`, { status: 404, retryable: false, maybeSent: false });
    const id = String(body.run_id);
    if (!this.runs.has(id)) this.runs.set(id, { ...structuredClone(body), job_id: jobId });
    this.#leave('POST', path);
    return id;
  }

  /** runsOf lists the run reports of a job, in the order they were recorded. */
  runsOf(jobId: string): Doc[] {
    return [...this.runs.values()].filter((r) => r.job_id === jobId);
  }

  async createBackup(doc: Doc): Promise<string> {
    this.#enter('POST', '/backups', doc);
    for (const k of ['container', 'hostname', 'backup_name']) {
      if (!doc[k]) throw new ApiRequestError(`POST /backups: HTTP 400: ${k} is required`, { status: 400, retryable: false, maybeSent: false });
    }
    const id = `b${this.backups.length + 1}`;
    this.backups.push({ backup_id: id, backup_metadata: structuredClone(doc) });
    this.#leave('POST', '/backups');
    return id;
  }

  async findBackups(match: Doc[]): Promise<Doc[]> {
    this.#enter('GET', '/backups', { match });
    const out = this.backups.filter((b) => match.every((m) => Object.entries(m).every(([k, v]) => hasPair(b, k, v))));
    this.#leave('GET', '/backups');
    return out;
  }

  async sessionAction(sessionId: string, body: Doc): Promise<SessionAnswer> {
    const path = `/sessions/${sessionId}/action`;
    this.#enter('POST', path, body);
    const s = this.sessions.get(sessionId);
    if (!s) throw new ApiRequestError(`POST ${path}: HTTP 404`, { status: 404, retryable: false, maybeSent: false });
    const now = this.now();
    const start = body.start as { job_id: string; current_tag: number } | undefined;
    const end = body.end as { job_id: string; result: string } | undefined;
    const job = (s.jobs as Record<string, Doc>)[(start ?? end)!.job_id];
    if (!job) throw new ApiRequestError(`POST ${path}: HTTP 404`, { status: 404, retryable: false, maybeSent: false });
    let result = 'success';
    if (start) {
      const tag = Number(s.session_tag);
      if (start.current_tag > tag) throw new ApiRequestError(`POST ${path}: HTTP 400`, { status: 400, retryable: false, maybeSent: false });
      if (now - Number(s.time_start) <= Number(s.hold_off)) {
        if (start.current_tag < tag) Object.assign(job, { status: 'running', result: '', time_started: now });
        else result = 'hold-off';
      } else if (start.current_tag === tag) {
        Object.assign(s, { session_tag: tag + 1, time_start: now, status: 'running', result: '' });
        Object.assign(job, { status: 'running', result: '', time_started: now });
      } else {
        result = 'out-of-sync';
      }
    } else {
      Object.assign(job, { status: 'completed', result: end!.result, time_ended: now });
      const all = Object.values(s.jobs as Record<string, Doc>);
      const overall = all.some((j) => j.status !== 'completed') ? 'running' : all.some((j) => j.result !== 'success') ? 'fail' : 'success';
      if (s.status !== 'completed' && overall !== 'running') Object.assign(s, { status: 'completed', result: overall, time_end: now });
    }
    this.#leave('POST', path);
    return { result, session_tag: Number(s.session_tag) };
  }

  /**
   * serve puts the model behind HTTP on 127.0.0.1 (freezer-api's paths under /v2/{project}, floe's
   * /auth/token). `down` closes connections without an answer; `loseAnswer` destroys the socket after
   * processing.
   */
  async serve(): Promise<{ url: string; close(): Promise<void>; requests: Array<{ method: string; url: string; headers: http.IncomingHttpHeaders; body: string }> }> {
    const requests: Array<{ method: string; url: string; headers: http.IncomingHttpHeaders; body: string }> = [];
    const server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        requests.push({ method: req.method!, url: req.url!, headers: req.headers, body: text });
        void this.#route(req.method!, req.url!, req.headers, text).then(
          ({ status, body }) => {
            res.writeHead(status, { 'Content-Type': 'application/json' });
            res.end(body === undefined ? '' : JSON.stringify(body));
          },
          (err: unknown) => {
            if (err instanceof ApiRequestError && err.status === 0) {
              res.destroy();
              return;
            }
            const status = err instanceof ApiRequestError ? err.status : 500;
            res.writeHead(status, { 'Content-Type': 'application/json' });
            res.end(JSON.stringify({ title: 'error', description: (err as Error).message }));
          },
        );
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    return {
      url: `http://127.0.0.1:${port}`,
      requests,
      close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }),
    };
  }

  async #route(method: string, url: string, headers: http.IncomingHttpHeaders, text: string): Promise<{ status: number; body?: unknown }> {
    if (headers['x-auth-token'] !== this.token) return { status: 401, body: { title: 'Unauthorized', description: 'bad token' } };
    const u = new URL(url, 'http://x');
    const body = text ? (JSON.parse(text) as Doc) : undefined;
    if (method === 'GET' && u.pathname === '/auth/token') return { status: 200, body: { project_id: this.project, role: 'agent' } };
    const m = /^\/v2\/([^/]+)(\/.*)$/.exec(u.pathname);
    if (!m || m[1] !== this.project) return { status: 404 };
    const path = m[2].replace(/\/$/, '');
    let r: RegExpExecArray | null;
    if (method === 'POST' && path === '/clients') {
      await this.registerClient(body!);
      return { status: 201, body: { client_id: body!.client_id } };
    }
    if (method === 'GET' && path === '/jobs') {
      const match = ((body?.match as Doc[] | undefined) ?? []).find((x) => 'client_id' in x);
      const all = await this.listJobs(String(match?.client_id ?? ''));
      const limit = Number(u.searchParams.get('limit') ?? 10);
      const offset = Number(u.searchParams.get('offset') ?? 0);
      return { status: 200, body: { jobs: all.slice(offset, offset + limit) } };
    }
    if (method === 'PATCH' && (r = /^\/jobs\/([^/]+)$/.exec(path))) {
      await this.patchJob(decodeURIComponent(r[1]), body!);
      return { status: 200, body: { job_id: r[1], version: 1 } };
    }
    if (method === 'POST' && (r = /^\/jobs\/([^/]+)\/runs$/.exec(path))) {
      return { status: 201, body: { run_id: await this.postRun(decodeURIComponent(r[1]), body!) } };
    }
    if (method === 'POST' && path === '/backups') return { status: 201, body: { backup_id: await this.createBackup(body!) } };
    if (method === 'GET' && path === '/backups') return { status: 200, body: { backups: await this.findBackups((body?.match as Doc[]) ?? []) } };
    if (method === 'POST' && (r = /^\/sessions\/([^/]+)\/action$/.exec(path))) {
      return { status: 202, body: await this.sessionAction(decodeURIComponent(r[1]), body!) };
    }
    return { status: 404, body: { title: 'Not found' } };
  }
}
