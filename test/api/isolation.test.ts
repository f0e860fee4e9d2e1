/**
 * Isolation: two projects, four roles, every route tried with every token.
 *  - own project: a role with the permission is let through (neither 401 nor 403), one without gets 403;
 *  - the other project's URL: 403 for every role, and the other project's records do not change;
 *  - the other project's record ids on the own project's URL: 404, never the record;
 *  - no token or a wrong one: 401 with no detail.
 * Then the agent role in detail, with a token bound to one client.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { allowed, createToken, Role } from '../../api/auth.js';
import { backupBody, call, clientBody, dbSuites, jobBody } from './helpers.js';
import { ACTION, CLIENT, JOB, ROUTES, SESSION, ensureFixtures, snapshot } from './routes.js';

const ROLES: Role[] = ['admin', 'member', 'reader', 'agent'];
const UNAUTHORIZED = { title: 'Unauthorized', description: 'authentication required', code: 'FLOE_API_ERR_UNAUTHORIZED' };

dbSuites('isolation', 'api isolation matrix', (s) => {
  s('every route x every role, in its own project', async ({ c }) => {
    let ids = await ensureFixtures(c, c.p1);
    for (const route of ROUTES) {
      for (const role of ROLES) {
        const res = await call(c.app, { method: route.method, url: `/v2/${c.p1}${route.path(ids)}`, token: c.tok[c.p1][role], body: route.body?.() });
        const what = `${role} ${route.name}: ${res.statusCode} ${res.body}`;
        if (allowed(role, route.permission)) {
          assert.ok(res.statusCode !== 401 && res.statusCode !== 403, what);
          assert.ok(res.statusCode < 500, what);
          if (route.method !== 'GET') ids = await ensureFixtures(c, c.p1, ids);
        } else {
          assert.is(res.statusCode, 403, what);
          assert.is(res.json().code, 'FLOE_API_ERR_FORBIDDEN', what);
        }
      }
    }
  });

  s('no token reaches another project, and nothing there changes', async ({ c }) => {
    const ids1 = await ensureFixtures(c, c.p1);
    const ids2 = await ensureFixtures(c, c.p2);
    const before = await snapshot(c, c.p2);
    for (const route of ROUTES) {
      for (const role of ROLES) {
        const res = await call(c.app, { method: route.method, url: `/v2/${c.p2}${route.path(ids2)}`, token: c.tok[c.p1][role], body: route.body?.() });
        assert.is(res.statusCode, 403, `${role}@p1 ${route.name} on p2: ${res.body}`);
        assert.is(res.json().code, 'FLOE_API_ERR_WRONG_PROJECT');
      }
    }
    assert.is(await snapshot(c, c.p2), before, 'project 2 is unchanged');
    // project 1's backup id does not exist in project 2, even for project 2's admin
    for (const route of ROUTES.filter((r) => r.path(ids1).includes(ids1.backup))) {
      const res = await call(c.app, { method: route.method, url: `/v2/${c.p2}${route.path(ids1)}`, token: c.tok[c.p2].admin, body: route.body?.() });
      assert.is(res.statusCode, 404, `${route.name}: ${res.body}`);
    }
  });

  s('records of the same id in two projects are two records', async ({ c }) => {
    await ensureFixtures(c, c.p1);
    await ensureFixtures(c, c.p2);
    await call(c.app, { method: 'PATCH', url: `/v2/${c.p1}/jobs/${JOB}`, token: c.tok[c.p1].admin, body: { description: 'only in p1' } });
    const j2 = (await call(c.app, { method: 'GET', url: `/v2/${c.p2}/jobs/${JOB}`, token: c.tok[c.p2].admin })).json();
    assert.is(j2.description, 'nightly');
    assert.is(j2.project_id, c.p2);
    const onlyP1 = await call(c.app, { method: 'POST', url: `/v2/${c.p1}/actions/p1only`, token: c.tok[c.p1].admin, body: { freezer_action: {} } });
    assert.is(onlyP1.statusCode, 201);
    for (const [url, kind] of [[`/actions/p1only`, 'actions'], [`/jobs/${JOB}`, 'jobs'], [`/sessions/${SESSION}`, 'sessions'], [`/clients/${CLIENT}`, 'clients'], [`/actions/${ACTION}`, 'actions']]) {
      const list = (await call(c.app, { method: 'GET', url: `/v2/${c.p2}/${kind}?limit=1000`, token: c.tok[c.p2].admin })).json();
      for (const doc of list[kind]) assert.is(doc.project_id, c.p2, url);
    }
    assert.is((await call(c.app, { method: 'GET', url: `/v2/${c.p2}/actions/p1only`, token: c.tok[c.p2].admin })).statusCode, 404);
  });

  s('a missing or wrong token: 401 and nothing more, on every route', async ({ c }) => {
    const ids = await ensureFixtures(c, c.p1);
    for (const route of ROUTES) {
      for (const token of [undefined, 'floe_nope', 'x'.repeat(5000), '']) {
        const res = await call(c.app, { method: route.method, url: `/v2/${c.p1}${route.path(ids)}`, token, body: route.body?.() });
        assert.is(res.statusCode, 401, route.name);
        assert.equal(res.json(), UNAUTHORIZED);
      }
    }
    const revoked = await createToken(c.db.prisma, { projectId: c.p1, role: 'admin' });
    await c.db.prisma.token.delete({ where: { id: revoked.id } });
    c.app.authenticator.forget();
    assert.is((await call(c.app, { method: 'GET', url: `/v2/${c.p1}/jobs`, token: revoked.secret })).statusCode, 401);
  });
});

dbSuites('isolation', 'api agent role', (s) => {
  s('an agent bound to a client: its client, its jobs, their status, backups; nothing else', async ({ c }) => {
    const p = c.p1;
    const admin = c.tok[p].admin;
    const agent = (await createToken(c.db.prisma, { projectId: p, role: 'agent', clientId: 'mine' })).secret;
    const send = (method: string, url: string, body?: unknown, token = agent) => call(c.app, { method, url: `/v2/${p}${url}`, token, body });
    assert.is((await send('POST', '/clients', clientBody('mine'))).statusCode, 201);
    assert.is((await send('POST', '/clients', clientBody('theirs'))).json().code, 'FLOE_API_ERR_AGENT_SCOPE');
    await send('POST', '/clients', clientBody('theirs'), admin);
    await send('POST', '/jobs/j-mine', jobBody('mine'), admin);
    await send('POST', '/jobs/j-theirs', jobBody('theirs'), admin);
    // reads: its jobs only
    const list = (await send('GET', '/jobs?limit=100')).json().jobs.map((j: { job_id: string }) => j.job_id);
    assert.equal(list, ['j-mine']);
    const filtered = (await send('GET', '/jobs', { match: [{ client_id: 'theirs' }] })).json().jobs;
    assert.equal(filtered, [], 'a filter cannot widen the scope');
    assert.is((await send('GET', '/jobs/j-theirs')).statusCode, 404);
    assert.is((await send('GET', '/jobs/j-mine')).statusCode, 200);
    // status updates: yes; anything else: no
    const run = await send('PATCH', '/jobs/j-mine', { job_schedule: { status: 'running', result: '', time_started: 5, current_pid: 42 }, session_tag: 1 });
    assert.is(run.statusCode, 200, run.body);
    const whole = (await send('GET', '/jobs/j-mine')).json();
    whole.job_schedule.status = 'completed';
    assert.is((await send('PATCH', '/jobs/j-mine', whole)).statusCode, 200, 'Freezer 13 patches the whole document it read');
    const sneaky = await send('PATCH', '/jobs/j-mine', { job_schedule: { schedule_interval: '1 seconds' }, description: 'mine now' });
    assert.is(sneaky.statusCode, 403);
    assert.is(sneaky.json().code, 'FLOE_API_ERR_AGENT_FIELDS');
    assert.match(sneaky.json().description, 'job_schedule.schedule_interval, description');
    assert.is((await send('PATCH', '/jobs/j-mine', { job_actions: [] })).statusCode, 403);
    assert.is((await send('PATCH', '/jobs/j-theirs', { job_schedule: { status: 'running' } })).statusCode, 404);
    assert.is((await send('DELETE', '/jobs/j-mine')).statusCode, 403);
    assert.is((await send('POST', '/jobs/j-mine/event', { start: null })).statusCode, 403);
    assert.is((await send('POST', '/jobs', jobBody('mine'))).statusCode, 403);
    // backups: post, never read, change or delete
    const b = await send('POST', '/backups', backupBody(9));
    assert.is(b.statusCode, 201);
    const bid = b.json().backup_id;
    assert.is((await send('GET', `/backups/${bid}`)).statusCode, 403);
    assert.is((await send('PATCH', `/backups/${bid}`, { status: 'deleted' })).statusCode, 403);
    assert.is((await send('DELETE', `/backups/${bid}`)).statusCode, 403);
    // sessions: start/end its own session jobs only
    const sid = (await send('POST', '/sessions', { description: 's' }, admin)).json().session_id;
    await send('PUT', `/sessions/${sid}/jobs/j-mine`, undefined, admin);
    await send('PUT', `/sessions/${sid}/jobs/j-theirs`, undefined, admin);
    assert.is((await send('POST', `/sessions/${sid}/action`, { start: { job_id: 'j-mine', current_tag: 0 } })).statusCode, 202);
    const other = await send('POST', `/sessions/${sid}/action`, { start: { job_id: 'j-theirs', current_tag: 0 } });
    assert.is(other.statusCode, 403);
    assert.is(other.json().code, 'FLOE_API_ERR_AGENT_SCOPE');
  });
});

test.run();
