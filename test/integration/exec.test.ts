/**
 * `floe exec`: freezer-agent's exec action. A pipeline behaves as in a shell: a stage that stops reading
 * early (head) ends it without a hang or a stack trace; failures are one line with exit code 10. And the
 * commands floe runs do not inherit floe's own process tuning (engine/node-flags.ts).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { MALLOC_ENV, NODE_FLAGS } from '../../engine/node-flags.js';
import { FLOE_BIN, describe, run, runFloe } from '../helpers/peers.js';

const EXEC_FAILED = 10;

function oneLineError(stderr: string, what: string): void {
  assert.ok(/^floe: [^\n]+\n?$/.test(stderr), `${what}: stderr must be one "floe: " line, got:\n${stderr}`);
}

test('a pipeline runs, its stages joined by pipes', async () => {
  const r = await runFloe(['exec', '--command', 'echo hello | tr a-z A-Z']);
  assert.is(r.code, 0, describe(r));
  assert.is(r.stdout, 'HELLO\n');
});

test('a stage that stops reading early ends the pipeline: no hang, no stack trace', async () => {
  const r = await runFloe(['exec', '--command', 'yes | head -n 2'], { timeoutMs: 20_000 });
  assert.is(r.code, 0, describe(r));
  assert.is(r.stdout, 'y\ny\n');
  assert.not.match(r.stderr, /node:|\n\s+at /, 'no stack trace');
});

test('a failing or missing command: exit 10 and one line', async () => {
  let r = await runFloe(['exec', '--command', 'false']);
  assert.is(r.code, EXEC_FAILED, describe(r));
  oneLineError(r.stderr, 'false');
  r = await runFloe(['exec', '--command', 'no-such-command-floe-test']);
  assert.is(r.code, EXEC_FAILED, describe(r));
  oneLineError(r.stderr, 'missing command');
  r = await runFloe(['exec', '--command', 'printf abc | grep -c zzz']);
  assert.is(r.code, EXEC_FAILED, describe(r));
});

test('run as `floe` (its shebang), the commands it runs get none of its own tuning', async () => {
  const r = await run(FLOE_BIN, ['exec', '--command', 'env']);
  assert.is(r.code, 0, describe(r));
  assert.ok(r.stdout.includes('PATH='), 'env printed');
  assert.not.match(r.stdout, /MALLOC_MMAP_THRESHOLD_|MALLOC_TRIM_THRESHOLD_|FLOE_TUNED/);
});

test('bin/floe.js\'s shebang and `npm start` start node as engine/node-flags.ts says', () => {
  const shebang = readFileSync(FLOE_BIN, 'utf8').split('\n')[0]!;
  const start = (JSON.parse(readFileSync(join(dirname(FLOE_BIN), '..', 'package.json'), 'utf8')) as { scripts: { start: string } }).scripts.start;
  for (const line of [shebang, start]) {
    for (const [k, v] of Object.entries(MALLOC_ENV)) assert.ok(line.includes(`${k}=${v} `), `${k}=${v} in: ${line}`);
    for (const f of NODE_FLAGS) assert.ok(line.includes(` node ${f}`), `${f} in: ${line}`);
  }
  const unset = readFileSync(FLOE_BIN, 'utf8');
  for (const k of Object.keys(MALLOC_ENV)) assert.ok(unset.includes(`delete process.env.${k};`), `bin/floe.js removes ${k} for the commands it runs`);
});

test.run();
