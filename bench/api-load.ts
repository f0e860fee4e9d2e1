/**
 * API load benchmark (`npm run bench:api`): the scheduler poll under load, on SQLite and PostgreSQL.
 *
 * Dataset (scale 1, the issue's): 1,000 jobs over 200 clients (5 each, 1 in 5 completed) and 10,000
 * backups, in one project. Load: 200 connections, each a node polling its own jobs exactly as Freezer's
 * scheduler does (GET /jobs?limit=10&offset=0 with a match/match_not body; bench/api-load-client.mjs),
 * from a second process (autocannon) on 127.0.0.1. Two runs per database:
 *   - saturation: every connection sends as fast as answers come (the API's capacity, req/s);
 *   - spread pollers: each node polls every second from its own random phase (60 times Freezer's
 *     default interval); the issue's target is p99 under 50 ms;
 *   - all at once: the same rate, but every node in the same instant (autocannon's rate limiter).
 * Writes bench/results/api-<date>[-scale<S>].md and prints it.
 *
 *   node dist/bench/api-load.js [--scale 0.1] [--duration 20] [--connections 200] [--rate 200]
 *                               [--pg postgres://...] [--no-pg] [--out DIR]
 * PostgreSQL: --pg, else FLOE_BENCH_PG_URL, else FLOE_TEST_PG_URL; without any, SQLite only.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { startServer, RunningServer } from '../api/server.js';
import { createToken } from '../api/auth.js';
import { Store } from '../api/db/store.js';
import { DbTarget, describeDb, resolveDb } from '../api/db/url.js';
import { PACKAGE_ROOT } from '../api/db/migrate.js';

const run = promisify(execFile);

interface Args { scale: number; duration: number; connections: number; rate: number; pg?: string; out: string }

function parseArgs(argv: string[]): Args {
  const a: Args = { scale: 1, duration: 20, connections: 200, rate: 200, pg: process.env.FLOE_BENCH_PG_URL || process.env.FLOE_TEST_PG_URL, out: join(PACKAGE_ROOT, 'bench', 'results') };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    const v = () => argv[++i];
    if (k === '--scale') a.scale = Number(v());
    else if (k === '--duration') a.duration = Number(v());
    else if (k === '--connections') a.connections = Number(v());
    else if (k === '--rate') a.rate = Number(v());
    else if (k === '--pg') a.pg = v();
    else if (k === '--no-pg') a.pg = undefined;
    else if (k === '--out') a.out = v();
    else throw new Error(`unknown option ${k}`);
  }
  if (!(a.scale > 0 && a.scale <= 10) || !(a.duration > 0) || !(a.connections > 0) || !(a.rate > 0)) throw new Error('bad --scale/--duration/--connections/--rate');
  return a;
}

interface Row { db: string; scenario: string; rps: number; p50: number; p99: number; max: number; errors: number }


/** SEED_CONCURRENCY: inserts in flight while seeding (PostgreSQL gains from a few; SQLite serializes). */
const SEED_CONCURRENCY = 8;

async function seed(store: Store, project: string, a: Args): Promise<{ clients: string[]; jobs: number; backups: number }> {
  const nClients = Math.max(1, Math.round(200 * a.scale));
  const nJobs = Math.round(1000 * a.scale);
  const nBackups = Math.round(10_000 * a.scale);
  const clients = Array.from({ length: nClients }, (_, i) => `node${i}.bench.example`);
  const tasks: Array<() => Promise<void>> = [];
  for (const c of clients) {
    tasks.push(() => store.clients.create(project, c, 'bench', { client_id: c, hostname: c, uuid: c, supported_actions: ['backup', 'restore'], is_central: false }));
  }
  await pool(tasks.splice(0), SEED_CONCURRENCY);
  for (let j = 0; j < nJobs; j++) {
    const client = clients[j % nClients];
    const doc = {
      job_id: `job${j}`, client_id: client, user_id: 'bench', project_id: project, description: `job ${j}`, session_id: '', session_tag: 0,
      job_schedule: { schedule_interval: '1 days', status: j % 5 === 0 ? 'completed' : 'scheduled', event: '', result: '', time_created: 1, time_started: -1, time_ended: -1 },
      job_actions: [{ action_id: `a${j}`, freezer_action: { action: 'backup', mode: 'fs', backup_name: `set${j % 50}`, path_to_backup: '/var/data', container: '/backups', storage: 'local' }, max_retries: 5, max_retries_interval: 6, mandatory: false }],
    };
    tasks.push(() => store.jobs.create(project, doc.job_id, 'bench', doc, { clientId: client }));
  }
  for (let b = 0; b < nBackups; b++) {
    const t = 1_700_000_000 + b * 60;
    const doc = { action: 'backup', backup_name: `set${b % 50}`, container: '/backups', hostname: clients[b % nClients], path_to_backup: '/var/data', time_stamp: t, curr_backup_level: b % 7, stored_bytes: 1000 + b, duration: 1.5, encryption: false, compression: 'gzip' };
    tasks.push(() => store.backups.create(project, `b${b}`, 'bench', doc, { status: 'available', timeStamp: t, jobId: '' }));
  }
  await pool(tasks, SEED_CONCURRENCY);
  return { clients, jobs: nJobs, backups: nBackups };
}

async function pool(tasks: Array<() => Promise<void>>, n: number): Promise<void> {
  let i = 0;
  await Promise.all(Array.from({ length: n }, async () => { while (i < tasks.length) await tasks[i++](); }));
}

interface LoadResult { rps: number; p50: number; p99: number; max: number; errors: number }

async function load(server: RunningServer, project: string, token: string, clients: string[], a: Args, mode: 'autocannon' | 'pollers', overallRate?: number, duration = a.duration): Promise<LoadResult> {
  const cfg = { mode, url: server.url, project, token, clients, connections: a.connections, duration, overallRate };
  const { stdout } = await run(process.execPath, [join(PACKAGE_ROOT, 'bench', 'api-load-client.mjs'), JSON.stringify(cfg)], { maxBuffer: 64 * 1024 * 1024 });
  return JSON.parse(stdout) as LoadResult;
}

async function benchOne(name: string, target: DbTarget, a: Args): Promise<{ rows: Row[]; seedSeconds: number; counts: string }> {
  const server = await startServer({ host: '127.0.0.1', port: 0, db: target, logLevel: 'silent', poolSize: 10 });
  const project = `bench${randomBytes(4).toString('hex')}`;
  const store = server.app.store;
  try {
    const t0 = Date.now();
    const { clients, jobs, backups } = await seed(store, project, a);
    // fresh statistics, as autovacuum would soon make them: a plan chosen on empty-table statistics is
    // not what a running service sees
    if (target.kind === 'postgres') await server.app.database.prisma.$executeRawUnsafe('ANALYZE');
    else await server.app.database.prisma.$queryRawUnsafe('PRAGMA optimize');
    const seedSeconds = (Date.now() - t0) / 1000;
    const token = (await createToken(server.app.database.prisma, { projectId: project, role: 'agent' })).secret;
    // check one poll by hand: the right jobs come back
    const probe = await server.app.inject({
      method: 'GET', url: `/v2/${project}/jobs?limit=10`, headers: { 'x-auth-token': token, 'content-type': 'application/json' },
      payload: JSON.stringify({ match: [{ client_id: clients[1] }], match_not: [{ status: 'completed' }] }),
    });
    const got = probe.json() as { jobs: Array<{ client_id: string }> };
    if (probe.statusCode !== 200 || got.jobs.length === 0 || got.jobs.some((j) => j.client_id !== clients[1])) throw new Error(`probe poll failed: ${probe.statusCode}`);
    await load(server, project, token, clients, a, 'autocannon', undefined, 2); // warm-up: JIT, plan caches, pool
    const rows: Row[] = [];
    const scenarios: Array<[string, 'autocannon' | 'pollers', number | undefined]> = [
      ['saturation (autocannon)', 'autocannon', undefined],
      [`${a.connections} pollers, 1 poll/s each, spread`, 'pollers', undefined],
      [`${a.connections} pollers, all at once every second (autocannon -R ${a.connections})`, 'autocannon', a.connections],
    ];
    for (const [scenario, mode, rate] of scenarios) {
      const r = await load(server, project, token, clients, a, mode, rate);
      rows.push({ db: name, scenario, ...r });
    }
    return { rows, seedSeconds, counts: `${clients.length} clients, ${jobs} jobs, ${backups} backups` };
  } finally {
    for (const m of ['backupTerm', 'backup', 'jobTerm', 'job', 'clientTerm', 'client', 'token'] as const) {
      await (server.app.database.prisma[m] as unknown as { deleteMany(a: unknown): Promise<unknown> }).deleteMany({ where: { projectId: project } });
    }
    await server.close();
  }
}

async function main(): Promise<void> {
  const a = parseArgs(process.argv.slice(2));
  const dir = mkdtempSync(join(tmpdir(), 'floe-bench-api-'));
  const targets: Array<[string, DbTarget]> = [['SQLite', resolveDb(join(dir, 'bench.db'))]];
  if (a.pg) targets.push(['PostgreSQL', resolveDb(a.pg)]);
  const rows: Row[] = [];
  const notes: string[] = [];
  try {
    for (const [name, target] of targets) {
      process.stderr.write(`bench:api: ${name} (${describeDb(target)}): seeding and loading...\n`);
      const r = await benchOne(name, target, a);
      rows.push(...r.rows);
      notes.push(`- ${name}: ${r.counts}, seeded in ${r.seedSeconds.toFixed(1)} s`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const date = new Date().toISOString().slice(0, 10);
  const md = [
    `# API load: the scheduler poll (${date})`,
    '',
    `Machine: ${cpus().length} cores (${cpus()[0]?.model ?? 'unknown'}), Node ${process.version}; API and load generator (autocannon) in two processes on 127.0.0.1.`,
    `Scale ${a.scale} of the issue's dataset; ${a.connections} connections, ${a.duration} s per run. Each request: GET /v2/{project}/jobs?limit=10&offset=0 with body {"match": [{"client_id": <its node>}], "match_not": [{"status": "completed"}]}, agent token.`,
    '',
    ...notes,
    '',
    '| database | load | req/s | p50 ms | p99 ms | max ms | errors |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: |',
    ...rows.map((r) => `| ${r.db} | ${r.scenario} | ${r.rps.toFixed(0)} | ${r.p50} | ${r.p99} | ${r.max} | ${r.errors} |`),
    '',
    'Saturation: every connection sends its next request as soon as the last is answered: req/s is the capacity,',
    'and latency is queueing (connections / capacity). Spread pollers: what 200 nodes polling every second send',
    '(60 times Freezer\'s default interval); the target is p99 < 50 ms. All at once: the same rate in bursts of',
    '200 simultaneous polls (autocannon\'s rate limiter), the worst case of synchronized nodes.',
    `Load average when the run ended: ${loadavg().map((x) => x.toFixed(1)).join(', ')} (other work on the machine inflates latencies).`,
    '',
  ].join('\n');
  await mkdir(a.out, { recursive: true });
  const file = join(a.out, `api-${date}${a.scale === 1 ? '' : `-scale${a.scale}`}.md`);
  await writeFile(file, md);
  process.stdout.write(`${md}\n(written to ${file})\n`);
}

main().then(() => process.exit(0), (err) => {
  process.stderr.write(`bench:api: ${(err as Error)?.stack ?? err}\n`);
  process.exit(1);
});
