/**
 * The routes outside the resources:
 *
 *   GET /                    300 versions document (freezer-api's), no token
 *   GET /v2/                 200 JSON-home document of the v2 API (any valid token)
 *   GET /healthcheck         200 "OK" when the database answers, else 503; no token
 *   GET /auth/token          200 {project_id, role, client_id, user_id, token_id}: what a token is
 *                            (floe's; `floe backup --api` learns its project from it); any valid token
 *   GET /docs                the OpenAPI description as a page (no external assets); no token
 *   GET /docs/openapi.json   the OpenAPI 3 description; no token
 *   GET /metrics             Prometheus text format (api/metrics.ts); no token
 */
import type { FastifyInstance } from 'fastify';
import { principal } from './http.js';

/** The v2 API's version entry, as freezer-api's (the date is its v2's). */
const V2 = { id: 'v2', status: 'CURRENT', updated: '2018-02-21T13:30:00' };
const RESOURCES: Array<[string, string, string[]]> = [
  ['backups', '/v2/{project_id}/backups/', ['GET', 'POST']],
  ['backup', '/v2/{project_id}/backups/{backup_id}', ['GET', 'PATCH', 'DELETE']],
  ['clients', '/v2/{project_id}/clients/', ['GET', 'POST']],
  ['client', '/v2/{project_id}/clients/{client_id}', ['GET', 'DELETE']],
  ['jobs', '/v2/{project_id}/jobs/', ['GET', 'POST']],
  ['job', '/v2/{project_id}/jobs/{job_id}', ['GET', 'PATCH', 'POST', 'DELETE']],
  ['job_event', '/v2/{project_id}/jobs/{job_id}/event', ['POST']],
  ['actions', '/v2/{project_id}/actions/', ['GET', 'POST']],
  ['action', '/v2/{project_id}/actions/{action_id}', ['GET', 'PATCH', 'POST', 'DELETE']],
  ['sessions', '/v2/{project_id}/sessions/', ['GET', 'POST']],
  ['session', '/v2/{project_id}/sessions/{session_id}', ['GET', 'PATCH', 'POST', 'DELETE']],
  ['session_action', '/v2/{project_id}/sessions/{session_id}/action', ['POST']],
  ['session_job', '/v2/{project_id}/sessions/{session_id}/jobs/{job_id}', ['PUT', 'DELETE']],
];

export default async function homeRoutes(app: FastifyInstance): Promise<void> {
  app.get('/', async (req, reply) => {
    const base = `${req.protocol}://${req.host}/`;
    reply.code(300);
    return { versions: [{ ...V2, links: [{ href: `${base}v2/`, rel: 'self' }] }] };
  });

  app.get('/v2', { config: { permission: 'home:get' } }, async (_req, reply) => {
    const resources: Record<string, unknown> = {};
    for (const [name, template, allow] of RESOURCES) {
      const vars: Record<string, string> = {};
      for (const m of template.matchAll(/\{(\w+)\}/g)) vars[m[1]] = `param/${m[1]}`;
      resources[`rel/${name}`] = { 'href-template': template, 'href-vars': vars, hints: { allow, formats: { 'application/json': {} } } };
    }
    reply.type('application/json-home');
    return { resources };
  });

  app.get('/healthcheck', async (_req, reply) => {
    try {
      await app.database.prisma.$queryRawUnsafe('SELECT 1');
      reply.type('text/plain').send('OK');
    } catch {
      reply.code(503).type('text/plain').send('database unavailable');
    }
  });

  app.get('/auth/token', { config: { permission: 'home:get' } }, async (req) => {
    const p = principal(req);
    return { project_id: p.projectId, role: p.role, client_id: p.clientId, user_id: p.userId, token_id: p.tokenId };
  });

  app.get('/docs/openapi.json', async () => app.swagger());

  let page: string | undefined;
  app.get('/docs', async (_req, reply) => {
    page ??= docsPage(app.swagger() as unknown as OpenApi);
    reply.type('text/html; charset=utf-8').header('content-security-policy', "default-src 'none'; style-src 'unsafe-inline'");
    return page;
  });

  app.get('/metrics', async (_req, reply) => {
    const m = await app.metrics.text();
    reply.type(m.contentType).send(m.body);
  });
}

interface OpenApi {
  info: { title: string; version: string; description?: string };
  paths: Record<string, Record<string, { summary?: string; tags?: string[] }>>;
}

function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** docsPage renders the OpenAPI description as one self-contained HTML page. */
function docsPage(spec: OpenApi): string {
  const rows: string[] = [];
  for (const [path, ops] of Object.entries(spec.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      rows.push(`<tr><td>${esc(op.tags?.[0] ?? '')}</td><td><b>${esc(method.toUpperCase())}</b></td><td><code>${esc(path)}</code></td><td>${esc(op.summary ?? '')}</td></tr>`);
    }
  }
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${esc(spec.info.title)}</title>
<style>body{font:15px/1.4 system-ui,sans-serif;margin:2em;max-width:70em}table{border-collapse:collapse}td,th{padding:.3em .8em;border-bottom:1px solid #ddd;text-align:left}code{font-size:14px}</style></head>
<body><h1>${esc(spec.info.title)} ${esc(spec.info.version)}</h1><p>${esc(spec.info.description ?? '')}</p>
<p>Every <code>/v2</code> request needs an <code>X-Auth-Token</code> header (<code>floe api token create</code>).
The full description, with every schema: <a href="/docs/openapi.json">openapi.json</a>.</p>
<table><tr><th>resource</th><th>method</th><th>path</th><th>what</th></tr>${rows.join('\n')}</table></body></html>`;
}
