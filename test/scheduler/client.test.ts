/**
 * The scheduler's API client (scheduler/client.ts) over real HTTP against the fake freezer-api: headers,
 * the project learned from the token, GET bodies, paging, and how failures are classified for the
 * outbox (retryable, maybe sent). Also a whole scheduler against it over HTTP.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ApiClient, ApiRequestError } from '../../scheduler/client.js';
import { Scheduler } from '../../scheduler/scheduler.js';
import { JobStore } from '../../scheduler/store.js';
import { silentLog } from '../../scheduler/log.js';
import { systemClock } from '../../scheduler/clock.js';
import { FakeFreezerApi } from './fake-api.js';
import { ScriptedExecutor, cleanupDirs, tempDir, waitFor } from './helpers.js';

test.after.each(() => cleanupDirs());

async function failure(p: Promise<unknown>): Promise<ApiRequestError> {
  try {
    await p;
  } catch (err) {
    assert.instance(err, ApiRequestError);
    return err as ApiRequestError;
  }
  throw new Error('expected a failure');
}

test('requests carry the token and JSON headers; the project comes from the token; filters travel as GET bodies; pages', async () => {
  const api = new FakeFreezerApi();
  for (let i = 0; i < 230; i++) api.addJob({ job_id: `j${i}`, client_id: i % 2 ? 'other' : 'me', job_schedule: {}, job_actions: [] });
  api.addJob({ job_id: 'done', client_id: 'me', job_schedule: { status: 'completed' }, job_actions: [] });
  const srv = await api.serve();
  try {
    const c = new ApiClient({ url: `${srv.url}/`, token: api.token });
    const jobs = await c.listJobs('me');
    assert.is(jobs.length, 115);
    assert.ok(jobs.every((j) => j.client_id === 'me'));
    const gets = srv.requests.filter((r) => r.url.startsWith('/v2/proj/jobs'));
    assert.equal(gets.map((r) => new URL(r.url, 'http://x').searchParams.get('offset')), ['0', '100'], 'a short page ends the list');
    assert.equal(JSON.parse(gets[0].body), { match: [{ client_id: 'me' }], match_not: [{ status: 'completed' }] });
    const h = gets[0].headers;
    assert.is(h['x-auth-token'], api.token);
    assert.is(h['content-type'], 'application/json');
    assert.is(h.accept, 'application/json');
    assert.is(srv.requests[0].url, '/auth/token');
    await c.patchJob('j0', { job_schedule: { status: 'running' } });
    assert.is(api.schedule('j0').status, 'running');
    const id = await c.createBackup({ container: '/c', hostname: 'h', backup_name: 'n', job_id: 'j0', run_metrics: { report_id: 'r-0' } });
    assert.is(id, 'b1');
    assert.is((await c.findBackups([{ report_id: 'r-0' }])).length, 1);
    assert.is((await c.findBackups([{ report_id: 'r-1' }])).length, 0);
  } finally {
    await srv.close();
  }
});

test('failures: refused = not sent; a lost answer or a timeout = maybe sent; 5xx retryable; 4xx permanent; no token in messages', async () => {
  const api = new FakeFreezerApi();
  const srv = await api.serve();
  const url = srv.url;
  const c = new ApiClient({ url, token: api.token, project: 'proj', timeoutMs: 300 });
  try {
    const bad = new ApiClient({ url, token: 'wrong', project: 'proj' });
    let e = await failure(bad.listJobs('me'));
    assert.equal([e.status, e.retryable], [401, false]);
    e = await failure(c.patchJob('nope', { job_schedule: {} }));
    assert.equal([e.status, e.retryable, e.maybeSent], [404, false, false]);
    e = await failure(c.createBackup({ container: '', hostname: 'h', backup_name: 'n' }));
    assert.equal([e.status, e.retryable], [400, false]);
    api.loseAnswer = /^POST \/backups$/;
    e = await failure(c.createBackup({ container: '/c', hostname: 'h', backup_name: 'n' }));
    assert.equal([e.status, e.retryable, e.maybeSent], [0, true, true]);
    assert.is(api.backups.length, 1, 'processed, though the answer was lost');
    for (const err of [e]) assert.not.ok(err.message.includes(api.token));
  } finally {
    await srv.close();
  }
  const e = await failure(c.listJobs('me'));
  assert.equal([e.status, e.retryable, e.maybeSent], [0, true, false], 'connection refused: not sent');
  // a server that answers 503, one that answers 500, one that never answers
  const statuses = [503, 500];
  const slow = http.createServer((req, res) => {
    const s = statuses.shift();
    if (s === undefined) return; // never answers
    res.writeHead(s, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ title: 'x', description: 'try later' }));
  });
  await new Promise<void>((r) => slow.listen(0, '127.0.0.1', r));
  const c2 = new ApiClient({ url: `http://127.0.0.1:${(slow.address() as AddressInfo).port}`, token: 't', project: 'p', timeoutMs: 300 });
  try {
    const e503 = await failure(c2.createBackup({}));
    assert.equal([e503.status, e503.retryable, e503.maybeSent], [503, true, false]);
    assert.match(e503.message, /try later/);
    const e500 = await failure(c2.createBackup({}));
    assert.equal([e500.status, e500.retryable, e500.maybeSent], [500, true, true]);
    const eT = await failure(c2.createBackup({}));
    assert.equal([eT.status, eT.retryable, eT.maybeSent], [0, true, true]);
    assert.match(eT.message, /no answer within/);
  } finally {
    slow.closeAllConnections();
    await new Promise((r) => slow.close(r));
  }
  assert.throws(() => new ApiClient({ url: 'ftp://x', token: 't' }), /http/);
  assert.throws(() => new ApiClient({ url: 'http://x', token: '' }), /token/);
});

test('a scheduler over HTTP: registers its client, mirrors its jobs, runs them and reports', async () => {
  const api = new FakeFreezerApi();
  api.addJob({ job_id: 'h1', client_id: 'proj_node1', job_schedule: {}, job_actions: [{ freezer_action: { action: 'backup', backup_name: 'x' } }] });
  const srv = await api.serve();
  const dir = tempDir();
  const s = new Scheduler({
    clientId: 'proj_node1', api: new ApiClient({ url: srv.url, token: api.token }), store: new JobStore(dir).open(),
    executor: new ScriptedExecutor(systemClock), log: silentLog, intervalMs: 200,
    capabilities: { actions: ['backup'], modes: ['fs'], storages: ['local'], engines: ['tar'] },
  });
  try {
    await s.start();
    assert.ok(api.clients.has('proj_node1'));
    assert.equal(api.clients.get('proj_node1')!.supported_actions, ['backup']);
    await waitFor(() => api.schedule('h1').status === 'completed', 10_000, 'the job to complete');
    assert.is(api.schedule('h1').result, 'success');
    assert.is(api.backups.length, 1);
    assert.is((api.backups[0].backup_metadata as Record<string, unknown>).job_id, 'h1');
  } finally {
    await s.stop();
    await srv.close();
  }
});

test.run();
