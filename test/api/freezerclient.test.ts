/**
 * Interop: Freezer's own API client (python-freezerclient 5, installed with python3-freezer) drives a
 * live floe API through every resource: clients, jobs (create, poll with a filter body on GET, start,
 * update), backups (free-text search), sessions (attach, start, end, detach), actions, and deletes.
 * Skipped, with a message, where freezerclient is not installed.
 */
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startServer } from '../../api/server.js';
import { createToken } from '../../api/auth.js';
import { resolveDb } from '../../api/db/url.js';

const PYTHON = '/usr/bin/python3';

const SCRIPT = `
import json, os, sys, types
from freezerclient.v2.managers import jobs, clients, backups, sessions, actions
c = types.SimpleNamespace(endpoint=os.environ['API'], project_id='interop', auth_token=os.environ['TOKEN'], client_id='interop_node1')
cm, jm, bm = clients.ClientManager(c), jobs.JobManager(c), backups.BackupsManager(c)
sm, am = sessions.SessionManager(c), actions.ActionManager(c)
out = {}
out['client'] = cm.create({'client_id': 'interop_node1', 'hostname': 'node1'})
jid = jm.create({'job_actions': [{'freezer_action': {'action': 'backup', 'backup_name': 'x'}}], 'job_schedule': {}, 'description': 'py'})
out['polled'] = [j['job_id'] == jid for j in jm.list(search={'match_not': [{'status': 'completed'}]})]
out['start'] = jm.start_job(jid)
out['version'] = jm.update(jid, {'job_schedule': {'status': 'completed', 'result': 'success'}})
out['polled_after'] = len(jm.list(search={'match_not': [{'status': 'completed'}]}))
bid = bm.create({'container': '/c', 'hostname': 'node1', 'backup_name': 'x', 'time_stamp': 5})
out['backup_name'] = bm.get(bid)['backup_metadata']['backup_name']
out['found'] = len(bm.list(search={'match': [{'_all': 'NODE1'}]}))
sid = sm.create({'description': 'sess'})
sm.add_job(sid, jid)
out['session_start'] = sm.start_session(sid, jid, 0)
out['session_end'] = sm.end_session(sid, jid, 1, 'success')
sm.remove_job(sid, jid)
aid = am.create({'freezer_action': {'action': 'info'}})
out['action'] = am.get(aid)['freezer_action']
bm.delete(bid); jm.delete(jid); sm.delete(sid); am.delete(aid); cm.delete('interop_node1')
out['missing'] = jm.get(jid)
print(json.dumps(out))
`;

function haveFreezerClient(): boolean {
  try {
    execFileSync(PYTHON, ['-c', 'import freezerclient.v2.managers.jobs'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

if (!haveFreezerClient()) {
  console.log('  note: python-freezerclient is not installed: the freezerclient interop test is skipped');
  test.skip('python-freezerclient drives the floe API', () => undefined);
} else {
  test('python-freezerclient drives the floe API', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'floe-fc-'));
    const server = await startServer({ host: '127.0.0.1', port: 0, db: resolveDb(join(dir, 'api.db')), logLevel: 'silent' });
    try {
      const token = (await createToken(server.app.database.prisma, { projectId: 'interop', role: 'member' })).secret;
      const { stdout } = await promisify(execFile)(PYTHON, ['-c', SCRIPT], { env: { ...process.env, API: server.url, TOKEN: token }, timeout: 60_000 });
      const out = JSON.parse(stdout);
      assert.is(out.client, 'interop_node1');
      assert.equal(out.polled, [true]);
      assert.equal(out.start, { result: 'success' });
      assert.is(out.version, 3);
      assert.is(out.polled_after, 0);
      assert.is(out.backup_name, 'x');
      assert.is(out.found, 1);
      assert.equal(out.session_start, { result: 'success', session_tag: 1 });
      assert.equal(out.session_end, { result: 'success', session_tag: 1 });
      assert.equal(out.action, { action: 'info' });
      assert.is(out.missing, null);
    } finally {
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

test.run();
