/**
 * Actions as child processes (scheduler/agents.ts ProcessExecutor) with floe's own agent, and in-process
 * (InProcessExecutor): the result document and its byte counts, a failure's exit code and message, an
 * abort (SIGTERM: over in well under a second), and a child left running by a shutdown that the next
 * start collects instead of starting it again.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ABORT_REASON, SHUTDOWN_REASON } from '../../scheduler/runner.js';
import { InProcessExecutor, ProcessExecutor } from '../../scheduler/agents.js';
import type { ChildRecord } from '../../scheduler/store.js';
import { isAlive } from '../../scheduler/store.js';
import { silentLog } from '../../scheduler/log.js';
import { FLOE_BIN } from '../helpers/peers.js';
import { cleanupDirs, tempDir } from './helpers.js';

test.after.each(() => cleanupDirs());

const floeAgent = () => new ProcessExecutor([process.execPath, FLOE_BIN, 'agent']);

function req(dir: string, action: Record<string, unknown>, signal = new AbortController().signal) {
  return { jobId: 'j', runId: 'r', index: 0, attempt: 1, action, dir, signal };
}

function sourceTree(): { src: string; store: string } {
  const root = tempDir();
  const src = join(root, 'src');
  mkdirSync(src, { recursive: true });
  writeFileSync(join(src, 'a.txt'), 'x'.repeat(10_000));
  return { src, store: join(root, 'store') };
}

test('child process: floe agent backup; the result document and its bytes; the pid is reported', async () => {
  const { src, store } = sourceTree();
  let pid = 0;
  const dir = tempDir();
  const r = await floeAgent().run({
    ...req(dir, { action: 'backup', path_to_backup: src, backup_name: 'b', container: store, storage: 'local', hostname: 'h1' }),
    onStarted: (p: number) => { pid = p; },
  });
  assert.is(r.exitCode, 0, r.error);
  assert.ok(pid > 0);
  assert.is(r.document?.backup_name, 'b');
  assert.is(r.document?.hostname, 'h1');
  assert.is(r.bytesRead, 10_000);
  assert.ok((r.bytesStored ?? 0) > 0);
});

test('child process: a failing action gives its exit code and message; an abort stops it at once', async () => {
  const bad = await floeAgent().run(req(tempDir(), { action: 'backup', path_to_backup: '/nonexistent/x', backup_name: 'b', container: tempDir(), hostname: 'h' }));
  assert.is(bad.exitCode, 8, 'SOURCE');
  assert.match(bad.error ?? '', /cannot read path to back up/);
  const ac = new AbortController();
  const t0 = Date.now();
  const run = floeAgent().run(req(tempDir(), { action: 'exec', command: 'sleep 30' }, ac.signal));
  setTimeout(() => ac.abort(ABORT_REASON), 700);
  const r = await run;
  assert.ok(Date.now() - t0 < 5000, `aborted in ${Date.now() - t0} ms`);
  assert.ok(r.signalled);
  assert.ok(r.exitCode !== 0, `exit ${r.exitCode}`);
});

test('child process: a shutdown leaves the agent running; the next start collects its result, a vanished one is lost', async () => {
  const dir = tempDir();
  const ac = new AbortController();
  let child: ChildRecord | undefined;
  const first = floeAgent().run({
    ...req(dir, { action: 'exec', command: 'sleep 1' }, ac.signal),
    onStarted: (_p: number, c?: ChildRecord) => { child = c; ac.abort(SHUTDOWN_REASON); },
  });
  const r1 = await first;
  assert.ok(r1.signalled);
  assert.ok(child && isAlive(child.pid), 'still running after the shutdown');
  assert.not.ok(existsSync(join(dir, 'rc')));
  const r2 = await floeAgent().run({ ...req(dir, {}), resume: child });
  assert.is(r2.exitCode, 0, 'collected after it ended');
  assert.ok(existsSync(join(dir, 'rc')));
  const gone = await floeAgent().run({ ...req(tempDir(), {}), resume: { dir: tempDir(), pid: 999_999_999 } });
  assert.ok(gone.lost);
});

test('in-process: the engine\'s actions in this process, with the same results', async () => {
  const { src, store } = sourceTree();
  const ex = new InProcessExecutor(silentLog);
  const r = await ex.run(req(tempDir(), { action: 'backup', path_to_backup: src, backup_name: 'b', container: store, hostname: 'h2', sync: false }));
  assert.is(r.exitCode, 0, r.error);
  assert.is(r.document?.hostname, 'h2');
  assert.is(r.bytesRead, 10_000);
  const bad = await ex.run(req(tempDir(), { action: 'restore', backup_name: 'missing', container: store, hostname: 'h2', restore_abs_path: tempDir() }));
  assert.is(bad.exitCode, 3, bad.error);
});

test.run();
