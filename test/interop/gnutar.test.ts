/**
 * floe's data is what Freezer's tar engine writes: OpenSSL `enc -aes-256-cfb` over a compressed GNU tar
 * listed-incremental stream. Here the real peers read it: `openssl enc -d | <decompressor> | tar
 * --incremental` must list the members of each level and extract levels 0 then 1 into the very trees the
 * source had at those levels (deleted files removed by the level-1 dumpdirs).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs/promises';
import { join } from 'node:path';
import { GapKeeper, describe, listStored, mapLimit, peerTest, removeDir, runFloe, shell, sleep, tempDir, type StoredBackup } from '../helpers/peers.js';
import { compareTrees, createTree, mutate, snapshotTree, standardTree, type TreeSnapshot } from '../helpers/tree.js';

const HOST = 'tar-host';
const PASSWORD = 'tar interop password';

interface Config {
  name: string;
  compression: 'gzip' | 'bzip2' | 'xz' | 'zstd' | 'none';
  encrypt: boolean;
}
const CONFIGS: Config[] = [
  { name: 'gzip-enc', compression: 'gzip', encrypt: true },
  { name: 'bzip2-plain', compression: 'bzip2', encrypt: false },
  { name: 'xz-enc', compression: 'xz', encrypt: true },
  { name: 'zstd-plain', compression: 'zstd', encrypt: false },
  { name: 'none-enc', compression: 'none', encrypt: true },
];
const DECOMPRESS: Record<Config['compression'], string> = {
  gzip: 'gzip -dc',
  bzip2: 'bzip2 -dc',
  xz: 'xz -dc',
  zstd: 'zstd -dcq',
  none: 'cat',
};

const it = peerTest(test, 'tar', 'openssl', 'gzip', 'bzip2', 'xz', 'zstd');
let root = '';
let src = '';
let passFile = '';
const snapshots: TreeSnapshot[] = [];
const failures: string[] = [];

function storeOf(cfg: Config): string {
  return join(root, 'store', cfg.name);
}

/** streamCommand: the shell pipeline that turns a stored `data` file back into a tar stream. */
function streamCommand(cfg: Config, data: string): string {
  const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  const decrypt = cfg.encrypt ? `openssl enc -d -aes-256-cfb -pass file:${q(passFile)} -in ${q(data)} 2>/dev/null` : `cat ${q(data)}`;
  return `${decrypt} | ${DECOMPRESS[cfg.compression]}`;
}

function levels(cfg: Config): StoredBackup[] {
  return listStored(storeOf(cfg), HOST, cfg.name);
}

/** members parses `tar --list` output into tree paths ('./a/' -> 'a', './' -> '.'). */
function members(listing: string): Set<string> {
  const out = new Set<string>();
  for (const line of listing.split('\n')) {
    if (line === '') continue;
    const p = line.replace(/^\.\//, '').replace(/\/$/, '');
    out.add(p === '' ? '.' : p);
  }
  return out;
}

it('floe backs up levels 0 and 1', async () => {
  root = await tempDir('gnutar');
  src = join(root, 'src');
  passFile = join(root, 'pass');
  await fs.writeFile(passFile, `${PASSWORD}\n`);
  await createTree(src, standardTree({ big: 384 * 1024, text: 128 * 1024 }));
  // Files changed in the second of a backup are sent again by the next level (timestamps are whole
  // seconds): start in a later second so that level 1 holds only what the changes touched.
  await sleep(1100);
  const gaps = new GapKeeper();
  for (let level = 0; level < 2; level++) {
    if (level === 1) {
      await sleep(1100);
      await mutate.change(src, 'README.txt', 'changed for level 1\n');
      await mutate.delete(src, 'empty.txt');
      await mutate.delete(src, 'links/dangling');
      await mutate.renameDir(src, 'data/nested', 'data/moved');
      await mutate.add(src, 'new/file.txt', 'new at level 1\n');
      await mutate.chmod(src, 'modes/private', 0o640);
    }
    snapshots[level] = await snapshotTree(src);
    await mapLimit(CONFIGS, 2, async (cfg) => {
      await gaps.wait(cfg.name);
      const r = await runFloe([
        'backup', '--path-to-backup', src, '--container', storeOf(cfg), '--backup-name', cfg.name, '--hostname', HOST,
        '--storage', 'local', '--compression', cfg.compression, ...(cfg.encrypt ? ['--encrypt-pass-file', passFile] : []),
      ]);
      gaps.done(cfg.name);
      if (r.code !== 0) failures.push(`${cfg.name} level ${level}: ${describe(r)}`);
    });
  }
  assert.ok(failures.length === 0, failures.join('\n\n'));
  for (const cfg of CONFIGS) assert.equal(levels(cfg).map((b) => b.level), [0, 1], `${cfg.name} levels`);
});

for (const cfg of CONFIGS) {
  it(`${cfg.name}: tar --list --incremental shows each level's members`, async () => {
    assert.ok(failures.length === 0, 'no backups');
    const [l0, l1] = levels(cfg);
    const list0 = await shell(`${streamCommand(cfg, join(l0!.dataDir, 'data'))} | tar --list --incremental --quoting-style=literal -f -`);
    assert.ok(list0.code === 0, `level 0 list: ${describe(list0)}`);
    const expected0 = new Set(Object.keys(snapshots[0]!));
    assert.equal([...members(list0.stdout)].sort(), [...expected0].sort(), 'level 0 has every entry');

    const list1 = await shell(`${streamCommand(cfg, join(l1!.dataDir, 'data'))} | tar --list --incremental --quoting-style=literal -f -`);
    assert.ok(list1.code === 0, `level 1 list: ${describe(list1)}`);
    const got1 = members(list1.stdout);
    for (const p of ['README.txt', 'new/file.txt', 'data/moved', 'modes/private']) assert.ok(got1.has(p), `level 1 lists ${p}`);
    for (const p of ['data/big.bin', 'data/log.txt', 'hard/original']) assert.not.ok(got1.has(p), `level 1 must not contain unchanged ${p}`);
    for (const p of got1) assert.ok(p in snapshots[1]!, `level 1 member ${p} is in the tree`);
  });

  it(`${cfg.name}: tar --incremental --extract of levels 0 then 1 gives the source trees`, async () => {
    assert.ok(failures.length === 0, 'no backups');
    const out = join(root, 'extract', cfg.name);
    await fs.mkdir(out, { recursive: true });
    const backups = levels(cfg);
    for (let level = 0; level < 2; level++) {
      // Freezer's restore command, with the decompressor as its own stage.
      const r = await shell(`${streamCommand(cfg, join(backups[level]!.dataDir, 'data'))} | tar --incremental --extract --ignore-zeros --warning=none --overwrite --directory '${out}' -f -`);
      assert.ok(r.code === 0, `extract level ${level}: ${describe(r)}`);
      const diffs = compareTrees(snapshots[level]!, await snapshotTree(out), { ignore: ['sparse'] });
      assert.ok(diffs.length === 0, `after level ${level}: ${diffs.length} differences:\n  ${diffs.slice(0, 40).join('\n  ')}`);
    }
    await removeDir(out);
  });
}

test('cleanup', async () => {
  if (root) await removeDir(root);
});

test.run();
