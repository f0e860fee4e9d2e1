#!/usr/bin/env node
/**
 * Test runner: runs `uvu dist/test '.test.js$'` (unit, integration and interop suites, compiled by tsc)
 * as a child process, streams its output, then prints one summary line of its own,
 * `N passed, N failed, N skipped`, and exits non-zero if anything failed, if no test ran, or if uvu
 * ended without its summary (a suite that crashed on import).
 *
 * uvu counts: "Total" = tests that ran, "Passed" = those that passed, "Skipped" = test.skip'ed ones.
 * Failed = Total - Passed (a throwing `before` hook fails its tests without uvu setting its exit code,
 * so the counts, not the exit code alone, decide).
 *
 * Usage: node test/run.mjs [pattern]   (pattern: a regular expression on the file path, default .test.js$)
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const pattern = process.argv[2] ?? '.test.js$';
/** WATCHDOG_MS: CI allows 20 minutes for everything; the tests alone must never take more than 17. */
const WATCHDOG_MS = Number(process.env.FLOE_TEST_TIMEOUT_MS ?? 17 * 60 * 1000);

if (!existsSync(join(root, 'dist', 'test'))) {
  console.error('test/run.mjs: dist/test does not exist: run `npm run build` first (npm test does)');
  process.exit(1);
}

const uvuBin = join(root, 'node_modules', 'uvu', 'bin.js');
const colorArgs = process.stdout.isTTY ? [] : ['--no-color'];
const child = spawn(process.execPath, [uvuBin, 'dist/test', pattern, ...colorArgs], {
  cwd: root,
  stdio: ['ignore', 'pipe', 'inherit'],
});

let tail = '';
child.stdout.on('data', (chunk) => {
  process.stdout.write(chunk);
  tail = (tail + chunk.toString('utf8')).slice(-4096);
});

const watchdog = setTimeout(() => {
  console.error(`\ntest/run.mjs: tests still running after ${WATCHDOG_MS / 60000} minutes: killing them`);
  child.kill('SIGKILL');
}, WATCHDOG_MS);

child.on('close', (code, signal) => {
  clearTimeout(watchdog);
  const plain = tail.replace(/\x1b\[[0-9;]*m/g, '');
  const count = (label) => {
    const m = new RegExp(`^\\s*${label}:\\s+(\\d+)`, 'm').exec(plain);
    return m ? Number(m[1]) : undefined;
  };
  const total = count('Total');
  const passed = count('Passed');
  const skipped = count('Skipped') ?? 0;
  if (total === undefined || passed === undefined) {
    console.log(`0 passed, 1 failed, ${skipped} skipped`);
    console.error(`test/run.mjs: uvu ended (${signal ?? `exit ${code}`}) without a summary: a suite crashed`);
    process.exit(1);
  }
  const failed = Math.max(total - passed, code === 0 ? 0 : 1);
  console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`);
  if (failed > 0 || code !== 0) process.exit(1);
  if (passed === 0) {
    console.error('test/run.mjs: no test ran');
    process.exit(1);
  }
});
