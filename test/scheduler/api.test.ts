/**
 * `floe scheduler` processes against the real floe API on 127.0.0.1 (issue 6's checks):
 *   - three nodes (client ids) in one session: every backup starts inside the hold-off window, the
 *     session ends `success`; with one node's action failing, `fail`;
 *   - the API stopped for a while and started again: no run lost, none reported twice;
 *   - a scheduler killed with SIGKILL during an action and restarted: the running agent is collected,
 *     not started again, and no fire time runs twice;
 *   - an abort during a long backup stops it within seconds; every earlier backup still restores.
 * Intervals are seconds, not minutes, to keep the suite short.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { isAlive } from '../../scheduler/store.js';
import { FLOE_BIN } from '../helpers/peers.js';
import { cleanupDirs, tempDir, waitFor } from './helpers.js';
import { Doc, RealApi, SchedulerProcess, localDate, startScheduler } from './real-api.js';

let root = '';
let api: RealApi;
const running: SchedulerProcess[] = [];

test.before(async () => {
  root = tempDir('floe-sched-api-');
  api = new RealApi(root);
  await api.start();
});

test.after(async () => {
  for (const p of running) await p.stop();
  await api.close();
  cleanupDirs();
});

/** node: a jobs directory, a registered client and its agent token. */
async function node(name: string): Promise<{ clientId: string; dir: string; tokenFile: string }> {
  const clientId = `${api.project}_${name}`;
  const dir = join(root, name);
  mkdirSync(dir, { recursive: true });
  await api.registerClient(clientId);
  return { clientId, dir, tokenFile: await api.tokenFile(root, clientId) };
}

function launch(n: { clientId: string; dir: string; tokenFile: string }, args: string[] = []): SchedulerProcess {
  const p = startScheduler({ ...n, api, args });
  running.push(p);
  return p;
}

function tree(name: string, files: Record<string, string>): string {
  const d = join(root, name);
  mkdirSync(d, { recursive: true });
  for (const [f, text] of Object.entries(files)) writeFileSync(join(d, f), text);
  return d;
}

/** stored lists the backups in a local container ("<L>_<T>" names), oldest first. */
function stored(container: string, hbn: string): string[] {
  const base = join(container, 'metadata', 'tar', hbn);
  if (!existsSync(base)) return [];
  return readdirSync(base).flatMap((t0) => readdirSync(join(base, t0)).filter((b) => existsSync(join(base, t0, b, 'metadata'))))
    .sort((a, b) => Number(a.split('_')[1]) - Number(b.split('_')[1]));
}

/** backupAction: no retries (the API gives actions Freezer's defaults, 5 retries 6 s apart, otherwise). */
function backupAction(o: { src: string; container: string; host: string; name: string }): Doc {
  return { freezer_action: { action: 'backup', path_to_backup: o.src, backup_name: o.name, container: o.container, storage: 'local', hostname: o.host }, max_retries: 0 };
}

test('three nodes in one session: all start inside the hold-off window; success, and fail when one node fails', async () => {
  const nodes = await Promise.all(['node1', 'node2', 'node3'].map(node));
  const src = tree('session-src', { 'a.txt': 'session data' });
  const container = join(root, 'session-store');
  const at = Date.now() + 8000;
  for (const [sid, failing] of [['s-ok', -1], ['s-bad', 2]] as const) {
    await api.ok('POST', `/sessions/${sid}`, { description: sid, hold_off: 30, schedule: { schedule_date: localDate(at) } });
    for (const [i, n] of nodes.entries()) {
      const jid = `${sid}-${i}`;
      const action = backupAction({ src: i === failing ? join(root, 'missing-dir') : src, container, host: `h${i}`, name: sid });
      await api.ok('POST', `/jobs/${jid}`, { job_id: jid, client_id: n.clientId, description: jid, job_schedule: {}, job_actions: [action] });
      const r = await api.req('PUT', `/sessions/${sid}/jobs/${jid}`);
      assert.is(r.status, 204, JSON.stringify(r.body));
    }
  }
  const procs = nodes.map((n) => launch(n, ['--concurrent-jobs', '2']));
  const done = async (sid: string) => ((await api.ok('GET', `/sessions/${sid}`)).status === 'completed' ? true : undefined);
  await waitFor(async () => (await done('s-ok')) && (await done('s-bad')), 45_000, 'both sessions to complete', 250);
  for (const [sid, want] of [['s-ok', 'success'], ['s-bad', 'fail']]) {
    const s = await api.ok('GET', `/sessions/${sid}`);
    assert.is(s.result, want, sid);
    const jobs = Object.values(s.jobs as Record<string, Doc>);
    assert.is(jobs.length, 3);
    for (const j of jobs) {
      const late = Number(j.time_started) - Number(s.time_start);
      assert.ok(late >= 0 && late <= Number(s.hold_off), `${sid}: a member started ${late} s after the session`);
      assert.is(j.status, 'completed');
    }
    const starts = jobs.map((j) => Number(j.time_started));
    assert.ok(Math.max(...starts) - Math.min(...starts) <= 3, `${sid}: the three nodes started together (${starts})`);
  }
  assert.is((await api.schedule('s-bad-2')).result, 'fail');
  assert.is((await api.schedule('s-bad-0')).result, 'success');
  for (const [i] of nodes.entries()) {
    const docs = await api.backupsOf(`s-ok-${i}`);
    assert.is(docs.length, 1);
    const m = docs[0].run_metrics as Doc;
    assert.is(m.client_id, nodes[i].clientId);
    assert.is(m.exit_code, 0);
    assert.ok(Number(m.bytes_read) > 0);
  }
  assert.is((await api.job('s-ok-0')).session_tag, 1, 'the job took the session\'s new tag');
  for (const p of procs) assert.is(await p.stop(), 0);
});

/** OUTAGE_MS: how long the API stays down. The issue asks for a minute; FLOE_TEST_OUTAGE_MS shortens it. */
const OUTAGE_MS = Number(process.env.FLOE_TEST_OUTAGE_MS ?? 60_000);
/** INTERVAL_MS: 5 s, so a minute's outage makes about 12 runs and the local history (HISTORY_RUNS, 20) holds them all. */
const INTERVAL_MS = 5000;

test('API stopped for a minute and started again: the runs go on, none is lost, none is reported twice', async () => {
  const n = await node('outage');
  const src = tree('outage-src', { 'f.txt': 'outage' });
  const container = join(root, 'outage-store');
  await api.ok('POST', '/jobs/out-1', {
    job_id: 'out-1', client_id: n.clientId, job_schedule: { schedule_interval: `${INTERVAL_MS / 1000} seconds` },
    job_actions: [backupAction({ src, container, host: 'ho', name: 'out' })],
  });
  const p = launch(n, ['--in-process']);
  await waitFor(async () => (await api.backupsOf('out-1')).length >= 2, 20_000, 'two backups before the outage');
  await api.stop();
  const outageStart = Date.now();
  const before = stored(container, 'ho_out').length;
  await waitFor(() => stored(container, 'ho_out').length >= before + 2, 20_000, 'runs while the API is down');
  await new Promise((r) => setTimeout(r, Math.max(0, OUTAGE_MS - (Date.now() - outageStart))));
  const duringOutage = stored(container, 'ho_out').length;
  await api.restart();
  await waitFor(async () => {
    const recs = p.records();
    return recs.length === 1 && recs[0].outbox.length === 0 && (await api.backupsOf('out-1')).length >= duringOutage;
  }, 20_000, 'the reports of the outage to arrive');
  await api.ok('POST', '/jobs/out-1/event', { stop: null });
  await waitFor(async () => ['stop', 'completed'].includes(String((await api.schedule('out-1')).status)), 15_000, 'the job to stop');
  assert.is(await p.stop(), 0);
  const inStorage = stored(container, 'ho_out');
  const docs = await api.backupsOf('out-1');
  const ids = docs.map((d) => (d.run_metrics as Doc).report_id);
  assert.is(new Set(ids).size, ids.length, 'no backup reported twice');
  const identities = docs.map((d) => `${d.hostname}/${d.backup_name}/${d.time_stamp}/${d.curr_backup_level}`);
  assert.is(new Set(identities).size, identities.length, 'no backup recorded twice (natural identity)');
  assert.is(docs.length, inStorage.length, `every stored backup is in the API (${docs.length} vs ${inStorage.length})`);
  assert.equal(docs.map((d) => Number(d.time_stamp)).sort(), inStorage.map((b) => Number(b.split('_')[1])));
  const history = p.records()[0].history;
  assert.is(history.filter((h) => h.result === 'success').length, inStorage.length);
  const runs = await api.runsOf('out-1');
  assert.is(new Set(runs.map((r) => r.run_id)).size, runs.length, 'no run reported twice');
  assert.is(runs.length, inStorage.length, `one run report per backup run (${runs.length} vs ${inStorage.length})`);
  assert.ok(runs.every((r) => r.action === 'backup' && r.result === 'success' && r.exit_code === 0 && Number(r.bytes_stored) > 0 && r.client_id === n.clientId), JSON.stringify(runs[0]));
  assert.equal(runs.map((r) => Number(r.time_started)).sort(), history.map((h) => Math.floor(h.started / 1000)).sort(), 'the runs of the history');
  // every fire time ran, except those that came while the previous run was still going (logged)
  const fires = history.map((h) => h.fire);
  let gaps = 0;
  for (let i = 1; i < fires.length; i++) {
    const d = fires[i] - fires[i - 1];
    assert.is(d % INTERVAL_MS, 0);
    gaps += d / INTERVAL_MS - 1;
  }
  const skipped = (p.logText().match(/skipped: the previous run is still running/g) ?? []).length;
  assert.ok(gaps <= skipped, `${gaps} fire times without a run, ${skipped} skipped while running: none lost`);
});

test('a scheduler killed with SIGKILL mid-action and restarted collects the running agent; no fire runs twice', async () => {
  const n = await node('killed');
  const src = tree('killed-src', { 'k.txt': 'kill -9' });
  const container = join(root, 'killed-store');
  const marks = join(root, 'killed-marks');
  const script = join(root, 'mark.sh');
  writeFileSync(script, 'echo "start $(date +%s%N)" >> "$1"\nsleep 2\necho "end $(date +%s%N)" >> "$1"\n');
  await api.ok('POST', '/jobs/kill-1', {
    job_id: 'kill-1', client_id: n.clientId, job_schedule: { schedule_interval: '4 seconds' },
    job_actions: [{ freezer_action: { action: 'exec', command: `/bin/sh ${script} ${marks}` } }, backupAction({ src, container, host: 'hk', name: 'kill' })],
  });
  const first = launch(n);
  const rec = await waitFor(() => first.records().find((r) => r.run?.child && r.run.action_index === 0), 20_000, 'the exec action to run');
  const orphan = rec.run!.child!;
  await first.kill();
  assert.ok(isAlive(orphan.pid), 'the agent outlives the scheduler');
  const second = launch(n);
  await waitFor(() => (second.records()[0]?.history.length ?? 0) >= 3, 30_000, 'three runs');
  await api.ok('POST', '/jobs/kill-1/event', { stop: null });
  await waitFor(async () => ['stop', 'completed'].includes(String((await api.schedule('kill-1')).status)), 15_000, 'the job to stop');
  assert.is(await second.stop(), 0);
  const lines = readFileSync(marks, 'utf8').trim().split('\n').map((l) => l.split(' '));
  for (let i = 0; i < lines.length; i++) assert.is(lines[i][0], i % 2 ? 'end' : 'start', 'exec runs never overlap');
  const history = second.records()[0].history;
  assert.is(lines.length / 2, history.length, 'one exec per run: the killed one was not started again');
  assert.ok(history.some((h) => h.run_id === rec.run!.run_id), 'the killed run finished (resumed)');
  assert.is(new Set(history.map((h) => h.fire)).size, history.length, 'no fire time ran twice');
  assert.ok(history.every((h) => h.result === 'success'));
  const inStorage = stored(container, 'hk_kill');
  assert.is(inStorage.length, history.length);
  assert.is((await api.backupsOf('kill-1')).length, history.length);
  assert.match(second.logText(), /resuming run/);
});

test('an abort during a long backup stops it within seconds; the earlier backups still restore', async () => {
  const n = await node('aborter');
  const src = tree('abort-src', { 'one.txt': 'first version' });
  const container = join(root, 'abort-store');
  const floe = (...args: string[]) => execFileSync(process.execPath, [FLOE_BIN, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const common = ['--backup-name', 'big', '--container', container, '--hostname', 'ha'];
  floe('backup', '--path-to-backup', src, ...common);
  await new Promise((r) => setTimeout(r, 1100));
  writeFileSync(join(src, 'two.txt'), 'second backup');
  floe('backup', '--path-to-backup', src, ...common);
  const before = stored(container, 'ha_big');
  assert.is(before.length, 2);
  // a long backup: a large sparse file (all of it must be read or scanned; cheap on disk)
  const big = join(src, 'huge.img');
  writeFileSync(big, '');
  truncateSync(big, 8 * 1024 ** 3);
  await api.ok('POST', '/jobs/abort-1', {
    job_id: 'abort-1', client_id: n.clientId, job_schedule: { schedule_date: localDate(Date.now() + 3000) },
    job_actions: [{ ...backupAction({ src, container, host: 'ha', name: 'big' }), max_retries: 2, max_retries_interval: 1 }],
  });
  const p = launch(n);
  const js = await waitFor(async () => {
    const s = await api.schedule('abort-1');
    return s.status === 'running' && Number(s.current_pid) > 0 ? s : undefined;
  }, 20_000, 'the backup to start', 100);
  const agentPid = Number(js.current_pid);
  await new Promise((r) => setTimeout(r, 1500));
  assert.ok(isAlive(agentPid), 'the backup is still running when the abort is sent');
  const t0 = Date.now();
  await api.ok('POST', '/jobs/abort-1/event', { abort: null });
  await waitFor(async () => (await api.schedule('abort-1')).result === 'aborted', 15_000, 'the job to be aborted', 100);
  const took = Date.now() - t0;
  assert.ok(took < 8000, `aborted in ${took} ms`);
  assert.not.ok(isAlive(agentPid), 'the agent is gone');
  assert.is((await api.schedule('abort-1')).status, 'completed');
  assert.is(await p.stop(), 0);
  rmSync(big);
  assert.equal(stored(container, 'ha_big'), before, 'the aborted backup left nothing visible');
  assert.is(readdirSync(join(container, 'data', 'tar', 'ha_big')).flatMap((t) => readdirSync(join(container, 'data', 'tar', 'ha_big', t))).length, 2, 'nor any data');
  assert.is((await api.backupsOf('abort-1')).length, 0);
  const latest = join(root, 'restore-latest');
  floe('restore', '--restore-abs-path', latest, ...common);
  assert.equal(readdirSync(latest).sort(), ['one.txt', 'two.txt']);
  const l0 = join(root, 'restore-l0');
  const t = Number(before[0].split('_')[1]);
  floe('restore', '--restore-abs-path', l0, '--restore-from-date', localDate(t * 1000), ...common);
  assert.equal(readdirSync(l0), ['one.txt']);
  const runs = p.records()[0]?.history ?? [];
  assert.equal(runs.map((r) => [r.result, r.actions[0]?.attempts]), [['aborted', 1]], 'an aborted action is not retried');
});

test.run();
