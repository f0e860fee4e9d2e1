/**
 * Round trip through the CLI: back up a tree with every file type at levels 0..3 (changes, deletes,
 * renames, type changes between levels), then restore the latest state and the state at each level's
 * date into empty directories: each must be identical to the snapshot of the source taken at that level.
 *
 * One source tree is shared by every configuration (compression x encryption, --max-level wrap,
 * --always-level, --no-incremental, excludes): each round backs it up once per configuration, then the
 * tree is changed. Timestamps are whole seconds, so rounds are more than a second apart.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs/promises';
import { join } from 'node:path';
import { treeChecksum } from '../../engine/source/checksum.js';
import { GapKeeper, describe, listStored, localDate, mapLimit, removeDir, runFloe, sleep, tempDir, type RunResult } from '../helpers/peers.js';
import { compareTrees, createTree, mutate, snapshotTree, standardTree, withoutPaths, type TreeSnapshot } from '../helpers/tree.js';

const HOST = 'rt-host';
const ROUNDS = 4;
const PASSWORD = 'correct horse battery staple';

type Compression = 'gzip' | 'bzip2' | 'xz' | 'zstd' | 'none';
interface Config {
  name: string;
  compression: Compression;
  encrypt: boolean;
  extra: string[];
  /** The level each round's backup must get. */
  levels: number[];
  /** Paths the configuration leaves out (excludes). */
  drop?: (path: string) => boolean;
  /** Storage engine directory (default tar). */
  engine?: string;
}

const CONFIGS: Config[] = [
  ...(['gzip', 'bzip2', 'xz', 'zstd', 'none'] as Compression[]).flatMap((compression) => [false, true].map((encrypt) => ({
    name: `${compression}-${encrypt ? 'enc' : 'plain'}`,
    compression,
    encrypt,
    extra: [],
    levels: [0, 1, 2, 3],
  }))),
  // Freezer's --max-level: 0..N then a new chain.
  { name: 'max-level', compression: 'gzip', encrypt: false, extra: ['--max-level', '2'], levels: [0, 1, 2, 0] },
  // --always-level: 0..N, then N again (each one against N-1).
  { name: 'always-level', compression: 'gzip', encrypt: true, extra: ['--always-level', '2'], levels: [0, 1, 2, 2] },
  { name: 'no-incremental', compression: 'zstd', encrypt: false, extra: ['--no-incremental'], levels: [0, 0, 0, 0] },
  // the WASM AES kernel writes what OpenSSL reads: backups made with it restore with the native default
  { name: 'wasm-crypto', compression: 'zstd', encrypt: true, extra: ['--crypto-backend', 'wasm'], levels: [0, 1, 2, 3] },
  // the rsync engine (block deltas), through the same levels, changes and date restores as tar
  { name: 'rsync-gzip-enc', compression: 'gzip', encrypt: true, extra: ['--engine', 'rsync'], levels: [0, 1, 2, 3], engine: 'rsync' },
  { name: 'rsync-zstd-small-blocks', compression: 'zstd', encrypt: false, extra: ['--engine', 'rsync', '--rsync-block-size', '1024'], levels: [0, 1, 2, 3], engine: 'rsync' },
  { name: 'rsync-exclude', compression: 'none', encrypt: false, extra: ['--engine', 'rsync', '--exclude', '*.log', '--exclude', 'cache'], levels: [0, 1, 2, 3], engine: 'rsync',
    drop: (p) => p.split('/').some((c) => c === 'cache' || c.endsWith('.log')) },
  {
    name: 'exclude',
    compression: 'gzip',
    encrypt: false,
    extra: ['--exclude', '*.log', '--exclude', 'cache'],
    levels: [0, 1, 2, 3],
    drop: (p) => p.split('/').some((c) => c === 'cache' || c.endsWith('.log')),
  },
];

/** The changes made before round r (index r-1). Applied once to the shared source tree. */
const CHANGES: Array<(src: string) => Promise<void>> = [
  async (src) => {
    await mutate.change(src, 'README.txt', 'floe test tree, changed at level 1\n');
    await mutate.append(src, 'data/log.txt', 'appended line\n');
    await mutate.delete(src, 'empty.txt');
    await mutate.delete(src, 'links/dangling');
    await mutate.add(src, 'new/added.txt', 'added at level 1\n');
    await mutate.change(src, 'hard/original', 'hard-linked content changed\n');
    await fs.mkdir(join(src, 'new-empty-dir'));
    await mutate.add(src, 'cache/later.tmp', 'excluded\n');
  },
  async (src) => {
    await mutate.renameFile(src, 'data/random.bin', 'data/renamed.bin');
    await mutate.renameDir(src, 'data/nested', 'data/moved');
    await mutate.chmod(src, 'modes/private', 0o640);
    await mutate.chmod(src, 'modes/dir700', 0o711);
    await mutate.symlink(src, 'unicode/emoji 😀.txt', '../README.txt');
    await mutate.append(src, 'notes.log', 'excluded too\n');
  },
  async (src) => {
    await mutate.delete(src, 'nested');
    await mutate.delete(src, 'special/fifo');
    await mutate.delete(src, 'links/relative');
    await fs.mkdir(join(src, 'links/relative'));
    await mutate.add(src, 'links/relative/now-a-dir.txt', 'a symlink became a directory\n');
    await mutate.renameDir(src, 'unicode/日本語', 'unicode/日本語-renamed');
    const fh = await fs.open(join(src, 'data/big.bin'), 'r+');
    await fh.write(Buffer.alloc(1000, 0x5a), 0, 1000, 100_000); // same size, new bytes in the middle
    await fh.close();
  },
];

let root = '';
let src = '';
let passFile = '';
/** cwd: floe's working directory in this suite; a restore must write nothing there. */
let cwd = '';
const snapshots: TreeSnapshot[] = [];
/** Per configuration: the timestamp of each round's backup, or the failure that stopped it. */
const stamps = new Map<string, number[]>();
const failures = new Map<string, string>();

function storeOf(cfg: Config): string {
  return join(root, 'store', cfg.name);
}

function backupArgs(cfg: Config, path: string): string[] {
  return [
    'backup', '--path-to-backup', path, '--container', storeOf(cfg), '--backup-name', cfg.name, '--hostname', HOST,
    '--storage', 'local', '--compression', cfg.compression,
    ...(cfg.encrypt ? ['--encrypt-pass-file', passFile] : []), ...cfg.extra,
  ];
}

function restoreArgs(cfg: Config, dir: string, date?: string): string[] {
  return [
    'restore', '--restore-abs-path', dir, '--container', storeOf(cfg), '--backup-name', cfg.name, '--hostname', HOST,
    '--storage', 'local', ...(date ? ['--restore-from-date', date] : []), ...(cfg.encrypt ? ['--encrypt-pass-file', passFile] : []),
  ];
}

function assertOk(r: RunResult, what: string): void {
  assert.ok(r.code === 0, `${what} failed: ${describe(r)}`);
}

function assertSameTree(expected: TreeSnapshot, actual: TreeSnapshot, what: string): void {
  const diffs = compareTrees(expected, actual, { ignore: ['sparse'] });
  assert.ok(diffs.length === 0, `${what}: ${diffs.length} differences:\n  ${diffs.slice(0, 40).join('\n  ')}`);
}

test('setup: source tree with every file type', async () => {
  root = await tempDir('roundtrip');
  src = join(root, 'src');
  passFile = join(root, 'pass');
  cwd = join(root, 'cwd');
  await fs.mkdir(cwd);
  await fs.writeFile(passFile, `${PASSWORD}\n`);
  await createTree(src, {
    ...standardTree({ big: 512 * 1024, text: 256 * 1024 }),
    'cache/junk.tmp': { type: 'file', random: 64 * 1024, seed: 11 },
    'data/cache/inner.txt': 'excluded by name\n',
    'notes.log': 'excluded by pattern\n',
    'data/app.log': 'excluded by pattern too\n',
  });
});

test('backup: four rounds for every configuration', async () => {
  const gaps = new GapKeeper();
  for (let round = 0; round < ROUNDS; round++) {
    if (round > 0) {
      await sleep(1100); // changes must come after the previous backups' second
      await CHANGES[round - 1]!(src);
    }
    snapshots[round] = await snapshotTree(src);
    await mapLimit(CONFIGS, 2, async (cfg) => {
      if (failures.has(cfg.name)) return;
      await gaps.wait(cfg.name);
      const r = await runFloe(backupArgs(cfg, src), { cwd });
      gaps.done(cfg.name);
      const problem = r.code !== 0 ? `round ${round} backup failed: ${describe(r)}` : checkLayout(cfg, round);
      if (problem) failures.set(cfg.name, problem);
    });
  }
  const all = [...failures].map(([name, why]) => `${name}: ${why}`);
  assert.ok(all.length === 0, all.join('\n\n'));
});

/** checkLayout verifies the round's backup is visible with the expected level and chain; records T. */
function checkLayout(cfg: Config, round: number): string | undefined {
  const stored = listStored(storeOf(cfg), HOST, cfg.name, cfg.engine);
  if (stored.length !== round + 1) return `round ${round}: ${stored.length} backups visible, expected ${round + 1}`;
  const last = stored[stored.length - 1]!;
  const want = cfg.levels[round]!;
  if (last.level !== want) return `round ${round}: level ${last.level}, expected ${want}`;
  if (want === 0 && last.t0 !== last.t) return `round ${round}: level 0 with T0 ${last.t0} != T ${last.t}`;
  if (want > 0 && last.t0 !== stored[stored.length - 2]!.t0) return `round ${round}: level ${want} not in the previous chain`;
  const times = stamps.get(cfg.name) ?? [];
  times[round] = last.t;
  stamps.set(cfg.name, times);
  return undefined;
}

for (const cfg of CONFIGS) {
  test(`restore ${cfg.name}: latest and each level's date`, async () => {
    assert.ok(!failures.has(cfg.name), `no backups to restore: ${failures.get(cfg.name)}`);
    const times = stamps.get(cfg.name)!;
    const cases = [
      ...times.map((t, round) => ({ label: `round-${round}`, date: localDate(t), round })),
      { label: 'latest', date: undefined, round: ROUNDS - 1 },
    ];
    await mapLimit(cases, 2, async ({ label, date, round }) => {
      const dir = join(root, 'restore', cfg.name, label);
      await fs.mkdir(dir, { recursive: true });
      const r = await runFloe(restoreArgs(cfg, dir, date), { cwd });
      assertOk(r, `restore ${cfg.name} ${label}${date ? ` (--restore-from-date ${date})` : ''}`);
      const expected = cfg.drop ? withoutPaths(snapshots[round]!, cfg.drop) : snapshots[round]!;
      assertSameTree(expected, await snapshotTree(dir), `${cfg.name} ${label}`);
      await removeDir(dir);
    });
  });
}

test('single-file backup restores the file into the directory', async () => {
  const dir = join(root, 'single');
  await createTree(dir, { 'payload.bin': { type: 'file', random: 300 * 1024, seed: 21, mode: 0o640, mtime: 1_500_000_000 } });
  const cfg: Config = { name: 'single', compression: 'gzip', encrypt: true, extra: [], levels: [0] };
  assertOk(await runFloe(backupArgs(cfg, join(dir, 'payload.bin'))), 'single-file backup');
  const out = join(root, 'single-restored');
  await fs.mkdir(out);
  assertOk(await runFloe(restoreArgs(cfg, out)), 'single-file restore');
  const restored = await snapshotTree(out);
  assert.equal(Object.keys(restored), ['.', 'payload.bin']);
  const source = await snapshotTree(dir);
  assertSameTree({ 'payload.bin': source['payload.bin']! }, { 'payload.bin': restored['payload.bin']! }, 'single file');
});

test('sparse files stay sparse', async () => {
  const dir = join(root, 'sparse-src');
  await createTree(dir, { 'holes.img': { type: 'sparse', size: 8 * 1024 * 1024, data: [[0, 4096], [4 * 1024 * 1024, 4096]] } });
  const before = await snapshotTree(dir);
  assert.ok(before['holes.img']!.sparse, 'the file system here cannot make sparse files');
  const cfg: Config = { name: 'sparse', compression: 'gzip', encrypt: false, extra: [], levels: [0] };
  assertOk(await runFloe(backupArgs(cfg, dir)), 'backup');
  const out = join(root, 'sparse-restored');
  await fs.mkdir(out);
  assertOk(await runFloe(restoreArgs(cfg, out)), 'restore');
  assert.equal(compareTrees(before, await snapshotTree(out)), []);
});

test('--consistency-check: stored checksum is Freezer\'s, restore verifies it', async () => {
  const dir = join(root, 'consistency');
  // Freezer's checksum follows readdir order, which a restore only reproduces for sure when no directory
  // holds two files or two subdirectories: this tree is such.
  await createTree(dir, { 'tree/a.txt': 'a\n', 'tree/sub/b.bin': { type: 'file', random: 70_000, seed: 5 }, 'file.txt': 'single\n' });
  const cases = [
    { name: 'consistency-tree', path: join(dir, 'tree') },
    { name: 'consistency-file', path: join(dir, 'file.txt') },
  ];
  for (const { name, path } of cases) {
    const cfg: Config = { name, compression: 'gzip', encrypt: false, extra: [], levels: [0] };
    const metaOut = join(root, `${name}.json`);
    assertOk(await runFloe([...backupArgs(cfg, path), '--consistency-check', '--metadata-out', metaOut]), `${name} backup`);
    const doc = JSON.parse(await fs.readFile(metaOut, 'utf8')) as { consistency_checksum?: string };
    assert.is(doc.consistency_checksum, await treeChecksum(path), `${name}: consistency_checksum in --metadata-out`);
    const good = join(root, `${name}-good`);
    await fs.mkdir(good);
    assertOk(await runFloe([...restoreArgs(cfg, good), '--consistency-checksum', doc.consistency_checksum!]), `${name} restore with the right checksum`);
    const bad = join(root, `${name}-bad`);
    await fs.mkdir(bad);
    const wrong = '0'.repeat(64) + (doc.consistency_checksum!.slice(64));
    const r = await runFloe([...restoreArgs(cfg, bad), '--consistency-checksum', wrong]);
    assert.is(r.code, 9, `${name} restore with a wrong checksum must exit 9 (CHECKSUM_MISMATCH): ${describe(r)}`);
  }
});

test('restore --dry-run writes nothing', async () => {
  const cfg = CONFIGS[0]!;
  assert.ok(!failures.has(cfg.name), 'no backup to restore');
  const dir = join(root, 'dry-run');
  await fs.mkdir(dir);
  assertOk(await runFloe([...restoreArgs(cfg, dir), '--dry-run']), 'dry-run restore');
  assert.equal(await fs.readdir(dir), []);
});

test('backups and restores wrote nothing in their working directory', async () => {
  assert.equal(await fs.readdir(cwd), []);
});

test('cleanup', async () => {
  await removeDir(root);
});

test.run();
