/**
 * Contract tests: every endpoint's status codes and document shapes, as freezer-api v2's
 * (reference/freezer.md §5.3, §6), on SQLite and on PostgreSQL.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { backupBody, call, clientBody, dbSuites, jobBody } from './helpers.js';

const HEX32 = /^[0-9a-f]{32}$/;

dbSuites('contract', 'api home', (s) => {
  s('GET / answers 300 with the versions document', async ({ c }) => {
    const r = await call(c.app, { method: 'GET', url: '/' });
    assert.is(r.statusCode, 300);
    const v = r.json().versions[0];
    assert.is(v.id, 'v2');
    assert.is(v.status, 'CURRENT');
    assert.ok(v.links[0].href.endsWith('/v2/'));
  });

  s('GET /v2/ is a JSON-home document and needs a token', async ({ c }) => {
    const r = await call(c.app, { method: 'GET', url: '/v2/', token: c.tok[c.p1].reader });
    assert.is(r.statusCode, 200);
    assert.match(String(r.headers['content-type']), 'application/json-home');
    assert.ok(r.json().resources['rel/jobs']);
    const none = await call(c.app, { method: 'GET', url: '/v2/' });
    assert.is(none.statusCode, 401);
    assert.equal(none.json(), { title: 'Unauthorized', description: 'authentication required', code: 'FLOE_API_ERR_UNAUTHORIZED' });
  });

  s('healthcheck, auth/token, docs and metrics', async ({ c }) => {
    const h = await call(c.app, { method: 'GET', url: '/healthcheck' });
    assert.is(h.statusCode, 200);
    assert.is(h.body, 'OK');
    const t = await call(c.app, { method: 'GET', url: '/auth/token', token: c.tok[c.p2].agent });
    assert.is(t.json().project_id, c.p2);
    assert.is(t.json().role, 'agent');
    const spec = (await call(c.app, { method: 'GET', url: '/docs/openapi.json' })).json();
    for (const p of ['backups', 'clients', 'jobs', 'actions', 'sessions']) assert.ok(spec.paths[`/v2/{project_id}/${p}`], p);
    assert.ok(spec.paths['/v2/{project_id}/sessions/{session_id}/jobs/{job_id}'].put);
    const page = await call(c.app, { method: 'GET', url: '/docs' });
    assert.is(page.statusCode, 200);
    assert.match(page.body, '/v2/{project_id}/jobs/{job_id}/event');
    assert.not.match(page.body, /<script|https?:\/\/(?!127)/);
    const m = await call(c.app, { method: 'GET', url: '/metrics' });
    assert.match(m.body, 'floe_api_requests_total{method="GET",route="/docs"');
    assert.match(m.body, /floe_api_records\{kind="jobs"\} \d+/);
  });
});

dbSuites('contract', 'api backups', (s) => {
  s('POST records the agent document; GET returns freezer-api\'s shape', async ({ c }) => {
    const r = await call(c.app, { method: 'POST', url: `/v2/${c.p1}/backups`, token: c.tok[c.p1].member, body: backupBody(1000, { status: 'creating' }) });
    assert.is(r.statusCode, 201);
    const id = r.json().backup_id;
    assert.match(id, HEX32);
    const g = await call(c.app, { method: 'GET', url: `/v2/${c.p1}/backups/${id}`, token: c.tok[c.p1].reader });
    assert.is(g.statusCode, 200);
    const doc = g.json();
    assert.is(doc.backup_id, id);
    assert.is(doc.project_id, c.p1);
    assert.is(doc.status, 'creating');
    assert.is(doc.backup_metadata.time_stamp, 1000);
    assert.is(doc.backup_metadata.status, undefined);
    assert.ok(doc.user_id.startsWith('member-'));
  });

  s('lists newest first, with limit/offset (default 10)', async ({ c }) => {
    for (let t = 1; t <= 12; t++) {
      await call(c.app, { method: 'POST', url: `/v2/${c.p2}/backups`, token: c.tok[c.p2].agent, body: backupBody(t, { backup_name: t % 2 ? 'odd' : 'even' }) });
    }
    const list = async (qs: string, body?: unknown) => {
      const r = await call(c.app, { method: 'GET', url: `/v2/${c.p2}/backups${qs}`, token: c.tok[c.p2].reader, body });
      assert.is(r.statusCode, 200, r.body);
      return (r.json().backups as Array<{ backup_metadata: { time_stamp: number } }>).map((b) => b.backup_metadata.time_stamp);
    };
    assert.equal(await list(''), [12, 11, 10, 9, 8, 7, 6, 5, 4, 3]);
    assert.equal(await list('?offset=10'), [2, 1]);
    assert.equal(await list('?limit=3&offset=1'), [11, 10, 9]);
    assert.equal(await list('/?limit=2'), [12, 11], 'trailing slash');
    // the time filter works, in the query (epoch or ISO) or the body
    assert.equal(await list('?time_after=5&time_before=7'), [7, 6, 5]);
    assert.equal(await list('?time_after=1970-01-01T00:00:10Z'), [12, 11, 10]);
    assert.equal(await list('', { time_before: 2 }), [2, 1]);
    // match / match_not in the body, in the query, and free text
    assert.equal(await list('?limit=20', { match: [{ backup_name: 'odd' }], match_not: [{ time_stamp: 1 }] }), [11, 9, 7, 5, 3]);
    assert.equal(await list(`?limit=20&match=${encodeURIComponent('[{"backup_name":"even"}]')}&time_after=9`), [12, 10]);
    assert.equal(await list('?limit=20', { match: [{ _all: 'EVE' }], time_after: 9 }), [12, 10]);
    assert.equal(await list('?limit=20', { match_not: [{ _all: 'eve' }], time_after: 9 }), [11, 9]);
    assert.equal(await list('?limit=20', { match: [{ _all: '[{"backup_name": "odd"}]' }], time_after: 9 }), [11, 9], 'Freezer\'s SQL form of _all');
    assert.equal(await list('', { match: [{ _all: '%' }] }), [], 'LIKE wildcards are literal');
    assert.equal(await list('', { match: [{ time_stamp: '3' }] }), [], 'types matter: "3" is not 3');
    assert.equal(await list('', { match: { time_stamp: 3 } }), [3], 'a single object is a list of one');
  });

  s('PATCH merges metadata and sets status; DELETE forgets; both 404 after', async ({ c }) => {
    const id = (await call(c.app, { method: 'POST', url: `/v2/${c.p1}/backups`, token: c.tok[c.p1].admin, body: backupBody(5) })).json().backup_id;
    const p = await call(c.app, { method: 'PATCH', url: `/v2/${c.p1}/backups/${id}`, token: c.tok[c.p1].admin, body: { status: 'error', backup_metadata: { note: 'x', time_stamp: 6 } } });
    assert.is(p.statusCode, 200, p.body);
    assert.is(p.json().status, 'error');
    assert.is(p.json().backup_metadata.note, 'x');
    assert.is(p.json().backup_metadata.backup_name, 'etc');
    const byTime = await call(c.app, { method: 'GET', url: `/v2/${c.p1}/backups?time_after=6&time_before=6`, token: c.tok[c.p1].admin });
    assert.equal(byTime.json().backups.map((b: { backup_id: string }) => b.backup_id), [id], 'the time column follows a patched time_stamp');
    assert.is((await call(c.app, { method: 'DELETE', url: `/v2/${c.p1}/backups/${id}`, token: c.tok[c.p1].admin })).statusCode, 204);
    assert.is((await call(c.app, { method: 'GET', url: `/v2/${c.p1}/backups/${id}`, token: c.tok[c.p1].admin })).statusCode, 404);
    assert.is((await call(c.app, { method: 'DELETE', url: `/v2/${c.p1}/backups/${id}`, token: c.tok[c.p1].admin })).statusCode, 404);
    assert.is((await call(c.app, { method: 'PATCH', url: `/v2/${c.p1}/backups/${id}`, token: c.tok[c.p1].admin, body: { status: 'error' } })).statusCode, 404);
  });
});

dbSuites('contract', 'api clients', (s) => {
  s('register, read, re-register (update), list, delete', async ({ c }) => {
    const url = `/v2/${c.p1}/clients`;
    const r = await call(c.app, { method: 'POST', url, token: c.tok[c.p1].member, body: clientBody(`${c.p1}_node1`) });
    assert.is(r.statusCode, 201);
    assert.equal(r.json(), { client_id: `${c.p1}_node1` });
    const g = (await call(c.app, { method: 'GET', url: `${url}/${c.p1}_node1`, token: c.tok[c.p1].reader })).json();
    assert.is(g.project_id, c.p1);
    assert.is(g.client.client_id, `${c.p1}_node1`);
    assert.is(g.client.hostname, 'node1.example.org');
    assert.match(g.client.uuid, HEX32);
    assert.is(g.client.is_central, false);
    const again = await call(c.app, { method: 'POST', url, token: c.tok[c.p1].agent, body: { client_id: `${c.p1}_node1`, description: 'renamed', supported_engines: ['tar', 'rsync'] } });
    assert.is(again.statusCode, 201);
    const g2 = (await call(c.app, { method: 'GET', url: `${url}/${c.p1}_node1`, token: c.tok[c.p1].reader })).json();
    assert.is(g2.client.description, 'renamed');
    assert.is(g2.client.uuid, g.client.uuid);
    assert.equal(g2.client.supported_engines, ['tar', 'rsync']);
    await call(c.app, { method: 'POST', url, token: c.tok[c.p1].member, body: clientBody('node2', { hostname: 'node2' }) });
    const list = (await call(c.app, { method: 'GET', url, token: c.tok[c.p1].reader, body: { match: [{ hostname: 'node2' }] } })).json();
    assert.equal(list.clients.map((x: { client: { client_id: string } }) => x.client.client_id), ['node2']);
    assert.is((await call(c.app, { method: 'DELETE', url: `${url}/node2`, token: c.tok[c.p1].member })).statusCode, 204);
    assert.is((await call(c.app, { method: 'GET', url: `${url}/node2`, token: c.tok[c.p1].member })).statusCode, 404);
  });

  s('is_central needs admin', async ({ c }) => {
    const url = `/v2/${c.p1}/clients`;
    const m = await call(c.app, { method: 'POST', url, token: c.tok[c.p1].member, body: clientBody('central1', { is_central: true }) });
    assert.is(m.statusCode, 403);
    assert.is(m.json().code, 'FLOE_API_ERR_CENTRAL_CLIENT');
    const a = await call(c.app, { method: 'POST', url, token: c.tok[c.p1].admin, body: clientBody('central1', { is_central: true }) });
    assert.is(a.statusCode, 201);
  });
});

dbSuites('contract', 'api jobs', (s) => {
  s.before(async ({ c }) => {
    await call(c.app, { method: 'POST', url: `/v2/${c.p1}/clients`, token: c.tok[c.p1].admin, body: clientBody('nodeA') });
    await call(c.app, { method: 'POST', url: `/v2/${c.p1}/clients`, token: c.tok[c.p1].admin, body: clientBody('nodeB', { supported_actions: ['backup'] }) });
  });

  s('POST needs a registered client that supports the actions (422)', async ({ c }) => {
    const url = `/v2/${c.p1}/jobs`;
    const unknown = await call(c.app, { method: 'POST', url, token: c.tok[c.p1].member, body: jobBody('ghost') });
    assert.is(unknown.statusCode, 422);
    assert.is(unknown.json().code, 'FLOE_API_ERR_UNKNOWN_CLIENT');
    const body = jobBody('nodeB');
    body.job_actions[0].freezer_action.action = 'restore';
    const unsupported = await call(c.app, { method: 'POST', url, token: c.tok[c.p1].member, body });
    assert.is(unsupported.statusCode, 422);
    assert.match(unsupported.json().description, 'does not support action restore');
  });

  s('POST creates the job and its actions; GET returns the full document', async ({ c }) => {
    const r = await call(c.app, {
      method: 'POST', url: `/v2/${c.p1}/jobs`, token: c.tok[c.p1].member,
      body: jobBody('nodeA', { action_defaults: { container: '/defaults', compression: 'zstd' }, job_schedule: { schedule_interval: '5 minutes', status: 'stop' } }),
    });
    assert.is(r.statusCode, 201, r.body);
    const id = r.json().job_id;
    assert.match(id, HEX32);
    const job = (await call(c.app, { method: 'GET', url: `/v2/${c.p1}/jobs/${id}`, token: c.tok[c.p1].reader })).json();
    assert.is(job.job_id, id);
    assert.is(job.client_id, 'nodeA');
    assert.is(job.project_id, c.p1);
    assert.is(job.session_id, '');
    assert.is(job.session_tag, 0);
    assert.is(job.action_defaults, undefined);
    assert.equal(job.job_schedule, { schedule_interval: '5 minutes', status: 'stop', time_created: Math.floor(c.clock.now / 1000), time_started: -1, time_ended: -1 });
    const a = job.job_actions[0];
    assert.is(a.freezer_action.container, '/b', 'defaults do not override');
    assert.is(a.freezer_action.compression, 'zstd', 'defaults fill what is missing');
    assert.is(a.max_retries, 2);
    assert.is(a.max_retries_interval, 6);
    assert.match(a.action_id, HEX32);
    const action = await call(c.app, { method: 'GET', url: `/v2/${c.p1}/actions/${a.action_id}`, token: c.tok[c.p1].reader });
    assert.is(action.statusCode, 200);
    assert.equal(action.json().freezer_action, a.freezer_action);
    const dup = await call(c.app, { method: 'POST', url: `/v2/${c.p1}/jobs`, token: c.tok[c.p1].member, body: jobBody('nodeA', { job_id: id }) });
    assert.is(dup.statusCode, 409);
  });

  s('the scheduler\'s poll: match client_id, match_not completed; PATCH; paging', async ({ c }) => {
    const url = `/v2/${c.p2}/jobs`;
    const t = c.tok[c.p2].admin;
    await call(c.app, { method: 'POST', url: `/v2/${c.p2}/clients`, token: t, body: clientBody('n1') });
    await call(c.app, { method: 'POST', url: `/v2/${c.p2}/clients`, token: t, body: clientBody('n2') });
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await call(c.app, { method: 'POST', url, token: t, body: jobBody(i < 3 ? 'n1' : 'n2', { job_id: `job${i}` }) })).json().job_id);
    const p = await call(c.app, { method: 'PATCH', url: `${url}/job1`, token: t, body: { job_schedule: { status: 'completed', result: 'success' } } });
    assert.is(p.statusCode, 200);
    assert.equal(p.json(), { job_id: 'job1', version: 2 });
    const poll = { match_not: [{ status: 'completed' }], match: [{ client_id: 'n1' }] };
    const r = await call(c.app, { method: 'GET', url: `${url}/?limit=10&offset=0`, token: t, body: poll });
    assert.equal(r.json().jobs.map((j: { job_id: string }) => j.job_id), ['job0', 'job2']);
    const merged = (await call(c.app, { method: 'GET', url: `${url}/job1`, token: t })).json();
    assert.is(merged.job_schedule.schedule_interval, '1 days', 'job_schedule is merged, not replaced');
    const page = await call(c.app, { method: 'GET', url: `${url}?limit=2&offset=2`, token: t });
    assert.equal(page.json().jobs.map((j: { job_id: string }) => j.job_id), ['job2', 'job3']);
    const q = await call(c.app, { method: 'GET', url: `${url}?match=${encodeURIComponent('{"client_id":"n2"}')}`, token: t });
    assert.equal(q.json().jobs.map((j: { job_id: string }) => j.job_id), ['job3', 'job4']);
    const byAction = await call(c.app, { method: 'GET', url, token: t, body: { match: [{ backup_name: 'etc' }, { client_id: 'n2' }] } });
    assert.is(byAction.json().jobs.length, 2, 'keys are found inside job_actions');
  });

  s('POST /jobs/{id} creates or replaces; events; DELETE', async ({ c }) => {
    const url = `/v2/${c.p1}/jobs/myjob`;
    const t = c.tok[c.p1].member;
    const r1 = await call(c.app, { method: 'POST', url, token: t, body: jobBody('nodeA') });
    assert.is(r1.statusCode, 201);
    assert.equal(r1.json(), { job_id: 'myjob', version: 1 });
    const r2 = await call(c.app, { method: 'POST', url, token: t, body: jobBody('nodeA', { description: 'replaced' }) });
    assert.equal(r2.json(), { job_id: 'myjob', version: 2 });
    const ev = async (body: unknown) => call(c.app, { method: 'POST', url: `${url}/event`, token: t, body });
    let e = await ev({ start: null });
    assert.is(e.statusCode, 202);
    assert.equal(e.json(), { result: 'success' });
    e = await ev({ start: null });
    assert.equal(e.json(), { result: 'start already requested' });
    const job = (await call(c.app, { method: 'GET', url, token: t })).json();
    assert.is(job.job_schedule.event, 'start');
    assert.is(job.job_schedule.status, '');
    assert.is(job.description, 'replaced');
    assert.equal((await ev({ stop: null })).json(), { result: 'success' });
    assert.equal((await ev({ abort: null })).json(), { result: 'success' });
    assert.is((await ev({ explode: null })).statusCode, 400);
    assert.is((await ev({ start: null, stop: null })).statusCode, 400);
    assert.is((await call(c.app, { method: 'POST', url: `/v2/${c.p1}/jobs/nojob/event`, token: t, body: { start: null } })).statusCode, 404);
    assert.is((await call(c.app, { method: 'DELETE', url, token: t })).statusCode, 204);
    assert.is((await call(c.app, { method: 'DELETE', url, token: t })).statusCode, 404);
  });

  s('PATCH with new actions checks the client and stores the actions', async ({ c }) => {
    const t = c.tok[c.p1].member;
    await call(c.app, { method: 'POST', url: `/v2/${c.p1}/jobs/pj`, token: t, body: jobBody('nodeA') });
    const bad = await call(c.app, { method: 'PATCH', url: `/v2/${c.p1}/jobs/pj`, token: t, body: { client_id: 'nodeB', job_actions: [{ freezer_action: { action: 'exec', command: 'true' } }] } });
    assert.is(bad.statusCode, 422);
    const ok = await call(c.app, { method: 'PATCH', url: `/v2/${c.p1}/jobs/pj`, token: t, body: { job_actions: [{ freezer_action: { action: 'exec', command: 'true' } }] } });
    assert.is(ok.statusCode, 200);
    const job = (await call(c.app, { method: 'GET', url: `/v2/${c.p1}/jobs/pj`, token: t })).json();
    assert.is(job.job_actions[0].freezer_action.command, 'true');
    assert.is((await call(c.app, { method: 'GET', url: `/v2/${c.p1}/actions/${job.job_actions[0].action_id}`, token: t })).statusCode, 200);
  });
});

dbSuites('contract', 'api actions', (s) => {
  s('create with defaults, read, patch (merged), replace, list, delete', async ({ c }) => {
    const url = `/v2/${c.p1}/actions`;
    const t = c.tok[c.p1].member;
    const r = await call(c.app, { method: 'POST', url, token: t, body: { freezer_action: { action: 'backup', backup_name: 'db', path_to_backup: '/var/db' } } });
    assert.is(r.statusCode, 201);
    const id = r.json().action_id;
    const a = (await call(c.app, { method: 'GET', url: `${url}/${id}`, token: t })).json();
    assert.equal(a, { max_retries: 5, max_retries_interval: 6, mandatory: false, freezer_action: { action: 'backup', backup_name: 'db', path_to_backup: '/var/db' }, action_id: id, user_id: a.user_id, project_id: c.p1 });
    const p = await call(c.app, { method: 'PATCH', url: `${url}/${id}`, token: t, body: { freezer_action: { container: '/x' }, mandatory: true } });
    assert.equal(p.json(), { action_id: id, version: 2 });
    const a2 = (await call(c.app, { method: 'GET', url: `${url}/${id}`, token: t })).json();
    assert.is(a2.freezer_action.backup_name, 'db');
    assert.is(a2.freezer_action.container, '/x');
    assert.is(a2.mandatory, true);
    const rp = await call(c.app, { method: 'POST', url: `${url}/${id}`, token: t, body: { freezer_action: { action: 'restore' } } });
    assert.is(rp.statusCode, 201);
    assert.equal(rp.json(), { action_id: id, version: 3 });
    assert.equal((await call(c.app, { method: 'GET', url: `${url}/${id}`, token: t })).json().freezer_action, { action: 'restore' });
    const list = (await call(c.app, { method: 'GET', url, token: t, body: { match: [{ action: 'restore' }] } })).json();
    assert.equal(list.actions.map((x: { action_id: string }) => x.action_id), [id]);
    assert.is((await call(c.app, { method: 'DELETE', url: `${url}/${id}`, token: t })).statusCode, 204);
    assert.is((await call(c.app, { method: 'GET', url: `${url}/${id}`, token: t })).statusCode, 404);
    assert.is((await call(c.app, { method: 'POST', url, token: t, body: { action_id: 'fixed', freezer_action: {} } })).json().action_id, 'fixed');
    assert.is((await call(c.app, { method: 'POST', url, token: t, body: { action_id: 'fixed', freezer_action: {} } })).statusCode, 409);
  });
});

dbSuites('contract', 'api sessions', (s) => {
  s('a two-node session: attach, start, hold-off, end, detach', async ({ c }) => {
    const t = c.tok[c.p1].member;
    const v2 = `/v2/${c.p1}`;
    await call(c.app, { method: 'POST', url: `${v2}/clients`, token: t, body: clientBody('s1') });
    await call(c.app, { method: 'POST', url: `${v2}/clients`, token: t, body: clientBody('s2') });
    await call(c.app, { method: 'POST', url: `${v2}/jobs/ja`, token: t, body: jobBody('s1') });
    await call(c.app, { method: 'POST', url: `${v2}/jobs/jb`, token: t, body: jobBody('s2') });
    const cr = await call(c.app, { method: 'POST', url: `${v2}/sessions/`, token: t, body: { description: 'db cluster', schedule: { schedule_date: '2030-01-01T00:00:00' } } });
    assert.is(cr.statusCode, 201);
    const sid = cr.json().session_id;
    let sess = (await call(c.app, { method: 'GET', url: `${v2}/sessions/${sid}`, token: t })).json();
    assert.is(sess.status, 'active');
    assert.is(sess.session_tag, 0);
    assert.is(sess.hold_off, 30);
    assert.equal(sess.jobs, {});
    // PUT with Freezer's empty JSON body
    for (const j of ['ja', 'jb']) {
      const put = await call(c.app, { method: 'PUT', url: `${v2}/sessions/${sid}/jobs/${j}`, token: t, raw: '' , headers: { 'content-type': 'application/json' } });
      assert.is(put.statusCode, 204, put.body);
    }
    const ja = (await call(c.app, { method: 'GET', url: `${v2}/jobs/ja`, token: t })).json();
    assert.is(ja.session_id, sid);
    assert.is(ja.job_schedule.schedule_date, '2030-01-01T00:00:00');
    assert.is(ja.job_schedule.schedule_interval, undefined, 'the session\'s trigger replaces the job\'s');
    const act = async (body: unknown) => call(c.app, { method: 'POST', url: `${v2}/sessions/${sid}/action`, token: c.tok[c.p1].agent, body });
    assert.equal((await act({ start: { job_id: 'ja', current_tag: 0 } })).json(), { result: 'success', session_tag: 1 });
    assert.equal((await act({ start: { job_id: 'jb', current_tag: 0 } })).json(), { result: 'success', session_tag: 1 }, 'joins the run');
    assert.equal((await act({ start: { job_id: 'jb', current_tag: 1 } })).json(), { result: 'hold-off', session_tag: 1 });
    const high = await act({ start: { job_id: 'ja', current_tag: 5 } });
    assert.is(high.statusCode, 400);
    assert.is(high.json().code, 'FLOE_API_ERR_SESSION_TAG');
    assert.is((await act({ start: { job_id: 'nope', current_tag: 0 } })).statusCode, 400);
    assert.equal((await act({ end: { job_id: 'ja', current_tag: 1, result: 'success' } })).json(), { result: 'success', session_tag: 1 });
    sess = (await call(c.app, { method: 'GET', url: `${v2}/sessions/${sid}`, token: t })).json();
    assert.is(sess.status, 'running');
    await act({ end: { job_id: 'jb', current_tag: 1, result: 'fail' } });
    sess = (await call(c.app, { method: 'GET', url: `${v2}/sessions/${sid}`, token: t })).json();
    assert.is(sess.status, 'completed');
    assert.is(sess.result, 'fail');
    assert.is(sess.jobs.jb.status, 'completed');
    c.clock.now += 31_000;
    assert.equal((await act({ start: { job_id: 'ja', current_tag: 0 } })).json(), { result: 'out-of-sync', session_tag: 1 });
    assert.equal((await act({ start: { job_id: 'ja', current_tag: 1 } })).json(), { result: 'success', session_tag: 2 });
    assert.is((await call(c.app, { method: 'DELETE', url: `${v2}/sessions/${sid}/jobs/jb`, token: t })).statusCode, 204);
    const jb = (await call(c.app, { method: 'GET', url: `${v2}/jobs/jb`, token: t })).json();
    assert.is(jb.session_id, '');
    assert.is(jb.job_schedule.event, 'stop');
    sess = (await call(c.app, { method: 'GET', url: `${v2}/sessions/${sid}`, token: t })).json();
    assert.equal(Object.keys(sess.jobs), ['ja']);
    assert.is((await call(c.app, { method: 'PUT', url: `${v2}/sessions/${sid}/jobs/nojob`, token: t })).statusCode, 404);
    assert.is((await call(c.app, { method: 'PUT', url: `${v2}/sessions/nosess/jobs/ja`, token: t })).statusCode, 404);
  });

  s('PATCH, replace, list, delete', async ({ c }) => {
    const t = c.tok[c.p2].admin;
    const url = `/v2/${c.p2}/sessions`;
    const sid = (await call(c.app, { method: 'POST', url, token: t, body: { description: 'one', hold_off: 5, session_tag: 3 } })).json().session_id;
    const g = (await call(c.app, { method: 'GET', url: `${url}/${sid}`, token: t })).json();
    assert.is(g.hold_off, 5);
    assert.is(g.session_tag, 3);
    assert.equal((await call(c.app, { method: 'PATCH', url: `${url}/${sid}`, token: t, body: { description: 'two' } })).json(), { session_id: sid, version: 2 });
    assert.is((await call(c.app, { method: 'POST', url: `${url}/${sid}`, token: t, body: { description: 'three' } })).statusCode, 201);
    const list = (await call(c.app, { method: 'GET', url, token: t, body: { match: [{ description: 'three' }] } })).json();
    assert.equal(list.sessions.map((x: { session_id: string }) => x.session_id), [sid]);
    assert.is((await call(c.app, { method: 'DELETE', url: `${url}/${sid}`, token: t })).statusCode, 204);
    assert.is((await call(c.app, { method: 'GET', url: `${url}/${sid}`, token: t })).statusCode, 404);
  });
});

test.run();
