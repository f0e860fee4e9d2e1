/**
 * api/ui.ts: the UI's static files on a bare Fastify app (no database): index at /ui and /ui/, files
 * with their types and the Content-Security-Policy, 404 for unknown names and path tricks, a browser's
 * `GET /` redirected to /ui/ while a JSON client's is not, and a hint when the UI is not built.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import Fastify from 'fastify';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { installUi } from '../../api/ui.js';

async function appWith(files: Record<string, string>) {
  const dir = mkdtempSync(join(tmpdir(), 'floe-ui-static-'));
  for (const [n, t] of Object.entries(files)) writeFileSync(join(dir, n), t);
  const app = Fastify({ routerOptions: { ignoreTrailingSlash: true } });
  installUi(app, dir);
  app.get('/', async (_req, reply) => { reply.code(300); return { versions: [] }; });
  return { app, done: async () => { await app.close(); rmSync(dir, { recursive: true, force: true }); } };
}

test('serves the built files with types and a strict CSP', async () => {
  const { app, done } = await appWith({ 'index.html': '<!doctype html><p>ui', 'app.js': 'export {}', 'style.css': 'body{}' });
  try {
    for (const url of ['/ui', '/ui/']) {
      const r = await app.inject({ url });
      assert.is(r.statusCode, 200);
      assert.match(r.headers['content-type'] as string, /text\/html/);
      assert.match(r.body, /<p>ui/);
      assert.match(r.headers['content-security-policy'] as string, /script-src 'self'/);
    }
    const js = await app.inject({ url: '/ui/app.js' });
    assert.match(js.headers['content-type'] as string, /text\/javascript/);
    assert.is((await app.inject({ url: '/ui/style.css' })).headers['content-type'], 'text/css; charset=utf-8');
    assert.is((await app.inject({ url: '/ui/nope.js' })).statusCode, 404);
    assert.is((await app.inject({ url: '/ui/..%2Fpackage.json' })).statusCode, 404);
  } finally { await done(); }
});

test('a browser at / goes to /ui/, an API client keeps the versions document', async () => {
  const { app, done } = await appWith({ 'index.html': 'x' });
  try {
    const b = await app.inject({ url: '/', headers: { accept: 'text/html,application/xhtml+xml' } });
    assert.is(b.statusCode, 302);
    assert.is(b.headers.location, '/ui/');
    const j = await app.inject({ url: '/', headers: { accept: 'application/json' } });
    assert.is(j.statusCode, 300);
    assert.is((await app.inject({ url: '/' })).statusCode, 300);
  } finally { await done(); }
});

test('without a built UI: /ui says how to build it, / is unchanged', async () => {
  const { app, done } = await appWith({});
  try {
    const r = await app.inject({ url: '/ui/' });
    assert.is(r.statusCode, 404);
    assert.match(r.body, /npm run build:ui/);
    assert.is((await app.inject({ url: '/', headers: { accept: 'text/html' } })).statusCode, 300);
  } finally { await done(); }
});

test.run();
