/**
 * The scheduler loop with a fake clock, an in-memory freezer-api and scripted actions: fire times
 * without overlap, missed runs and the grace time, events (start/stop/abort), retries and mandatory
 * actions, concurrency, an API outage (nothing lost, nothing twice), a lost answer, a restart in the
 * middle of a run, sessions across three nodes, and --no-api job files.
 */
import { existsSync, writeFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { FakeClock } from '../../scheduler/clock.js';
import { Scheduler } from '../../scheduler/scheduler.js';
import { JobStore } from '../../scheduler/store.js';
import { startSession } from '../../scheduler/sessions.js';
import { silentLog } from '../../scheduler/log.js';
import { FakeFreezerApi } from './fake-api.js';
import { Doc, ScriptedExecutor, cleanupDirs, overlaps, tempDir } from './helpers.js';

const S = 1000;
const T0 = new Date(2026, 2, 10, 12, 0, 0).getTime();
const pad = (n: number) => String(n).padStart(2, '0');
const fmt = (ms: number) => {
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
};

interface Node {
  clock: FakeClock;
  api: FakeFreezerApi;
  store: JobStore;
  exec: ScriptedExecutor;
  s: Scheduler;
}

function node(o: { clock?: FakeClock; api?: FakeFreezerApi | null; dir?: string; clientId?: string; concurrentJobs?: number; disableExec?: boolean; graceMs?: number } = {}): Node {
  const clock = o.clock ?? new FakeClock(T0);
  const api = o.api === null ? undefined : o.api ?? new FakeFreezerApi();
  if (api) api.now = () => Math.floor(clock.now() / 1000);
  const store = new JobStore(o.dir ?? tempDir()).open();
  const exec = new ScriptedExecutor(clock);
  const s = new Scheduler({
    clientId: o.clientId ?? 'node1', api, store, executor: exec, clock, log: silentLog, intervalMs: 5 * S,
    concurrentJobs: o.concurrentJobs, disableExec: o.disableExec, graceMs: o.graceMs, sessionRetryMs: 200,
  });
  return { clock, api: api!, store, exec, s };
}

function job(id: string, schedule: Doc, actions: Doc[], client = 'node1'): Doc {
  return { job_id: id, client_id: client, description: id, job_schedule: schedule, job_actions: actions.map((fa) => ({ freezer_action: fa, ...(fa.mandatory ? { mandatory: true } : {}), ...(fa.retries !== undefined ? { max_retries: fa.retries, max_retries_interval: fa.retry_s ?? 5 } : {}) })) };
}

const starts = (n: Node, id: string, index = 0) => n.exec.calls.filter((c) => c.jobId === id && c.index === index).map((c) => c.start - T0);

test.after.each(() => cleanupDirs());

test('an interval job runs on its fire times and never overlaps itself (fires during a run are skipped)', async () => {
  const n = node();
  n.api.addJob(job('j1', { schedule_interval: '10 seconds' }, [{ action: 'backup', test_ms: 25 * S }]));
  await n.s.start();
  await n.clock.advance(90 * S);
  assert.equal(starts(n, 'j1'), [2 * S, 32 * S, 62 * S]);
  assert.is(overlaps(n.exec.calls), undefined);
  assert.is(n.api.backups.length, 3, 'three runs ended and were reported');
  assert.equal(n.api.statuses('j1').slice(0, 4), ['scheduled', 'running', 'scheduled', 'running']);
  await n.s.stop();
});

test('a scheduler restarted after missing five fire times runs once, for the latest, then keeps the phase', async () => {
  const dir = tempDir();
  const a = node({ dir });
  a.api.addJob(job('j1', { schedule_interval: '10 seconds' }, [{ action: 'backup', test_ms: S }]));
  await a.s.start();
  await a.clock.advance(5 * S);
  await a.s.stop();
  assert.equal(starts(a, 'j1'), [2 * S]);
  await a.clock.advance(55 * S); // down from T0+5 to T0+60: fires at 12, 22, 32, 42, 52 missed
  const b = node({ dir, clock: a.clock, api: a.api });
  await b.s.start();
  await b.clock.advance(S);
  assert.equal(starts(b, 'j1'), [60 * S], 'one run at restart, not five');
  const rec = b.store.load()[0];
  assert.is(rec.history[rec.history.length - 1].fire - T0, 52 * S, 'it stands for the latest missed fire');
  await b.clock.advance(10 * S);
  assert.equal(starts(b, 'j1'), [60 * S, 62 * S], 'the interval keeps its phase');
  await b.s.stop();
});

test('a date more than the grace time late is dropped (job completed); one inside it runs once', async () => {
  const n = node({ graceMs: 3600 * S });
  n.api.addJob(job('late', { schedule_date: fmt(T0 - 2 * 3600 * S) }, [{ action: 'backup' }]));
  n.api.addJob(job('recent', { schedule_date: fmt(T0 - 600 * S) }, [{ action: 'backup' }]));
  await n.s.start();
  await n.clock.advance(20 * S);
  assert.equal(starts(n, 'late'), []);
  assert.equal(starts(n, 'recent'), [0]);
  assert.is(n.api.schedule('late').status, 'completed');
  assert.is(n.api.schedule('recent').status, 'completed');
  assert.is(n.api.schedule('recent').result, 'success');
  await n.clock.advance(20 * S);
  assert.equal(n.s.jobs().map((j) => j.id), ['recent'], 'a completed job that ran keeps its record (history); the API no longer lists it');
  assert.not.ok(existsSync(join(n.store.jobsDir, 'job_recent.conf')), 'nor is it mirrored');
  n.clock.jump(8 * 86_400 * S);
  await n.clock.advance(10 * S);
  assert.is(n.s.jobs().length, 0, 'forgotten a week later');
  await n.s.stop();
});

test('events: stop unschedules, start schedules again, abort ends the running action as aborted', async () => {
  const n = node();
  n.api.addJob(job('d', { schedule_date: fmt(T0 + 60 * S) }, [{ action: 'backup' }]));
  n.api.addJob(job('long', { schedule_interval: '1 hours' }, [{ action: 'backup', test_ms: 600 * S }, { action: 'exec', mandatory: true }, { action: 'exec' }]));
  await n.s.start();
  assert.is(n.api.schedule('d').status, 'scheduled');
  assert.is(n.api.schedule('d').event, '', 'autostart clears the event');
  n.api.event('d', 'stop');
  await n.clock.advance(10 * S);
  assert.is(n.api.schedule('d').status, 'stop');
  n.api.event('d', 'start');
  await n.clock.advance(10 * S);
  assert.is(n.api.schedule('d').status, 'scheduled');
  // the long job started at +2 s and runs for 10 minutes: abort it
  assert.is(n.api.schedule('long').status, 'running');
  n.api.event('long', 'abort');
  await n.clock.advance(5 * S);
  const js = n.api.schedule('long');
  assert.is(js.result, 'aborted');
  assert.is(js.status, 'completed');
  assert.is(js.event, '');
  assert.ok(n.api.statuses('long').includes('aborting'));
  const calls = n.exec.calls.filter((c) => c.jobId === 'long');
  assert.equal(calls.map((c) => [c.index, c.exitCode]), [[0, 130], [1, 0]], 'the mandatory action still ran, the other did not');
  assert.ok(calls[0].end! - T0 <= 25 * S, 'stopped at the next poll, not after 10 minutes');
  await n.clock.advance(60 * S);
  assert.equal(starts(n, 'd'), [60 * S], 'the restarted date job ran once');
  await n.s.stop();
});

test('retries, mandatory actions and the job result', async () => {
  const n = node();
  n.api.addJob(job('r', { schedule_date: fmt(T0 + 10 * S) }, [
    { action: 'backup', test_rc: [1, 1, 0], retries: 2, retry_s: 5 },
    { action: 'backup', test_rc: 6, retries: 1, retry_s: 7 },
    { action: 'admin' },
    { action: 'exec', mandatory: true },
  ]));
  await n.s.start();
  await n.clock.advance(60 * S);
  assert.equal(starts(n, 'r', 0), [10 * S, 15 * S, 20 * S], 'two retries, 5 s apart');
  assert.equal(starts(n, 'r', 1), [20 * S, 27 * S]);
  assert.equal(starts(n, 'r', 2), [], 'skipped after a failure');
  assert.equal(starts(n, 'r', 3), [27 * S], 'mandatory: runs anyway');
  assert.is(n.api.schedule('r').result, 'fail');
  const run = n.store.load().find((r) => r.job_id === 'r')?.history[0];
  if (run) assert.equal(run.actions.map((a) => [a.result, a.attempts, a.exit_code]), [['success', 3, 0], ['fail', 2, 6], ['skipped', 0, null], ['success', 1, 0]]);
  assert.is(n.api.backups.length, 1, 'the successful backup was reported');
  const m = n.api.backups[0].backup_metadata as Doc;
  assert.is(m.job_id, 'r');
  assert.is((m.run_metrics as Doc).attempt, 3);
  assert.is((m.run_metrics as Doc).bytes_read, 1000);
  await n.s.stop();
});

test('--disable-exec fails a job with an exec action without running it; --concurrent-jobs queues runs', async () => {
  const n = node({ disableExec: true, concurrentJobs: 1 });
  n.api.addJob(job('x', { schedule_date: fmt(T0 + 5 * S) }, [{ action: 'backup' }, { action: 'exec' }]));
  n.api.addJob(job('a', { schedule_date: fmt(T0 + 10 * S) }, [{ action: 'backup', test_ms: 10 * S }]));
  n.api.addJob(job('b', { schedule_date: fmt(T0 + 10 * S) }, [{ action: 'backup', test_ms: 10 * S }]));
  await n.s.start();
  await n.clock.advance(40 * S);
  assert.equal(starts(n, 'x'), []);
  assert.is(n.api.schedule('x').result, 'fail');
  const ab = [...starts(n, 'a'), ...starts(n, 'b')].sort((p, q) => p - q);
  assert.equal(ab, [10 * S, 20 * S], 'one at a time');
  await n.s.stop();
});

test('API down for a while: runs go on, reports wait; then every run is reported once, in order', async () => {
  const n = node();
  n.api.addJob(job('j', { schedule_interval: '10 seconds' }, [{ action: 'backup', test_ms: S }]));
  await n.s.start();
  await n.clock.advance(15 * S);
  assert.is(n.api.backups.length, 2);
  n.api.down = true;
  await n.clock.advance(30 * S); // runs at 22, 32, 42 with the API down
  assert.equal(starts(n, 'j'), [2, 12, 22, 32, 42].map((x) => x * S), 'no run lost while the API is down');
  assert.is(n.api.backups.length, 2);
  assert.ok(n.store.load()[0].outbox.length >= 3, 'the reports wait in the outbox');
  n.api.down = false;
  await n.clock.advance(5 * S);
  const ids = n.api.backups.map((b) => ((b.backup_metadata as Doc).run_metrics as Doc).report_id);
  assert.is(ids.length, 5, 'every run reported');
  assert.is(new Set(ids).size, 5, 'none twice');
  const stamps = n.api.backups.map((b) => Number((b.backup_metadata as Doc).time_stamp) * S - T0);
  assert.equal(stamps, [2, 12, 22, 32, 42].map((x) => x * S), 'in order');
  const runs = n.api.runsOf('j');
  assert.is(runs.length, 5, 'one run report per action run');
  assert.is(new Set(runs.map((r) => r.run_id)).size, 5);
  assert.equal(runs.map((r) => Number(r.time_started) * S - T0), [2, 12, 22, 32, 42].map((x) => x * S), 'run reports in order');
  assert.equal(Object.keys(runs[0]).sort(), ['action', 'bytes_read', 'bytes_stored', 'duration', 'exit_code', 'job_id', 'rate', 'result', 'run_id', 'time_ended', 'time_started']);
  assert.is(runs[0].duration, 1);
  assert.is(runs[0].result, 'success');
  assert.is(n.store.load()[0].outbox.length, 0);
  assert.is(n.api.schedule('j').status, 'scheduled');
  await n.s.stop();
});

test('a POST whose answer was lost is looked up before it is sent again: no duplicate backup', async () => {
  const n = node();
  n.api.addJob(job('j', { schedule_date: fmt(T0 + 5 * S) }, [{ action: 'backup' }]));
  n.api.loseAnswer = /^POST \/backups$/;
  await n.s.start();
  await n.clock.advance(20 * S);
  assert.is(n.api.backups.length, 1);
  assert.ok(n.api.calls.some((c) => c.method === 'GET' && c.path === '/backups'), 'it looked');
  assert.is(n.api.calls.filter((c) => c.method === 'POST' && c.path === '/backups').length, 1, 'and did not post again');
  await n.s.stop();
});

test('a run report whose answer was lost is posted again with the same run_id: recorded once', async () => {
  const n = node();
  n.api.addJob(job('j', { schedule_date: fmt(T0 + 5 * S) }, [{ action: 'backup' }, { action: 'exec', command: 'x' }]));
  n.api.loseAnswer = /^POST \/jobs\/j\/runs$/;
  await n.s.start();
  await n.clock.advance(20 * S);
  const posts = n.api.calls.filter((c) => c.method === 'POST' && c.path === '/jobs/j/runs').map((c) => (c.body as Doc).run_id);
  assert.is(posts.length, 3, 'the lost one was posted again');
  assert.is(posts[0], posts[1], 'with the same run_id');
  assert.equal(n.api.runsOf('j').map((r) => r.action), ['backup', 'exec'], 'one record per action run');
  assert.is(n.store.load()[0].outbox.length, 0);
  await n.s.stop();
});

test('a scheduler stopped during a run resumes it at the action it was in: finished actions do not run again', async () => {
  const dir = tempDir();
  const a = node({ dir });
  a.api.addJob(job('j', { schedule_date: fmt(T0 + 5 * S) }, [{ action: 'backup', test_ms: S }, { action: 'backup', test_ms: 30 * S, backup_name: 'second' }]));
  await a.s.start();
  await a.clock.advance(10 * S); // action 0 done at +6 s, action 1 running
  assert.equal(a.exec.running.map((c) => c.index), [1]);
  await a.s.stop();
  const rec = a.store.load()[0];
  assert.is(rec.phase, 'running');
  assert.is(rec.run?.action_index, 1);
  const b = node({ dir, clock: a.clock, api: a.api });
  await b.s.start();
  await b.clock.advance(40 * S);
  assert.equal(b.exec.calls.map((c) => c.index), [1], 'only the interrupted action ran again');
  assert.is(a.api.backups.length, 2, 'one document per action');
  assert.is(a.api.schedule('j').status, 'completed');
  assert.is(a.api.schedule('j').result, 'success');
  const h = b.store.load()[0]?.history ?? [];
  assert.ok(h.length <= 1);
  await b.s.stop();
});

test('three nodes in one session start inside the hold-off window; the session result combines theirs', async () => {
  const clock = new FakeClock(T0);
  const api = new FakeFreezerApi();
  const nodes = [1, 2, 3].map((i) => node({ clock, api, clientId: `node${i}` }));
  for (const [sid, failing] of [['s-ok', 0], ['s-bad', 3]] as const) {
    api.addSession(sid, { hold_off: 30, schedule: { schedule_date: fmt(T0 + 20 * S) } });
    for (const i of [1, 2, 3]) {
      const jid = `${sid}-${i}`;
      api.addJob(job(jid, {}, [{ action: 'backup', test_ms: (i + 1) * S, test_rc: i === failing ? 1 : 0 }], `node${i}`));
      api.attach(sid, jid);
    }
  }
  for (const n of nodes) await n.s.start();
  await clock.advance(60 * S);
  for (const [sid, want] of [['s-ok', 'success'], ['s-bad', 'fail']]) {
    const s = api.sessions.get(sid)!;
    assert.is(s.status, 'completed', sid);
    assert.is(s.result, want, sid);
    assert.is(s.session_tag, 1);
    for (const j of Object.values(s.jobs as Record<string, Doc>)) {
      assert.ok(Number(j.time_started) - Number(s.time_start) <= Number(s.hold_off), `${sid}: every member started inside the hold-off window`);
    }
  }
  for (const n of nodes) await n.s.stop();
});

test('session start: out-of-sync takes the session\'s tag; hold-off is retried; it gives up and runs anyway', async () => {
  const clock = new FakeClock(T0);
  const api = new FakeFreezerApi();
  api.now = () => Math.floor(clock.now() / 1000);
  api.addSession('s', { session_tag: 5, hold_off: 30 });
  api.addJob(job('j', {}, [{ action: 'backup' }]));
  api.attach('s', 'j');
  const r = await startSession(api, { sessionId: 's', jobId: 'j', tag: 2, clock, log: silentLog });
  assert.equal({ started: r.started, tag: r.tag }, { started: true, tag: 6 });
  const again = startSession(api, { sessionId: 's', jobId: 'j', tag: 6, clock, log: silentLog, retryMs: 1000 });
  await clock.advance(10 * S);
  const held = await again;
  assert.is(held.started, false, 'this job already started this round: hold-off until it gives up');
  assert.is(held.answer, 'hold-off');
  assert.is(api.calls.filter((c) => c.path === '/sessions/s/action').length, 7, '2 + 5 tries');
  api.down = true;
  const down = startSession(api, { sessionId: 's', jobId: 'j', tag: 6, clock, log: silentLog, retryMs: 1000 });
  await clock.advance(10 * S);
  assert.is((await down).started, false);
});

test('--no-api: the jobs are the directory\'s *.conf files; a file without job_id keeps one id; nothing is queued', async () => {
  const dir = tempDir();
  const n = node({ dir, api: null });
  writeFileSync(join(dir, 'nightly.conf'), JSON.stringify(job('', { schedule_interval: '10 seconds' }, [{ action: 'backup' }])).replace('"job_id":""', '"job_idx":""'));
  await n.s.start();
  await n.clock.advance(25 * S);
  const ids = new Set(n.exec.calls.map((c) => c.jobId));
  assert.is(ids.size, 1);
  assert.ok([...ids][0].startsWith('file-'));
  assert.is(n.exec.calls.length, 3);
  assert.is(n.store.load()[0].outbox.length, 0);
  rmSync(join(dir, 'nightly.conf'));
  await n.clock.advance(10 * S);
  assert.is(n.s.jobs().length, 0, 'a deleted file removes the job');
  assert.is(n.exec.calls.length, 3);
  await n.s.stop();
});

test.run();
