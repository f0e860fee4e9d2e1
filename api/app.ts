/**
 * The API application: a Fastify instance with freezer-api v2's endpoints (reference/freezer.md §6).
 *
 * `buildApp({db})` returns the app without listening, so tests drive it with `app.inject()` and
 * api/server.ts listens. One plugin per resource (backups, clients, jobs, actions, sessions), all under
 * `/v2/{project_id}`; api/home.ts serves `/`, `/v2/`, `/healthcheck`, `/auth/token`, `/docs`, `/metrics`.
 *
 * Request life: route (trailing slashes ignored: Freezer's clients add one) -> auth (onRequest: 401/403
 * before the body is even read) -> JSON body (empty = none; malformed = 400) -> schema validation (400)
 * -> handler -> JSON. Any error becomes `{"title", "description", "code"}` (api/errors.ts); an error
 * the code did not expect is logged with its stack and answered with a bare 500.
 * GET takes a body: freezer-api's clients send list filters as a JSON body on GET.
 */
import Fastify, { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import swagger from '@fastify/swagger';
import { Ajv } from 'ajv';
import { ApiError, apiError } from './errors.js';
import { Authenticator, Permission, Principal, allowed } from './auth.js';
import { Database } from './db/client.js';
import { Store } from './db/store.js';
import { Metrics } from './metrics.js';
import homeRoutes from './home.js';
import backupsRoutes from './backups.js';
import clientsRoutes from './clients.js';
import jobsRoutes from './jobs.js';
import actionsRoutes from './actions.js';
import sessionsRoutes from './sessions.js';
import runsRoutes from './runs.js';
import { installUi } from './ui.js';
import { VERSION } from '../engine/cli/help.js';

export interface AppOptions {
  db: Database;
  /** Fastify logger options; false (the default) logs nothing. */
  logger?: boolean | Record<string, unknown>;
  /** Largest accepted body in bytes (default 1 MiB: a job with 100 actions is about 50 KiB). */
  bodyLimit?: number;
  /** The clock, in milliseconds (tests move it; sessions' hold-off depends on it). */
  now?: () => number;
}

export const DEFAULT_BODY_LIMIT = 1024 * 1024;

declare module 'fastify' {
  interface FastifyInstance {
    store: Store;
    database: Database;
    authenticator: Authenticator;
    clock: () => number;
    metrics: Metrics;
  }
  interface FastifyRequest {
    principal: Principal | null;
  }
  interface FastifyContextConfig {
    /** The policy rule a route needs (api/auth.ts); routes without one are public. */
    permission?: Permission;
  }
}

/** buildApp assembles the application on an open database. Call `app.close()` when done. */
export async function buildApp(o: AppOptions): Promise<FastifyInstance> {
  const bodyLimit = o.bodyLimit ?? DEFAULT_BODY_LIMIT;
  const app = Fastify({
    logger: o.logger ?? false,
    bodyLimit,
    exposeHeadRoutes: false,
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 300 },
    return503OnClosing: true,
    // errors raised before routing (a URL that does not decode) get the same error documents
    frameworkErrors: (err, req, reply) => sendError(err, req, reply, bodyLimit),
  });
  app.addHttpMethod('GET', { hasBody: true, overrideExisting: true });
  app.decorate('database', o.db);
  app.decorate('store', new Store(o.db.prisma));
  app.decorate('authenticator', new Authenticator(o.db.prisma));
  app.decorate('clock', o.now ?? Date.now);
  app.decorate('metrics', new Metrics(o.db.prisma));
  app.decorateRequest('principal', null);

  setBodyParsing(app, bodyLimit);
  setValidation(app);
  app.setErrorHandler((err, req, reply) => sendError(err as FastifyError, req, reply, bodyLimit));
  app.setNotFoundHandler((req, reply) => {
    const e = apiError('FLOE_API_ERR_NO_ROUTE', req.method, req.url.split('?')[0]);
    reply.code(e.statusCode).send(e.body());
  });
  app.addHook('onRequest', authenticate);
  // a GET list without a body has an empty filter (the body schema describes an object)
  app.addHook('preValidation', async (req) => { if (req.method === 'GET' && req.body === undefined) req.body = {}; });
  app.metrics.hook(app);

  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'floe API',
        version: VERSION,
        description: 'freezer-api v2 compatible: backups, clients, jobs, actions and sessions of a project; and floe\'s run reports (per-run metrics). ' +
          'List filters may be sent as a JSON body on GET (as Freezer\'s clients do) or as the match/match_not query parameters.',
      },
      components: { securitySchemes: { token: { type: 'apiKey', in: 'header', name: 'X-Auth-Token' } } },
      security: [{ token: [] }],
    },
    hideUntagged: true,
    transform: ({ schema, url, route }) => {
      // OpenAPI 3.0 has no body on GET: the filter body is described in the route's description instead
      const s = { ...(schema as Record<string, unknown>) };
      if (route.method === 'GET') delete s.body;
      return { schema: s as typeof schema, url };
    },
  });
  await app.register(homeRoutes);
  for (const routes of [backupsRoutes, clientsRoutes, jobsRoutes, actionsRoutes, sessionsRoutes, runsRoutes]) {
    await app.register(routes, { prefix: '/v2/:project_id' });
  }
  installUi(app); // the web UI (dist/ui) at /ui/
  return app;
}

/** authenticate checks X-Auth-Token, the URL's project and the route's permission (onRequest). */
async function authenticate(this: FastifyInstance, req: FastifyRequest): Promise<void> {
  const permission = req.routeOptions.config.permission;
  if (!permission) return;
  const p = await this.authenticator.authenticate(req.headers['x-auth-token']);
  if (!p) throw apiError('FLOE_API_ERR_UNAUTHORIZED');
  const project = (req.params as { project_id?: string }).project_id;
  if (project !== undefined && project !== p.projectId) throw apiError('FLOE_API_ERR_WRONG_PROJECT', project);
  if (!allowed(p.role, permission)) throw apiError('FLOE_API_ERR_FORBIDDEN', p.role, permission);
  req.principal = p;
}

/**
 * setBodyParsing: JSON only. An empty body is no body (freezer-api's clients send
 * `Content-Type: application/json` with empty PUTs); malformed JSON is a 400 (freezer-api: 753).
 * Keys named `__proto__` are refused: merged documents must never reach an object's prototype.
 */
function setBodyParsing(app: FastifyInstance, bodyLimit: number): void {
  app.removeAllContentTypeParsers();
  const parse = (_req: FastifyRequest, body: string | Buffer, done: (err: Error | null, body?: unknown) => void) => {
    const text = body.toString();
    if (text.trim() === '') return done(null, undefined);
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      return done(apiError('FLOE_API_ERR_MALFORMED_JSON', (err as Error).message), undefined);
    }
    const bad = unsafeJson(text);
    done(bad ? apiError('FLOE_API_ERR_BAD_DOCUMENT', bad) : null, bad ? undefined : parsed);
  };
  app.addContentTypeParser('application/json', { parseAs: 'string', bodyLimit }, parse);
  app.addContentTypeParser(/^application\/[\w.+-]*\+json$/, { parseAs: 'string', bodyLimit }, parse);
}

/** MAX_DEPTH: deeper JSON is refused (Freezer's documents nest 4 levels; deep nesting exhausts stacks). */
export const MAX_DEPTH = 32;

/**
 * unsafeJson says why a (valid) JSON text is refused, or undefined: nesting deeper than MAX_DEPTH, a
 * key `__proto__` (merged documents must never reach a prototype), a NUL character (PostgreSQL text
 * cannot hold one). Linear in the text; the rare cases are re-checked precisely.
 */
export function unsafeJson(text: string): string | undefined {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 92) i++; // backslash: skip the escaped character
      else if (c === 34) inString = false;
    } else if (c === 34) inString = true;
    else if (c === 123 || c === 91) {
      if (++depth > MAX_DEPTH) return `the document nests deeper than ${MAX_DEPTH} levels`;
    } else if (c === 125 || c === 93) depth--;
  }
  if (text.includes('__proto__') || text.includes('u0000')) {
    let why: string | undefined;
    JSON.parse(text, (k, v) => {
      if (k === '__proto__') why = 'a key may not be named __proto__';
      else if (k.includes('\0') || (typeof v === 'string' && v.includes('\0'))) why = 'NUL characters are not allowed';
      return v;
    });
    return why;
  }
  return undefined;
}

/**
 * setValidation: bodies are checked strictly (a string is not a number; unknown keys are refused where
 * the schema says so, never silently dropped); query strings and paths are coerced from text.
 * Responses are serialized by JSON.stringify: response schemas only document.
 */
function setValidation(app: FastifyInstance): void {
  const common = { allErrors: false, strict: false, useDefaults: true, removeAdditional: false } as const;
  const strict = new Ajv({ ...common, coerceTypes: false });
  const coercing = new Ajv({ ...common, coerceTypes: true });
  app.setValidatorCompiler(({ schema, httpPart }) => (httpPart === 'body' ? strict : coercing).compile(schema));
  app.setSerializerCompiler(() => (data) => JSON.stringify(data));
}

function sendError(err: FastifyError | ApiError, req: FastifyRequest, reply: FastifyReply, bodyLimit: number): void {
  const e = toApiError(err, bodyLimit, req.headers['content-type'], req.body === undefined);
  if (e.statusCode >= 500) req.log.error({ err }, 'request failed');
  reply.code(e.statusCode).type('application/json').send(e.body());
}

/** toApiError maps Fastify's own errors (validation, body parsing) to the table; the rest is a 500. */
export function toApiError(err: FastifyError | ApiError, bodyLimit: number, contentType?: string, noBody = false): ApiError {
  if (err instanceof ApiError) return err;
  const f = err as FastifyError & { validationContext?: string };
  if (f.validation) {
    const first = f.validation[0];
    const where = `${f.validationContext ?? 'request'}${first?.instancePath ?? ''}`;
    if (f.validationContext === 'body' && noBody) return apiError('FLOE_API_ERR_BODY_REQUIRED');
    const extra = first?.keyword === 'additionalProperties' ? ` ('${String((first.params as { additionalProperty?: string }).additionalProperty)}')` : '';
    return apiError('FLOE_API_ERR_VALIDATION', `${where} ${first?.message ?? 'is invalid'}${extra}`);
  }
  switch (f.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE': return apiError('FLOE_API_ERR_BODY_TOO_LARGE', bodyLimit);
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE': return apiError('FLOE_API_ERR_MEDIA_TYPE', contentType ? `'${contentType.slice(0, 100)}'` : 'a body without Content-Type');
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH': return apiError('FLOE_API_ERR_VALIDATION', 'the Content-Length does not match the body');
    case 'FST_ERR_CTP_EMPTY_JSON_BODY': return apiError('FLOE_API_ERR_BODY_REQUIRED');
    case 'FST_ERR_BAD_URL': return apiError('FLOE_API_ERR_VALIDATION', 'the URL is not valid');
    case 'FST_ERR_ASYNC_CONSTRAINT': return apiError('FLOE_API_ERR_VALIDATION', 'the request is not valid');
  }
  if (typeof f.statusCode === 'number' && f.statusCode >= 400 && f.statusCode < 500) {
    return apiError('FLOE_API_ERR_VALIDATION', 'the request is not valid');
  }
  if (isDbDown(err)) return apiError('FLOE_API_ERR_DB_UNAVAILABLE');
  return apiError('FLOE_API_ERR_INTERNAL');
}

function isDbDown(err: unknown): boolean {
  const code = (err as { code?: string })?.code;
  return code === 'P1001' || code === 'P1017' || code === 'ECONNREFUSED' || code === 'SQLITE_BUSY';
}
