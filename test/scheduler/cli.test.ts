/**
 * `floe scheduler start|status|reload|stop` as a user runs them: a daemon in the background (pid file,
 * log file), one per jobs directory, SIGHUP reload, stop; here with --no-api and a job file.
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { FLOE_BIN } from '../helpers/peers.js';
import { cleanupDirs, tempDir, waitFor } from './helpers.js';

test.after.each(() => cleanupDirs());

function floe(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [FLOE_BIN, 'scheduler', ...args], { timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

test('daemon: start, already running, status, reload, stop; the job ran; status says Not Running after', async () => {
  const dir = tempDir();
  const marker = join(dir, 'ran');
  writeFileSync(join(dir, 'touch.conf'), JSON.stringify({
    job_id: 'touch', job_schedule: { schedule_interval: '1 hours' },
    job_actions: [{ freezer_action: { action: 'exec', command: `touch ${marker}` } }],
  }));
  const common = ['-f', dir, '--no-api', '-i', '1', '--in-process'];
  const started = await floe(['start', ...common]);
  assert.is(started.code, 0, started.stderr);
  assert.match(started.stdout, /floe scheduler started, pid: \d+/);
  try {
    const again = await floe(['start', ...common]);
    assert.match(again.stdout, /already running/);
    await waitFor(() => existsSync(marker), 20_000, 'the job to run');
    const st = await floe(['status', '-f', dir]);
    assert.is(st.code, 0);
    assert.match(st.stdout, /Running with pid: \d+/);
    assert.match(st.stdout, /job touch: (scheduled|running)/);
    const json = JSON.parse((await floe(['status', '-f', dir, '--json'])).stdout) as { running: boolean; jobs: Array<{ job_id: string; history: unknown[] }> };
    assert.is(json.running, true);
    assert.is(json.jobs[0].job_id, 'touch');
    const reload = await floe(['reload', '-f', dir]);
    assert.is(reload.code, 0);
    const log = join(dir, '.floe', 'scheduler.log');
    await waitFor(() => readFileSync(log, 'utf8').includes('SIGHUP: reloading'), 10_000, 'the reload in the log');
  } finally {
    const stopped = await floe(['stop', '-f', dir]);
    assert.is(stopped.code, 0, stopped.stderr);
    assert.match(stopped.stdout, /stopped/);
  }
  const st = await floe(['status', '-f', dir]);
  assert.is(st.code, 3);
  assert.match(st.stdout, /Not Running/);
  assert.not.ok(existsSync(join(dir, '.floe', 'scheduler.pid')));
  assert.is((await floe(['stop', '-f', dir])).code, 3, 'nothing to stop');
  const usage = await floe(['bogus']);
  assert.is(usage.code, 2);
  assert.match(usage.stderr, /unknown scheduler command/);
  const noApi = await floe(['start', '--no-daemon', '-f', tempDir()]);
  assert.is(noApi.code, 2);
  assert.match(noApi.stderr, /needs --api URL/);
});

test.run();
