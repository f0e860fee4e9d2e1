/**
 * The real freezer-agent (Debian's python3-freezer 13) driven by `floe scheduler --agent-command`:
 * Freezer's own contract (`freezer-agent --config action.ini --metadata-out -`), a backup then a restore
 * of it, the agent's result document posted to the API with the job id and run metrics.
 * Skipped when freezer-agent is missing; fails under CI=true (CI installs it).
 */
import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { FLOE_BIN, FREEZER_ENV, peerTest } from '../helpers/peers.js';
import { FakeFreezerApi } from './fake-api.js';
import { cleanupDirs, tempDir, waitFor } from './helpers.js';

const freezer = suite('scheduler with freezer-agent');
const test = peerTest(freezer, 'freezer-agent');
freezer.after(() => cleanupDirs());

test('a job of two freezer-agent actions (backup, restore) runs through --agent-command', async () => {
  const root = tempDir();
  const src = join(root, 'src');
  mkdirSync(join(src, 'sub'), { recursive: true });
  writeFileSync(join(src, 'a.txt'), 'freezer agent data\n');
  writeFileSync(join(src, 'sub', 'b.bin'), Buffer.alloc(20_000, 7));
  const store = join(root, 'store');
  const out = join(root, 'restored');
  const api = new FakeFreezerApi();
  const where = { backup_name: 'fz', container: store, storage: 'local', hostname: 'hf' };
  api.addJob({
    job_id: 'fz-1', client_id: 'proj_fz', job_schedule: {},
    job_actions: [
      { freezer_action: { action: 'backup', mode: 'fs', path_to_backup: src, compression: 'gzip', ...where }, max_retries: 0 },
      { freezer_action: { action: 'restore', restore_abs_path: out, ...where }, max_retries: 0 },
    ],
  });
  const srv = await api.serve();
  const jobs = join(root, 'jobs');
  mkdirSync(jobs);
  const tokenFile = join(root, 'token');
  writeFileSync(tokenFile, `${api.token}\n`, { mode: 0o600 });
  const log = join(root, 'scheduler.log');
  const fd = openSync(log, 'a');
  const child = spawn(process.execPath, [
    FLOE_BIN, 'scheduler', 'start', '--no-daemon', '-f', jobs, '-i', '1', '--api', srv.url, '--project', 'proj',
    '--client-id', 'proj_fz', '--token-file', tokenFile, '--agent-command', 'timeout 120 freezer-agent',
  ], { stdio: ['ignore', fd, fd], env: { ...process.env, ...FREEZER_ENV } });
  closeSync(fd);
  const exited = new Promise((r) => child.once('exit', r));
  try {
    await waitFor(() => api.schedule('fz-1').status === 'completed', 90_000, 'the job to complete', 200);
    assert.is(api.schedule('fz-1').result, 'success', readFileSync(log, 'utf8'));
    assert.ok((api.clients.get('proj_fz')?.supported_modes as string[]).includes('mysql'), 'Freezer\'s capabilities for another agent');
    assert.is(api.backups.length, 1, 'restore prints no document; backup does');
    const doc = api.backups[0].backup_metadata as Record<string, unknown>;
    assert.equal([doc.backup_name, doc.hostname, doc.container, doc.job_id], ['fz', 'hf', store, 'fz-1']);
    assert.is((doc.run_metrics as Record<string, unknown>).exit_code, 0);
    assert.is(readFileSync(join(out, 'a.txt'), 'utf8'), 'freezer agent data\n');
    assert.equal(readFileSync(join(out, 'sub', 'b.bin')), Buffer.alloc(20_000, 7));
    assert.equal(readdirSync(out).sort(), ['a.txt', 'sub']);
  } finally {
    child.kill('SIGTERM');
    await exited;
    await srv.close();
  }
});

freezer.run();
