/**
 * The scheduler's API client: the part of freezer-api v2 (reference/freezer.md §6) a node uses.
 *
 *   POST  /v2/{project}/clients                register this node (201; 409 = already registered)
 *   GET   /v2/{project}/jobs?limit&offset      its jobs; the filter travels as a JSON body on GET,
 *                                              {"match":[{"client_id"}],"match_not":[{"status":"completed"}]}
 *   PATCH /v2/{project}/jobs/{id}              run status: job_schedule keys, session_tag
 *   POST  /v2/{project}/backups                an agent result document (+ job_id, run_metrics)
 *   GET   /v2/{project}/backups                find a document posted before (by run_metrics.report_id)
 *   POST  /v2/{project}/jobs/{id}/runs         one action run's metrics (floe's API; idempotent on run_id)
 *   POST  /v2/{project}/sessions/{id}/action   session start / end (§5.3)
 *   GET   /auth/token                          floe's: the token's project, when --project is not given
 *
 * Every request sends `X-Auth-Token`, `Content-Type` and `Accept: application/json`. The token never
 * appears in a message or a log line.
 *
 * node:http is used rather than fetch: fetch refuses a body on GET, and Freezer's filters are GET bodies.
 * Connections are not kept alive: a poll every few seconds gains little from it, and a fresh connection
 * makes failures unambiguous (refused = not sent).
 *
 * Failures are classified for the outbox (store.ts): `retryable` (the API is down or overloaded: try
 * again later) and `maybeSent` (the request may have been processed though no answer came: a POST must
 * look before it repeats itself). A 4xx other than 408/429 is permanent.
 */
import http from 'node:http';
import https from 'node:https';
import { hostname as osHostname } from 'node:os';
import { ExitCode, FloeError } from '../engine/errors.js';

export type Doc = Record<string, unknown>;

/** DEFAULT_TIMEOUT_MS: a request that takes longer is abandoned (and counts as maybe sent). */
export const DEFAULT_TIMEOUT_MS = 30_000;
/** PAGE: jobs per page (Freezer asks 10; floe's API allows up to 1000). */
const PAGE = 100;
/** MAX_ANSWER_BYTES bounds what is read of an answer (a page of 100 jobs is far below it). */
const MAX_ANSWER_BYTES = 32 * 1024 * 1024;

/** ApiRequestError: a request failed. `status` is 0 when no HTTP answer came. */
export class ApiRequestError extends FloeError {
  readonly status: number;
  readonly retryable: boolean;
  readonly maybeSent: boolean;
  constructor(message: string, o: { status: number; retryable: boolean; maybeSent: boolean; cause?: unknown }) {
    super('FLOE_ERR_SCHEDULER_API', message, ExitCode.FAILURE, { cause: o.cause });
    this.status = o.status;
    this.retryable = o.retryable;
    this.maybeSent = o.maybeSent;
  }
}

export interface ApiClientOptions {
  /** base URL, e.g. http://127.0.0.1:9090 (a path prefix is kept) */
  url: string;
  token: string;
  /** the project; when absent, learned from GET /auth/token (floe's API) on first use */
  project?: string;
  timeoutMs?: number;
}

/** SchedulerApi: the part of the client the scheduler uses (tests give it an in-memory API). */
export type SchedulerApi = Pick<ApiClient, 'url' | 'registerClient' | 'listJobs' | 'patchJob' | 'createBackup' | 'findBackups' | 'sessionAction' | 'postRun'>;

export interface SessionAnswer {
  result: string;
  session_tag: number;
}

/** Network errors that mean the request never left: safe to repeat anything. */
const NOT_SENT = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL']);

export class ApiClient {
  readonly #base: URL;
  readonly #token: string;
  readonly #timeoutMs: number;
  #project?: string;

  constructor(o: ApiClientOptions) {
    let base: URL;
    try {
      base = new URL(o.url);
    } catch {
      throw new TypeError(`options.url must be an http(s) URL, got '${o.url}'`);
    }
    if (base.protocol !== 'http:' && base.protocol !== 'https:') throw new TypeError(`options.url must be an http(s) URL, got '${o.url}'`);
    if (!o.token) throw new TypeError('options.token must be a non-empty string');
    this.#base = base;
    this.#token = o.token;
    this.#project = o.project;
    this.#timeoutMs = o.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  }

  get url(): string {
    return this.#base.href;
  }

  /** project returns the project id, asking the API which project the token belongs to if needed. */
  async project(): Promise<string> {
    if (this.#project) return this.#project;
    const me = await this.request('GET', '/auth/token');
    const p = (me.body as Doc | undefined)?.project_id;
    if (typeof p !== 'string' || p === '') {
      throw new ApiRequestError('the API did not say which project the token belongs to: give --project', { status: me.status, retryable: false, maybeSent: false });
    }
    this.#project = p;
    return p;
  }

  /** registerClient registers (or re-registers) this node. A 409 (already registered) is fine. */
  async registerClient(info: Doc): Promise<void> {
    try {
      await this.#v2('POST', '/clients', info);
    } catch (err) {
      if (err instanceof ApiRequestError && err.status === 409) return;
      throw err;
    }
  }

  /** listJobs returns every job of `clientId` that is not completed, page by page. */
  async listJobs(clientId: string): Promise<Doc[]> {
    const search = { match: [{ client_id: clientId }], match_not: [{ status: 'completed' }] };
    const jobs: Doc[] = [];
    for (let offset = 0; ; offset += PAGE) {
      const r = await this.#v2('GET', `/jobs?limit=${PAGE}&offset=${offset}`, search);
      const page = (r as { jobs?: unknown }).jobs;
      if (!Array.isArray(page)) throw new ApiRequestError('the API answered a job list without "jobs"', { status: 200, retryable: true, maybeSent: false });
      // the filter is applied here too: a server that ignores GET bodies must not hand us others' jobs
      jobs.push(...(page as Doc[]).filter((j) => j && j.client_id === clientId && (j.job_schedule as Doc | undefined)?.status !== 'completed'));
      if (page.length < PAGE) return jobs;
    }
  }

  /** patchJob changes some of a job's fields (job_schedule is merged key by key by the API). */
  async patchJob(jobId: string, patch: Doc): Promise<void> {
    await this.#v2('PATCH', `/jobs/${encodeURIComponent(jobId)}`, patch);
  }

  /** createBackup posts an agent result document; returns the new backup_id. */
  async createBackup(doc: Doc): Promise<string> {
    const r = await this.#v2('POST', '/backups', doc);
    return String((r as Doc).backup_id ?? '');
  }

  /**
   * postRun records one action run with its metrics (floe's API: POST /jobs/{id}/runs). The API is
   * idempotent on the body's run_id: posting again after a lost answer records nothing new.
   */
  async postRun(jobId: string, body: Doc): Promise<string> {
    const r = await this.#v2('POST', `/jobs/${encodeURIComponent(jobId)}/runs`, body);
    return String((r as Doc).run_id ?? '');
  }

  /** findBackups lists backup documents matching every {key: value} of `match`. */
  async findBackups(match: Doc[]): Promise<Doc[]> {
    const r = await this.#v2('GET', '/backups?limit=10&offset=0', { match });
    return Array.isArray((r as Doc).backups) ? ((r as Doc).backups as Doc[]) : [];
  }

  /** sessionAction posts {start: {...}} or {end: {...}} to a session. */
  async sessionAction(sessionId: string, body: Doc): Promise<SessionAnswer> {
    const r = (await this.#v2('POST', `/sessions/${encodeURIComponent(sessionId)}/action`, body)) as Doc;
    return { result: String(r.result ?? ''), session_tag: Number(r.session_tag ?? 0) };
  }

  async #v2(method: string, path: string, body?: unknown): Promise<unknown> {
    const project = await this.project();
    const r = await this.request(method, `/v2/${encodeURIComponent(project)}${path}`, body);
    return r.body ?? {};
  }

  /** request sends one JSON request; any answer but 2xx becomes an ApiRequestError. */
  request(method: string, path: string, body?: unknown): Promise<{ status: number; body: unknown }> {
    const url = new URL(this.#base.pathname.replace(/\/$/, '') + path, this.#base);
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const lib = url.protocol === 'https:' ? https : http;
    const what = `${method} ${url.pathname}`;
    return new Promise((resolve, reject) => {
      let settled = false;
      const fail = (e: ApiRequestError) => {
        if (!settled) { settled = true; reject(e); }
      };
      const req = lib.request(url, {
        method,
        agent: false,
        headers: {
          'X-Auth-Token': this.#token,
          Accept: 'application/json',
          'User-Agent': `floe-scheduler (${osHostname()})`,
          ...(payload ? { 'Content-Type': 'application/json', 'Content-Length': String(payload.length) } : {}),
        },
      }, (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > MAX_ANSWER_BYTES) {
            req.destroy();
            fail(new ApiRequestError(`${what}: the answer is larger than ${MAX_ANSWER_BYTES} bytes`, { status: res.statusCode ?? 0, retryable: false, maybeSent: true }));
            return;
          }
          chunks.push(c);
        });
        res.on('error', (err) => fail(networkError(what, err, true)));
        res.on('end', () => {
          if (settled) return;
          const status = res.statusCode ?? 0;
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown;
          try {
            parsed = text.trim() ? JSON.parse(text) : undefined;
          } catch {
            parsed = undefined;
          }
          if (status >= 200 && status < 300) {
            settled = true;
            resolve({ status, body: parsed });
            return;
          }
          fail(httpError(what, status, parsed, text));
        });
      });
      req.setTimeout(this.#timeoutMs, () => {
        req.destroy();
        fail(new ApiRequestError(`${what}: no answer within ${this.#timeoutMs / 1000} s`, { status: 0, retryable: true, maybeSent: true }));
      });
      req.on('error', (err) => fail(networkError(what, err, false)));
      req.end(payload);
    });
  }
}

function networkError(what: string, err: Error, answered: boolean): ApiRequestError {
  const code = (err as NodeJS.ErrnoException).code ?? '';
  const notSent = !answered && NOT_SENT.has(code);
  return new ApiRequestError(`${what}: ${code ? `${code} ` : ''}${err.message}`.trim(), { status: 0, retryable: true, maybeSent: !notSent, cause: err });
}

function httpError(what: string, status: number, body: unknown, text: string): ApiRequestError {
  const b = body as { title?: string; description?: string } | undefined;
  const detail = b?.description || b?.title || text.slice(0, 200).replace(/\s+/g, ' ');
  const retryable = status >= 500 || status === 408 || status === 429;
  // a 5xx may come after the work was done (a lost commit answer is rare but possible); 503 is "not now"
  const maybeSent = status >= 500 && status !== 503;
  return new ApiRequestError(`${what}: HTTP ${status}${detail ? `: ${detail}` : ''}`, { status, retryable, maybeSent });
}
