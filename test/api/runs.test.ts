/**
 * Contract tests of floe's run reports (api/runs.ts) and of idempotent backup reports (api/backups.ts),
 * on every test database: a repeated POST never makes a second record.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createToken } from '../../api/auth.js';
import { backupBody, call, clientBody, dbSuites, jobBody } from './helpers.js';
import { runBody } from './routes.js';

dbSuites('runs', 'api runs', (s) => {
  s('POST records a run; a repeat of its run_id answers 200 and changes nothing', async ({ c }) => {
    const p = c.p1;
    const admin = c.tok[p].admin;
    const send = (method: string, url: string, body?: unknown, token = admin) => call(c.app, { method, url: `/v2/${p}${url}`, token, body });
    await send('POST', '/clients', clientBody('n1'));
    await send('POST', '/jobs/j1', jobBody('n1'));
    await send('POST', '/jobs/j2', jobBody('n1'));
    const first = await send('POST', '/jobs/j1/runs', runBody({ run_id: 'r-1', log: 'ok' }), c.tok[p].agent);
    assert.is(first.statusCode, 201, first.body);
    assert.equal(first.json(), { run_id: 'r-1' });
    const again = await send('POST', '/jobs/j1/runs', runBody({ run_id: 'r-1', result: 'fail' }));
    assert.is(again.statusCode, 200, again.body);
    assert.equal(again.json(), { run_id: 'r-1' });
    const elsewhere = await send('POST', '/jobs/j2/runs', runBody({ run_id: 'r-1' }));
    assert.is(elsewhere.statusCode, 409);
    assert.is(elsewhere.json().code, 'FLOE_API_ERR_RUN_EXISTS');
    const runs = (await send('GET', '/jobs/j1/runs')).json().runs;
    assert.is(runs.length, 1);
    const big = 2 ** 40;
    assert.equal(runs[0], {
      run_id: 'r-1', job_id: 'j1', client_id: 'n1', project_id: p, user_id: runs[0].user_id, action: 'backup', result: 'success',
      exit_code: 0, time_started: 1000, time_ended: 1010, duration: 10, bytes_read: 4096, bytes_stored: 1024, rate: 409.6,
      backup_id: '', session_id: '', log: 'ok',
    });
    const made = await send('POST', '/jobs/j1/runs', runBody({ bytes_read: big, time_started: 2000, time_ended: 2000, action: 'restore' }));
    assert.is(made.statusCode, 201);
    assert.match(made.json().run_id, /^[0-9a-f]{32}$/);
    const newest = (await send('GET', '/jobs/j1/runs?limit=1')).json().runs;
    assert.is(newest[0].bytes_read, big, 'byte counts above 2^32 survive');
    assert.is(newest[0].action, 'restore');
    assert.is((await send('POST', '/jobs/nope/runs', runBody())).statusCode, 404);
  });

  s('lists: newest first, paged and filtered in the database', async ({ c }) => {
    const p = c.p1;
    const admin = c.tok[p].admin;
    const send = (method: string, url: string, body?: unknown, token = admin) => call(c.app, { method, url: `/v2/${p}${url}`, token, body });
    await send('POST', '/clients', clientBody('a'));
    await send('POST', '/clients', clientBody('b'));
    await send('POST', '/jobs/ja', jobBody('a'));
    await send('POST', '/jobs/jb', jobBody('b'));
    for (let i = 0; i < 6; i++) {
      const job = i % 2 ? 'jb' : 'ja';
      const res = await send('POST', `/jobs/${job}/runs`, runBody({ run_id: `r${i}`, time_started: 100 + i, time_ended: 101 + i, result: i === 3 ? 'fail' : 'success', exit_code: i === 3 ? 1 : 0 }));
      assert.is(res.statusCode, 201);
    }
    const ids = async (q: string, url = '/runs') => (await send('GET', `${url}${q}`)).json().runs.map((r: { run_id: string }) => r.run_id);
    assert.equal(await ids('?limit=100&time_before=200'), ['r5', 'r4', 'r3', 'r2', 'r1', 'r0'], 'the first test\'s runs started at 1000 and 2000');
    assert.equal(await ids('?limit=2&offset=1&time_before=200'), ['r4', 'r3']);
    assert.equal(await ids('?job_id=jb'), ['r5', 'r3', 'r1']);
    assert.equal(await ids('', '/jobs/ja/runs'), ['r4', 'r2', 'r0']);
    assert.equal(await ids('?client_id=a&time_after=102'), ['r4', 'r2']);
    assert.equal(await ids('?time_after=101&time_before=103'), ['r3', 'r2', 'r1']);
    assert.equal(await ids('?result=fail'), ['r3']);
    assert.equal(await ids('?action=restore&client_id=a'), []);
    assert.is((await ids('?action=restore')).length, 1);
    assert.equal((await call(c.app, { method: 'GET', url: `/v2/${c.p2}/runs`, token: c.tok[c.p2].admin })).json().runs, [], 'other project');
    assert.is((await send('GET', '/runs', undefined, c.tok[p].reader)).statusCode, 200);
    assert.is((await send('GET', '/runs', undefined, c.tok[p].agent)).statusCode, 403, 'an agent cannot read runs');
  });

  s('an agent bound to a client posts runs of its own jobs only', async ({ c }) => {
    const p = c.p1;
    const admin = c.tok[p].admin;
    const agent = (await createToken(c.db.prisma, { projectId: p, role: 'agent', clientId: 'mine' })).secret;
    const send = (method: string, url: string, body?: unknown, token = agent) => call(c.app, { method, url: `/v2/${p}${url}`, token, body });
    await send('POST', '/clients', clientBody('mine'), admin);
    await send('POST', '/clients', clientBody('theirs'), admin);
    await send('POST', '/jobs/j-mine', jobBody('mine'), admin);
    await send('POST', '/jobs/j-theirs', jobBody('theirs'), admin);
    assert.is((await send('POST', '/jobs/j-mine/runs', runBody())).statusCode, 201);
    const other = await send('POST', '/jobs/j-theirs/runs', runBody());
    assert.is(other.statusCode, 404);
    assert.is(other.json().code, 'FLOE_API_ERR_NOT_FOUND');
    assert.is((await send('GET', '/jobs/j-mine/runs')).statusCode, 403);
    assert.is((await send('GET', '/runs?client_id=theirs', undefined, admin)).json().runs.length, 0);
  });
});

dbSuites('runs', 'api idempotent backups', (s) => {
  s('the same backup posted twice is one record; another level or time is another', async ({ c }) => {
    const p = c.p1;
    const send = (method: string, url: string, body?: unknown, token = c.tok[p].agent) => call(c.app, { method, url: `/v2/${p}${url}`, token, body });
    const a = await send('POST', '/backups', backupBody(500));
    assert.is(a.statusCode, 201);
    const b = await send('POST', '/backups', backupBody(500));
    assert.is(b.statusCode, 200, 'a repeat answers 200');
    assert.is(b.json().backup_id, a.json().backup_id);
    assert.is((await send('POST', '/backups', backupBody(500, { engine_name: 'tar' }))).json().backup_id, a.json().backup_id, 'engine_name defaults to tar');
    const others = [backupBody(501), backupBody(500, { curr_backup_level: 1 }), backupBody(500, { engine_name: 'rsync' }), backupBody(500, { hostname: 'node2' }), backupBody(500, { backup_name: 'var' })];
    for (const body of others) assert.is((await send('POST', '/backups', body)).statusCode, 201, JSON.stringify(body));
    // concurrent repeats: one record
    const many = await Promise.all(Array.from({ length: 6 }, () => send('POST', '/backups', backupBody(900))));
    const idsOf = new Set(many.map((r) => r.json().backup_id));
    assert.is(idsOf.size, 1, many.map((r) => `${r.statusCode} ${r.body}`).join('; '));
    assert.is(many.filter((r) => r.statusCode === 201).length, 1);
    const list = (await send('GET', '/backups?limit=100', undefined, c.tok[p].admin)).json().backups;
    assert.is(list.length, 7);
    // the other project records its own copy
    const p2 = await call(c.app, { method: 'POST', url: `/v2/${c.p2}/backups`, token: c.tok[c.p2].agent, body: backupBody(500) });
    assert.is(p2.statusCode, 201);
    assert.is.not(p2.json().backup_id, a.json().backup_id);
    // no time_stamp: no identity, every POST is a new record
    const { time_stamp: _t, ...noTime } = backupBody(0);
    assert.is((await send('POST', '/backups', noTime)).statusCode, 201);
    assert.is((await send('POST', '/backups', noTime)).statusCode, 201);
    // after a DELETE the backup may be recorded again
    assert.is((await send('DELETE', `/backups/${a.json().backup_id}`, undefined, c.tok[p].admin)).statusCode, 204);
    assert.is((await send('POST', '/backups', backupBody(500))).statusCode, 201);
  });
});

test.run();
