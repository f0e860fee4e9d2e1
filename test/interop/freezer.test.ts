/**
 * Interop with the real freezer-agent 13 (Debian's python3-freezer), both ways, on one shared tree:
 * - Freezer backs up levels 0 and 1 (gzip, bzip2, with and without encryption); floe restores the latest
 *   state and each level's date. Then floe adds level 2 to Freezer's chain (reading Freezer's clear
 *   engine_metadata), and both floe and Freezer restore that mixed chain.
 * - floe backs up levels 0 and 1 (same four variants); `freezer-agent --action restore` restores them
 *   (it needs only the data and the metadata file; floe's encrypted engine_metadata is not read).
 * - `--consistency-check`: Freezer's stored checksum equals floe's, for a tree and for a single file.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs/promises';
import { join } from 'node:path';
import { treeChecksum } from '../../engine/source/checksum.js';
import {
  GapKeeper, describe, listStored, localDate, mapLimit, peerTest, removeDir, runFloe, runFreezer, sleep, tempDir,
  type RunResult,
} from '../helpers/peers.js';
import { compareTrees, createTree, mutate, snapshotTree, standardTree, type TreeSnapshot } from '../helpers/tree.js';

const HOST = 'fz-host';
const PASSWORD = 'freezer interop password';

interface Variant {
  compression: 'gzip' | 'bzip2';
  encrypt: boolean;
}
const VARIANTS: Variant[] = [
  { compression: 'gzip', encrypt: false },
  { compression: 'gzip', encrypt: true },
  { compression: 'bzip2', encrypt: false },
  { compression: 'bzip2', encrypt: true },
];
const label = (v: Variant) => `${v.compression}-${v.encrypt ? 'enc' : 'plain'}`;

const it = peerTest(test, 'freezer-agent', 'tar', 'openssl', 'gzip', 'bzip2');
let root = '';
let src = '';
let passFile = '';
let logFile = '';
/** cwd: floe's working directory in this suite; floe must write nothing there. */
let cwd = '';
const snapshots: TreeSnapshot[] = [];
const failures: string[] = [];
const checksums: Record<string, string> = {};

type Writer = 'freezer' | 'floe';
const storeOf = (writer: Writer, v: Variant) => join(root, 'store', `${writer}-${label(v)}`);
const nameOf = (writer: Writer, v: Variant) => `by-${writer}-${label(v)}`;

function common(writer: Writer, v: Variant): string[] {
  return [
    '--container', storeOf(writer, v), '--backup-name', nameOf(writer, v), '--hostname', HOST, '--storage', 'local',
    ...(v.encrypt ? ['--encrypt-pass-file', passFile] : []),
  ];
}

function freezerBackup(v: Variant, extra: string[] = []): Promise<RunResult> {
  return runFreezer(['--action', 'backup', '--path-to-backup', src, '--compression', v.compression, '--log-file', logFile, ...common('freezer', v), ...extra]);
}

function floeBackup(writer: Writer, v: Variant, extra: string[] = []): Promise<RunResult> {
  return runFloe(['backup', '--path-to-backup', src, '--compression', v.compression, ...common(writer, v), ...extra], { cwd });
}

function floeRestore(writer: Writer, v: Variant, dir: string, date?: string): Promise<RunResult> {
  return runFloe(['restore', '--restore-abs-path', dir, ...common(writer, v), ...(date ? ['--restore-from-date', date] : [])], { cwd });
}

function freezerRestore(writer: Writer, v: Variant, dir: string, date?: string): Promise<RunResult> {
  return runFreezer(['--action', 'restore', '--restore-abs-path', dir, '--log-file', logFile, ...common(writer, v), ...(date ? ['--restore-from-date', date] : [])]);
}

function assertSameTree(expected: TreeSnapshot, dir: string, what: string): Promise<void> {
  return snapshotTree(dir).then((actual) => {
    const diffs = compareTrees(expected, actual, { ignore: ['sparse'] });
    assert.ok(diffs.length === 0, `${what}: ${diffs.length} differences:\n  ${diffs.slice(0, 40).join('\n  ')}`);
  });
}

async function readChecksum(file: string): Promise<string> {
  const doc = JSON.parse(await fs.readFile(file, 'utf8')) as { consistency_checksum?: string };
  return doc.consistency_checksum ?? '';
}

/** restoreCases: restore the latest state and the state at each backup's date, and compare. */
async function restoreCases(writer: Writer, v: Variant, by: 'floe' | 'freezer', rounds: number[]): Promise<void> {
  const stored = listStored(storeOf(writer, v), HOST, nameOf(writer, v));
  assert.ok(stored.length >= rounds.length, `${writer} ${label(v)}: ${stored.length} backups stored`);
  const cases = [
    ...rounds.map((round) => ({ tag: `level-${round}`, date: localDate(stored[round]!.t), round })),
    { tag: 'latest', date: undefined, round: rounds[rounds.length - 1]! },
  ];
  await mapLimit(cases, 2, async ({ tag, date, round }) => {
    const dir = join(root, 'restore', `${by}-from-${writer}-${label(v)}-${tag}`);
    await fs.mkdir(dir, { recursive: true });
    const r = by === 'floe' ? await floeRestore(writer, v, dir, date) : await freezerRestore(writer, v, dir, date);
    assert.ok(r.code === 0, `${by} restore of ${writer}'s ${label(v)} ${tag}: ${describe(r)}`);
    await assertSameTree(snapshots[round]!, dir, `${by} restore of ${writer}'s ${label(v)} ${tag}`);
    await removeDir(dir);
  });
}

it('Freezer and floe back up levels 0 and 1 of the same tree', async () => {
  root = await tempDir('freezer');
  src = join(root, 'src');
  passFile = join(root, 'pass');
  logFile = join(root, 'freezer.log');
  cwd = join(root, 'cwd');
  await fs.mkdir(cwd);
  await fs.writeFile(passFile, `${PASSWORD}\n`);
  await createTree(src, standardTree({ big: 384 * 1024, text: 128 * 1024 }));
  // Files changed in the second of a backup are sent again by the next level (timestamps are whole
  // seconds): start in a later second so that level 1 holds only what the changes touched.
  await sleep(1100);
  const gaps = new GapKeeper();
  for (let round = 0; round < 2; round++) {
    if (round === 1) {
      await sleep(1100);
      await mutate.change(src, 'README.txt', 'changed for level 1\n');
      await mutate.append(src, 'data/log.txt', 'one more line\n');
      await mutate.delete(src, 'empty.txt');
      await mutate.delete(src, 'links/dangling');
      await mutate.renameFile(src, 'data/random.bin', 'data/renamed.bin');
      await mutate.renameDir(src, 'data/nested', 'data/moved');
      await mutate.add(src, 'new/file.txt', 'new at level 1\n');
      await mutate.chmod(src, 'modes/private', 0o640);
    }
    snapshots[round] = await snapshotTree(src);
    const jobs = VARIANTS.flatMap((v) => (['freezer', 'floe'] as Writer[]).map((writer) => ({ v, writer })));
    await mapLimit(jobs, 2, async ({ v, writer }) => {
      const key = `${writer}-${label(v)}`;
      await gaps.wait(key);
      // Round 0 of the plain gzip variant also records the consistency checksum.
      const metaOut = join(root, `${key}-${round}.json`);
      const extra = round === 0 && !v.encrypt && v.compression === 'gzip' ? ['--consistency-check', '--metadata-out', metaOut] : [];
      const r = writer === 'freezer' ? await freezerBackup(v, extra) : await floeBackup('floe', v, extra);
      gaps.done(key);
      if (r.code !== 0) failures.push(`${writer} backup ${label(v)} round ${round}: ${describe(r)}`);
      else if (extra.length > 0) checksums[writer] = await readChecksum(metaOut);
    });
  }
  assert.ok(failures.length === 0, failures.join('\n\n'));
  for (const v of VARIANTS) {
    for (const writer of ['freezer', 'floe'] as Writer[]) {
      assert.equal(listStored(storeOf(writer, v), HOST, nameOf(writer, v)).map((b) => b.level), [0, 1], `${writer} ${label(v)} levels`);
    }
  }
});

for (const v of VARIANTS) {
  it(`floe restores Freezer's ${label(v)} backups (latest and each level)`, async () => {
    assert.ok(failures.length === 0, 'no backups');
    await restoreCases('freezer', v, 'floe', [0, 1]);
  });
}

for (const v of VARIANTS) {
  it(`freezer-agent restores floe's ${label(v)} backups (latest and each level)`, async () => {
    assert.ok(failures.length === 0, 'no backups');
    await restoreCases('floe', v, 'freezer', [0, 1]);
  });
}

it('floe continues Freezer\'s chains at level 2; floe and Freezer restore the mixed chain', async () => {
  assert.ok(failures.length === 0, 'no backups');
  await sleep(1100);
  await mutate.change(src, 'new/file.txt', 'changed for level 2\n');
  await mutate.delete(src, 'data/moved');
  await mutate.add(src, 'level2.txt', 'added at level 2\n');
  snapshots[2] = await snapshotTree(src);
  await mapLimit(VARIANTS, 2, async (v) => {
    const r = await floeBackup('freezer', v);
    assert.ok(r.code === 0, `floe level 2 on Freezer's ${label(v)} chain: ${describe(r)}`);
    const stored = listStored(storeOf('freezer', v), HOST, nameOf('freezer', v));
    assert.equal(stored.map((b) => b.level), [0, 1, 2], `${label(v)}: floe's backup is level 2 of Freezer's chain`);
    assert.is(stored[2]!.t0, stored[0]!.t0);
  });
  for (const v of VARIANTS) {
    for (const by of ['floe', 'freezer'] as const) {
      const dir = join(root, 'restore', `mixed-${by}-${label(v)}`);
      await fs.mkdir(dir, { recursive: true });
      const r = by === 'floe' ? await floeRestore('freezer', v, dir) : await freezerRestore('freezer', v, dir);
      assert.ok(r.code === 0, `${by} restore of the mixed ${label(v)} chain: ${describe(r)}`);
      await assertSameTree(snapshots[2]!, dir, `${by} restore of the mixed ${label(v)} chain`);
      await removeDir(dir);
    }
  }
});

it('--consistency-check: Freezer\'s and floe\'s checksums are equal', () => {
  assert.ok(checksums.freezer && checksums.floe, `checksums recorded: ${JSON.stringify(checksums)}`);
  assert.is(checksums.floe, checksums.freezer, 'tree checksum in --metadata-out');
});

it('floe restore verifies the checksum Freezer stored', async () => {
  // Freezer's checksum follows readdir order, which a restore only reproduces for sure when no directory
  // holds two files or two subdirectories: this tree is such.
  const tiny = join(root, 'tiny');
  await createTree(tiny, { 'top.txt': 'top\n', 'sub/inner.bin': { type: 'file', random: 50_000, seed: 6 }, 'sub/deeper/leaf': 'leaf\n' });
  const container = join(root, 'store', 'tiny');
  const metaOut = join(root, 'tiny.json');
  const fz = await runFreezer([
    '--action', 'backup', '--path-to-backup', tiny, '--container', container, '--backup-name', 'tiny', '--hostname', HOST,
    '--storage', 'local', '--log-file', logFile, '--consistency-check', '--metadata-out', metaOut,
  ]);
  assert.ok(fz.code === 0, `freezer backup: ${describe(fz)}`);
  const expected = await readChecksum(metaOut);
  assert.is(await treeChecksum(tiny), expected);
  const restore = (dir: string, sum: string) => runFloe([
    'restore', '--restore-abs-path', dir, '--container', container, '--backup-name', 'tiny', '--hostname', HOST,
    '--storage', 'local', '--consistency-checksum', sum,
  ]);
  const good = join(root, 'restore', 'tiny-good');
  await fs.mkdir(good, { recursive: true });
  const ok = await restore(good, expected);
  assert.ok(ok.code === 0, `floe restore verifying Freezer's checksum: ${describe(ok)}`);
  const bad = join(root, 'restore', 'tiny-bad');
  await fs.mkdir(bad, { recursive: true });
  const mismatch = await restore(bad, 'f'.repeat(64));
  assert.is(mismatch.code, 9, `a wrong checksum must exit 9: ${describe(mismatch)}`);
});

it('--consistency-check of a single file: Freezer\'s and floe\'s checksums are equal', async () => {
  const file = join(root, 'single', 'payload.bin');
  await createTree(join(root, 'single'), { 'payload.bin': { type: 'file', random: 100_000, seed: 4 } });
  const v = VARIANTS[0]!;
  const fzOut = join(root, 'single-freezer.json');
  const flOut = join(root, 'single-floe.json');
  const fz = await runFreezer([
    '--action', 'backup', '--path-to-backup', file, '--container', join(root, 'store', 'single-fz'), '--backup-name', 'single',
    '--hostname', HOST, '--storage', 'local', '--log-file', logFile, '--consistency-check', '--metadata-out', fzOut,
  ]);
  assert.ok(fz.code === 0, `freezer single-file backup: ${describe(fz)}`);
  const fl = await runFloe([
    'backup', '--path-to-backup', file, '--container', join(root, 'store', 'single-floe'), '--backup-name', 'single',
    '--hostname', HOST, '--storage', 'local', '--compression', v.compression, '--consistency-check', '--metadata-out', flOut,
  ]);
  assert.ok(fl.code === 0, `floe single-file backup: ${describe(fl)}`);
  const expected = await readChecksum(fzOut);
  assert.ok(expected.endsWith('payload.bin'), expected);
  assert.is(await readChecksum(flOut), expected);
  assert.is(await treeChecksum(file), expected);
});

it('floe wrote nothing in its working directory (GNU tar rename records included)', async () => {
  assert.equal(await fs.readdir(cwd), []);
});

test('cleanup', async () => {
  if (root) await removeDir(root);
});

test.run();
