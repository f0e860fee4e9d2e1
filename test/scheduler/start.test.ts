/**
 * `floe start` (npm start) as a process: the API with the UI in it, its scheduler as a child. When the
 * parent is killed outright (SIGKILL: no handler runs, nothing is passed on), the scheduler must not be
 * left behind polling a dead API: it stops by itself, logging as for a Ctrl-C.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { FLOE_BIN } from '../helpers/peers.js';
import { cleanupDirs, tempDir, waitFor } from './helpers.js';

test.after.each(() => cleanupDirs());

/** alive: the process exists and is not a zombie (an orphan's exit is reaped by whoever is pid 1, or never). */
function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z /s.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

/** childrenOf lists the pids whose parent is `pid` (Linux /proc). */
function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

test('floe start killed with SIGKILL: its scheduler stops too', async () => {
  const home = tempDir('floe-start-');
  const parent = spawn(process.execPath, [FLOE_BIN, 'start', '--home', home, '--port', '0', '--interval', '1'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  parent.stdout!.on('data', (b: Buffer) => { out += b.toString(); });
  parent.stderr!.on('data', (b: Buffer) => { out += b.toString(); });
  let scheduler: number | undefined;
  try {
    await waitFor(() => /registered client/.test(out), 30_000, 'the scheduler to register with the API');
    const children = childrenOf(parent.pid!);
    assert.is(children.length, 1, `one child (the scheduler): ${children.join(' ')}`);
    scheduler = children[0];
    parent.kill('SIGKILL');
    await waitFor(() => !alive(scheduler!), 15_000, 'the scheduler to stop after its parent was killed');
    assert.match(out, /INFO stopping[\s\S]*INFO stopped/);
  } finally {
    if (alive(parent.pid!)) parent.kill('SIGKILL');
    if (scheduler !== undefined && alive(scheduler)) process.kill(scheduler, 'SIGKILL');
  }
  assert.match(readFileSync(join(home, 'admin.token'), 'utf8'), /\S/);
});

test('a parent that dies while its floe child still loads: the child stops too', async () => {
  // The window the first test cannot reach: the parent exits right after spawning, before the child's
  // main() runs (Node has dropped the channel by then; main() must see it is disconnected).
  const dir = tempDir('floe-orphan-');
  const parent = spawn(process.execPath, ['-e', `
    const { spawn } = require('node:child_process');
    const c = spawn(process.execPath, [${JSON.stringify(FLOE_BIN)}, 'scheduler', 'start', '--no-daemon', '--no-api', '-f', ${JSON.stringify(dir)}, '-i', '1'],
      { stdio: ['ignore', 'ignore', 'ignore', 'ipc'] });
    process.stdout.write(String(c.pid));
    process.exit(0);
  `], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  parent.stdout!.on('data', (b: Buffer) => { out += b.toString(); });
  await new Promise((r) => parent.once('close', r));
  const child = Number(out);
  assert.ok(child > 0, `the child's pid: ${out}`);
  try {
    await waitFor(() => !alive(child), 15_000, 'the orphaned floe to stop');
  } finally {
    if (alive(child)) process.kill(child, 'SIGKILL');
  }
});

test.run();
