/**
 * Test helpers for the API: the databases every suite runs on, a test app with tokens, and requests.
 *
 * Every API suite runs once per database: SQLite (a temp file) always, PostgreSQL when
 * FLOE_TEST_PG_URL is set (postgres://user:password@127.0.0.1/db; the role needs CREATEDB only for
 * `db:new`). Without it the PostgreSQL suites are skipped with a message, except under CI=true, where
 * a missing PostgreSQL fails the run (.ci/run starts one). Each suite uses fresh random project ids, so
 * suites never see each other's records and the PostgreSQL database needs no reset.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { test, suite } from 'uvu';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { buildApp } from '../../api/app.js';
import { createToken, Role } from '../../api/auth.js';
import { Database, openDatabase } from '../../api/db/client.js';
import { DbTarget, resolveDb } from '../../api/db/url.js';

export interface TestDb {
  name: 'sqlite' | 'postgres';
  target: () => DbTarget;
  cleanup: () => void;
}

/** testDatabases lists the databases to run on; registers a skip notice (or a CI failure) for PostgreSQL. */
export function testDatabases(file: string): TestDb[] {
  const dbs: TestDb[] = [];
  let dir: string | undefined;
  dbs.push({
    name: 'sqlite',
    target: () => {
      dir = mkdtempSync(join(tmpdir(), 'floe-api-'));
      return resolveDb(join(dir, 'floe.db'));
    },
    cleanup: () => { if (dir) rmSync(dir, { recursive: true, force: true }); },
  });
  const pg = process.env.FLOE_TEST_PG_URL;
  if (pg) {
    dbs.push({ name: 'postgres', target: () => resolveDb(pg), cleanup: () => undefined });
  } else if (process.env.CI === 'true') {
    test(`${file}: PostgreSQL is required under CI (set FLOE_TEST_PG_URL; .ci/run starts one)`, () => {
      throw new Error('FLOE_TEST_PG_URL is not set');
    });
  } else if (!warned) {
    warned = true;
    console.log('  note: API suites run on SQLite only: set FLOE_TEST_PG_URL=postgres://... to run them on PostgreSQL too');
  }
  return dbs;
}
let warned = false;

export interface Ctx {
  app: FastifyInstance;
  db: Database;
  /** project ids of this suite */
  p1: string;
  p2: string;
  /** tokens: tok[project][role] */
  tok: Record<string, Record<Role, string>>;
  /** the app clock, in ms; tests may move it */
  clock: { now: number };
  cleanup: () => void;
}

export function randomProject(): string {
  return `t${randomBytes(6).toString('hex')}`;
}

/** makeCtx opens the database and app, with two projects and a token per role in each. */
export async function makeCtx(d: TestDb): Promise<Ctx> {
  const db = await openDatabase(d.target(), { poolSize: 4 });
  const clock = { now: Date.UTC(2025, 0, 1) };
  const app = await buildApp({ db, now: () => clock.now });
  const p1 = randomProject();
  const p2 = randomProject();
  const tok: Ctx['tok'] = {};
  for (const p of [p1, p2]) {
    tok[p] = {} as Record<Role, string>;
    for (const role of ['admin', 'member', 'reader', 'agent'] as Role[]) {
      tok[p][role] = (await createToken(db.prisma, { projectId: p, role })).secret;
    }
  }
  return { app, db, p1, p2, tok, clock, cleanup: d.cleanup };
}

export async function closeCtx(c: Ctx | undefined): Promise<void> {
  if (!c) return;
  await c.app.close();
  await c.db.close();
  c.cleanup();
}

export interface Req {
  method: string;
  url: string;
  token?: string | null;
  body?: unknown;
  /** raw payload (malformed JSON...) */
  raw?: string;
  headers?: Record<string, string>;
}

/** call sends one request through app.inject (JSON body and X-Auth-Token unless told otherwise). */
export async function call(app: FastifyInstance, r: Req): Promise<LightMyRequestResponse> {
  const headers: Record<string, string> = { ...(r.headers ?? {}) };
  if (r.token) headers['x-auth-token'] = r.token;
  let payload: string | undefined;
  if (r.raw !== undefined) payload = r.raw;
  else if (r.body !== undefined) payload = JSON.stringify(r.body);
  if (payload !== undefined && !('content-type' in headers)) headers['content-type'] = 'application/json';
  return app.inject({ method: r.method as 'GET', url: r.url, headers, payload });
}

/** dbSuite makes one uvu suite per database, with a fresh Ctx in `ctx.c`. */
export function dbSuites(file: string, title: string, define: (s: ReturnType<typeof suite<{ c: Ctx }>>, dbName: string) => void): void {
  for (const d of testDatabases(file)) {
    const s = suite<{ c: Ctx }>(`${title} (${d.name})`, {} as { c: Ctx });
    s.before(async (ctx) => { ctx.c = await makeCtx(d); });
    s.after(async (ctx) => { await closeCtx(ctx.c); });
    define(s, d.name);
    s.run();
  }
}

/** Documents the suites create. */
export const clientBody = (id: string, extra: Record<string, unknown> = {}) => ({
  client_id: id, hostname: 'node1.example.org', description: 'a node',
  supported_actions: ['backup', 'restore', 'info', 'admin', 'exec'], supported_modes: ['fs'],
  supported_storages: ['local', 'swift'], supported_engines: ['tar'], ...extra,
});

export const jobBody = (clientId: string, extra: Record<string, unknown> = {}) => ({
  client_id: clientId,
  description: 'nightly',
  job_schedule: { schedule_interval: '1 days' },
  job_actions: [{ freezer_action: { action: 'backup', mode: 'fs', backup_name: 'etc', path_to_backup: '/etc', container: '/b', storage: 'local' }, max_retries: 2 }],
  ...extra,
});

export const backupBody = (t: number, extra: Record<string, unknown> = {}) => ({
  action: 'backup', backup_name: 'etc', container: '/b', hostname: 'node1', path_to_backup: '/etc',
  time_stamp: t, curr_backup_level: 0, encryption: false, stored_bytes: 1234, duration: 1.5, ...extra,
});
