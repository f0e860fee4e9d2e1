/**
 * The benchmark harness's own pieces (bench/): the dataset is deterministic, exact in size, reused,
 * mutated and put back; the measurement of a command reports CPU and memory and kills a tree on timeout;
 * the report's ratios and targets come out of the numbers. No peer is needed: a 4 MiB dataset and
 * `node -e` children.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { content, Kind, Rng } from '../../bench/content.js';
import { ensureDataset, formatSize, mutate, parseSize, planDataset, undoMutation } from '../../bench/dataset.js';
import { measure, treeStats } from '../../bench/measure.js';
import { addRatios, AUTO_REPEAT, CaseResult, evaluateTargets, renderMarkdown, Report, runsOf } from '../../bench/report.js';

const MiB = 1 << 20;
const root = mkdtempSync(join(tmpdir(), 'floe-bench-test-'));
test.after(() => rmSync(root, { recursive: true, force: true }));

function hashTree(tree: string, paths: string[]): string {
  const h = createHash('sha256');
  for (const p of paths) h.update(p).update(readFileSync(join(tree, p)));
  return h.digest('hex');
}

test('parseSize and formatSize', () => {
  assert.is(parseSize('64M'), 64 * MiB);
  assert.is(parseSize('1G'), 1024 * MiB);
  assert.is(parseSize('1.5GiB'), 1536 * MiB);
  assert.is(formatSize(4096 * MiB), '4G');
  assert.throws(() => parseSize('12 parsecs'));
  assert.throws(() => parseSize('1K'), /too small/);
});

test('content is deterministic, exact in length, and of its kind', () => {
  for (const kind of ['prose', 'log', 'json', 'csv', 'source', 'mixed', 'random'] as Kind[]) {
    const a = content(kind, 42, 100_003);
    assert.is(a.length, 100_003, kind);
    assert.ok(a.equals(content(kind, 42, 100_003)), `${kind}: same seed, same bytes`);
    assert.not.ok(a.equals(content(kind, 43, 100_003)), `${kind}: another seed, other bytes`);
  }
  assert.match(content('json', 1, 2000).toString('latin1'), /^\{"id":\d+,"name":"/);
  const r = new Rng(7);
  const xs = Array.from({ length: 1000 }, () => r.int(10));
  assert.ok(xs.every((x) => x >= 0 && x < 10) && new Set(xs).size === 10);
});

test('planDataset: exact size, all three classes, deterministic', () => {
  const plan = planDataset(3, 64 * MiB);
  assert.is(plan.files.reduce((s, f) => s + f.size, 0), 64 * MiB);
  const count = (c: string) => plan.files.filter((f) => f.sizeClass === c).length;
  assert.ok(count('small') > 500 && count('medium') > 5 && count('large') === 2, `${count('small')}/${count('medium')}/${count('large')}`);
  assert.equal(planDataset(3, 64 * MiB), plan);
  assert.is(new Set(plan.files.map((f) => f.path)).size, plan.files.length, 'unique paths');
});

test('ensureDataset generates, reuses, and mutate/undoMutation round-trip', async () => {
  const dir = join(root, 'ds');
  const ds = await ensureDataset({ dir, seed: 5, bytes: 4 * MiB });
  assert.not.ok(ds.reused);
  const stats = await treeStats(ds.tree);
  assert.equal(stats, { files: ds.files, bytes: 4 * MiB });
  const paths = planDataset(5, 4 * MiB).files.map((f) => f.path);
  const before = hashTree(ds.tree, paths);

  const changed = await mutate(dir, 0.01, 9);
  assert.ok(changed.files >= 3, 'at least one file of each class');
  assert.is.not(hashTree(ds.tree, paths), before);
  const mutated = hashTree(ds.tree, paths);
  await undoMutation(dir);
  assert.is(hashTree(ds.tree, paths), before, 'undo puts the seed\'s tree back');
  await mutate(dir, 0.01, 9);
  assert.is(hashTree(ds.tree, paths), mutated, 'the mutation is deterministic');

  const again = await ensureDataset({ dir, seed: 5, bytes: 4 * MiB });
  assert.ok(again.reused);
  assert.is(hashTree(ds.tree, paths), before, 'reuse undoes a left-over mutation');
});

test('ensureDataset refuses a non-empty directory it did not make', async () => {
  const dir = join(root, 'foreign');
  mkdirSync(dir);
  writeFileSync(join(dir, 'precious.txt'), 'keep me');
  await ensureDataset({ dir, seed: 1, bytes: 4 * MiB }).then(() => assert.unreachable('should refuse'), (e: Error) => assert.match(e.message, /refusing/));
  assert.is(readFileSync(join(dir, 'precious.txt'), 'utf8'), 'keep me');
});

test('measure: CPU and peak RSS of the child, and a timeout kills it', async () => {
  const m = await measure({ argv: [process.execPath, '-e', 'const b = Buffer.alloc(64 << 20, 1); let s = 0; for (let i = 0; i < b.length; i += 4096) s += b[i]; process.exit(s > 0 ? 0 : 1)'], timeoutS: 60 });
  assert.ok(m.ok, m.stderrTail);
  assert.ok(m.wallS > 0 && m.wallS < 30);
  if (m.peakRssBytes !== null) assert.ok(m.peakRssBytes > 64 * MiB, `peak RSS ${m.peakRssBytes}`);
  if (m.cpuS !== null) assert.ok(m.cpuS > 0);

  const failed = await measure({ argv: ['bash', '-c', 'echo oops >&2; exit 3'], timeoutS: 60 });
  assert.is(failed.ok, false);
  assert.is(failed.exitCode, 3);
  assert.match(failed.stderrTail, /oops/);

  const slow = await measure({ argv: ['bash', '-c', 'sleep 30 | cat'], timeoutS: 0.5 });
  assert.ok(slow.timedOut && !slow.ok);
  assert.ok(slow.wallS < 10, `killed quickly (${slow.wallS} s)`);
});

test('ratios and targets come from the numbers', () => {
  const c = (group: CaseResult['group'], name: string, tool: CaseResult['tool'], role: CaseResult['role'], encrypted: boolean, wallS: number, storedBytes: number | null = null): CaseResult => ({
    group, name, tool, role, compression: 'gzip', encrypted, status: 'ok', warnings: [], runs: [], wallS, storedBytes, peakRssBytes: 100e6,
  });
  const cases = [
    c('full', 'floe gzip enc', 'floe', 'floe', true, 10, 1000),
    c('full', 'freezer-agent gzip enc', 'freezer', 'peer', true, 40, 1000),
    c('full', 'tar -czf', 'tar', 'peer', false, 35),
    c('full', 'tar -cf - | cat > /dev/null', 'tar', 'baseline', false, 1),
    c('full', 'tar -cf - | dd oflag=direct', 'tar', 'baseline', false, 1.6, 1000),
    c('full', 'floe none', 'floe', 'floe', false, 1.5, 1000),
    c('level1', 'floe gzip enc', 'floe', 'floe', true, 2),
  ];
  const best = addRatios(cases);
  assert.is(best.full, 'tar -czf', 'baselines are not peers');
  assert.is(cases[0]!.vsFreezer, 4);
  assert.is(cases[0]!.vsBestPeer, 3.5);
  const report = { cases, dataset: { bytes: 1 << 30 } } as unknown as Report;
  const targets = evaluateTargets(report, []);
  const status = (prefix: string) => targets.find((t) => t.target.startsWith(prefix))?.status;
  assert.is(status('Full backup, gzip, encrypted: >= 1.8x'), 'PASS');
  assert.is(status('Full backup, gzip, encrypted: output'), 'PASS');
  assert.is(status('Level 1 (gzip'), 'FAIL'); // 2 s is 0.2x of 10 s
  assert.is(status('Level 1 (zstd'), 'n/a');
  assert.is(status('Peak RSS <= 300 MB'), 'PASS');
  const none = targets.find((t) => t.target.startsWith('Full backup, no compression'))!;
  assert.is(none.status, 'FAIL'); // 1.5 s is 0.67x of 1 s
  assert.is(none.detail, '0.67x (1.50 s vs 1.00 s; storing the stream durably, tar -cf - | dd oflag=direct: 1.60 s)');

  // RSS at 4x: compared with the other size's run of the same commit, else the latest one.
  const run = (commit: string, date: string, bytes: number, rss: number) => ({
    format: 1, date, floe: { commit, dirty: false }, dataset: { bytes },
    cases: [{ ...c('full', 'floe gzip', 'floe', 'floe', false, 1), peakRssBytes: rss }],
  }) as unknown as Report;
  const now = { ...report, date: '2026-11-27T02:00:00Z', floe: { commit: 'abc', dirty: false } } as Report;
  const detail = (prev: Report[]) => evaluateTargets(now, prev).find((t) => t.target.startsWith('Peak RSS at 4x'))!;
  const old = run('old', '2026-11-26T00:00:00Z', 1 << 28, 50e6);
  const later = run('other', '2026-11-27T01:00:00Z', 1 << 28, 95e6);
  const same = run('abc', '2026-11-26T12:00:00Z', 1 << 28, 92e6);
  assert.match(detail([old, later]).detail, /95 MB -> 100 MB \(other run: 2026-11-27T01:00:00Z/);
  assert.match(detail([old, same, later]).detail, /92 MB -> 100 MB \(other run: 2026-11-26T12:00:00Z/);
  assert.is(detail([old]).status, 'FAIL'); // 50 -> 100 MB
  assert.is(detail([]).status, 'n/a');
});

test('runs per case: short cases run three times by default, --repeat N always N', () => {
  assert.is(runsOf(AUTO_REPEAT, 0.6), 3);
  assert.is(runsOf(AUTO_REPEAT, 4.9), 3);
  assert.is(runsOf(AUTO_REPEAT, 44), 1, 'a long case runs once');
  assert.is(runsOf(1, 0.6), 1);
  assert.is(runsOf(5, 44), 5);

  const m = (wallS: number) => ({ wallS }) as CaseResult['runs'][number];
  const report = {
    date: '2026-11-27T07:00:00Z', durationS: 1,
    machine: { nproc: 2, cpu: 'x', memoryGiB: 24, node: 'v20', os: 'Linux', loadavg: [0, 0, 0] },
    floe: { commit: 'abc', dirty: false }, versions: {},
    dataset: { dir: '/d', seed: 1, bytes: 1 << 30, files: 3, incompressibleBytes: 0, classes: {}, generateS: 0, reused: true },
    mutation: null, options: { repeat: AUTO_REPEAT, only: null, timeoutS: 60 }, skipped: [], bestPeer: {}, targets: [],
    cases: [
      { group: 'full', name: 'tar -cf - | cat > /dev/null', tool: 'tar', role: 'baseline', compression: 'none', encrypted: false, status: 'ok', warnings: [], runs: [m(0.6), m(1.4), m(0.7)], wallS: 0.7 },
      { group: 'full', name: 'tar -czf', tool: 'tar', role: 'peer', compression: 'gzip', encrypted: false, status: 'ok', warnings: [], runs: [m(35)], wallS: 35 },
    ],
  } as unknown as Report;
  const md = renderMarkdown(report);
  assert.match(md, /median of 3 runs for a case whose first run took under 5 s, one run for the others/);
  assert.match(md, /\| tar -cf - \\\| cat > \/dev\/null +\| +3 \| +0\.70 \|/);
  assert.match(md, /\| tar -czf +\| +1 \| +35\.00 \|/);
  assert.match(renderMarkdown({ ...report, options: { ...report.options, repeat: 1 } }), /one run per case/);
});

test.run();
