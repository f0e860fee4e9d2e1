/**
 * The agent side and the command line: `floe backup --api URL --token-file F` posts the backup's result
 * document (real level, sizes, duration, encryption) to a running API; report failures are warnings
 * unless --api-required; `floe api token create` prints the token alone on stdout.
 * Runs on SQLite only: the database side is covered by the contract suites on both.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { test } from 'uvu';
import { startServer, RunningServer } from '../../api/server.js';
import { createToken } from '../../api/auth.js';
import { resolveDb } from '../../api/db/url.js';
import { PACKAGE_ROOT } from '../../api/db/migrate.js';
import { ApiReportError, reportBackup, resolveToken } from '../../engine/actions/report.js';

const run = promisify(execFile);
const FLOE = join(PACKAGE_ROOT, 'bin', 'floe.js');
const NO_RETRY = { attempts: 1, backoffMs: [0] };

interface Ctx { dir: string; server: RunningServer; token: string; admin: string; project: string }
const s = suite<Ctx>('api report (agent side, CLI)', {} as Ctx);

s.before(async (c) => {
  c.dir = mkdtempSync(join(tmpdir(), 'floe-report-'));
  c.server = await startServer({ host: '127.0.0.1', port: 0, db: resolveDb(join(c.dir, 'api.db')), logLevel: 'silent' });
  c.project = 'reports';
  c.token = (await createToken(c.server.app.database.prisma, { projectId: c.project, role: 'agent' })).secret;
  c.admin = (await createToken(c.server.app.database.prisma, { projectId: c.project, role: 'admin' })).secret;
});
s.after(async (c) => {
  await c.server.close();
  rmSync(c.dir, { recursive: true, force: true });
});

const warnings = () => {
  const list: string[] = [];
  return { list, warn: (m: string) => { list.push(m); } };
};

async function backups(c: Ctx): Promise<Array<{ backup_metadata: Record<string, unknown> }>> {
  const r = await fetch(`${c.server.url}/v2/${c.project}/backups?limit=100`, { headers: { 'x-auth-token': c.admin } });
  return (await r.json()).backups;
}

s('reportBackup posts the document; the project comes from the token or the URL', async (c) => {
  const w = warnings();
  const id = await reportBackup({ api: c.server.url }, c.token, { container: '/c', hostname: 'h', backup_name: 'one', time_stamp: 10 }, w);
  assert.match(id ?? '', /^[0-9a-f]{32}$/);
  const id2 = await reportBackup({ api: `${c.server.url}/v2/${c.project}/` }, c.token, { container: '/c', hostname: 'h', backup_name: 'two', time_stamp: 11 }, w);
  assert.ok(id2);
  assert.equal(w.list, []);
  const names = (await backups(c)).map((b) => b.backup_metadata.backup_name);
  assert.ok(names.includes('one') && names.includes('two'));
});

s('a failed report is a warning, or an error with --api-required; the token never shows', async (c) => {
  const w = warnings();
  const bad = await reportBackup({ api: c.server.url }, 'floe_wrong', { container: '/c', hostname: 'h', backup_name: 'x' }, w, NO_RETRY);
  assert.is(bad, undefined);
  assert.match(w.list[0], 'HTTP 401');
  const down = 'http://127.0.0.1:9';
  await reportBackup({ api: down }, c.token, { container: '/c', hostname: 'h', backup_name: 'x' }, w, NO_RETRY);
  assert.match(w.list[1], 'cannot reach the API');
  try {
    await reportBackup({ api: down, api_required: true }, c.token, { container: '/c', hostname: 'h', backup_name: 'x' }, w, NO_RETRY);
    assert.unreachable('must throw');
  } catch (err) {
    assert.instance(err, ApiReportError);
    assert.is((err as ApiReportError).exitCode, 1);
  }
  for (const m of w.list) assert.not.match(m, c.token);
});

s('resolveToken: --token-file, then FLOE_TOKEN, then --token with a warning', async (c) => {
  const f = join(c.dir, 'token');
  writeFileSync(f, 'floe_fromfile\nsecond line\n');
  const w = warnings();
  assert.is(await resolveToken({ token_file: f, token: 'floe_arg' }, w, { FLOE_TOKEN: 'floe_env' }), 'floe_fromfile');
  assert.is(await resolveToken({ token: 'floe_arg' }, w, { FLOE_TOKEN: 'floe_env' }), 'floe_env');
  assert.equal(w.list, []);
  assert.is(await resolveToken({ token: 'floe_arg' }, w, {}), 'floe_arg');
  assert.match(w.list[0], 'ps');
  let threw = false;
  await resolveToken({}, w, {}).catch(() => { threw = true; });
  assert.ok(threw, 'no token at all is a usage error');
});

s('floe backup --api: the API lists each backup with its real level, size and encryption', async (c) => {
  const src = join(c.dir, 'src');
  mkdirSync(src);
  writeFileSync(join(src, 'a.txt'), 'hello '.repeat(1000));
  const tokenFile = join(c.dir, 'agent-token');
  writeFileSync(tokenFile, `${c.token}\n`, { mode: 0o600 });
  const args = ['backup', '--path-to-backup', src, '--container', join(c.dir, 'store'), '--backup-name', 'e2e', '--hostname', 'node1', '--api', c.server.url, '--token-file', tokenFile, '--quiet'];
  const env = { ...process.env, FLOE_TOKEN: '' };
  await run(process.execPath, [FLOE, ...args], { env });
  writeFileSync(join(src, 'b.txt'), 'more');
  await run(process.execPath, [FLOE, ...args], { env });
  const docs = (await backups(c)).filter((b) => b.backup_metadata.backup_name === 'e2e').map((b) => b.backup_metadata);
  assert.is(docs.length, 2);
  assert.equal(docs.map((d) => d.curr_backup_level).sort(), [0, 1], 'real levels');
  for (const d of docs) {
    assert.is(d.encryption, false);
    assert.ok(Number(d.stored_bytes) > 0);
    assert.ok(typeof d.duration === 'number');
    assert.is(d.hostname, 'node1');
  }
  const visible = ['backup', '--path-to-backup', src, '--container', join(c.dir, 'store'), '--backup-name', 'e2e', '--api', c.server.url, '--token', 'floe_visible'];
  const r = await run(process.execPath, [FLOE, ...visible], { env });
  assert.match(r.stderr, 'visible to other users');
  assert.match(r.stderr, 'failed: GET /auth/token: HTTP 401');
  assert.not.match(r.stderr + r.stdout, 'floe_visible');
  const required = await run(process.execPath, [FLOE, ...visible, '--api-required', '--quiet'], { env }).catch((e) => e);
  assert.is(required.code, 1);
});

s('floe api token create prints the token alone on stdout', async (c) => {
  const env = { ...process.env, FLOE_HOME: join(c.dir, 'home'), DATABASE_URL: '' };
  const { stdout, stderr } = await run(process.execPath, [FLOE, 'api', 'token', 'create', '--project', 'p1', '--role', 'reader'], { env });
  assert.match(stdout, /^floe_[A-Za-z0-9_-]{43}\n$/);
  assert.match(stderr, 'role reader');
  const list = await run(process.execPath, [FLOE, 'api', 'token', 'list'], { env });
  assert.match(list.stdout, 'reader');
  assert.not.match(list.stdout, stdout.trim());
  const bad = await run(process.execPath, [FLOE, 'api', 'token', 'create', '--project', 'p1', '--role', 'root'], { env }).catch((e) => e);
  assert.is(bad.code, 2);
});

s.run();
test.run();
