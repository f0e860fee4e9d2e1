/**
 * The tar writer against the real GNU tar 1.34: floe's levels must list and restore with
 * `tar --incremental --extract` (Freezer's restore) level after level, floe's snapshot must feed real
 * `tar --listed-incremental` and the other way round, and a level 0 must be the bytes tar writes.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { appendFileSync, createReadStream, truncateSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { SourceError } from '../../engine/errors.js';
import { createTarBackup, estimateTree, type TarBackupOptions } from '../../engine/archive/tar/writer.js';
import { extractTar } from '../../engine/archive/tar/extract.js';
import { decodeHeader, padding } from '../../engine/archive/tar/header.js';
import {
  compareTrees, createTree, isRoot, mutate, snapshotTree, standardTree, withoutPaths, type TreeSpec,
} from '../helpers/tree.js';
import { describe, removeDir, run, sleep, tempDir } from '../helpers/peers.js';

interface Level {
  file: string;
  snapshot: Buffer;
  stats: { files: number; dirs: number; bytes: number; warnings: number };
  warnings: string[];
  chunks: number[];
}

let levelNo = 0;

/** backup runs createTarBackup and writes the archive to `<work>/level-<n>.tar`. */
async function backup(work: string, root: string, opts: Partial<TarBackupOptions> = {}): Promise<Level> {
  const warnings: string[] = [];
  const b = createTarBackup({ root, exclude: [], dereference: 'none', ...opts, progress: { onWarning: (m) => warnings.push(m) } });
  const file = join(work, `level-${levelNo++}.tar`);
  const fh = await fs.open(file, 'w');
  const chunks: number[] = [];
  try {
    for await (const c of b.stream) {
      chunks.push(c.length);
      await fh.write(c);
    }
  } finally {
    await fh.close();
  }
  return { file, snapshot: b.snapshot(), stats: b.stats(), warnings, chunks };
}

/** restore extracts one level exactly as Freezer's tar engine does. */
async function restore(level: Level, target: string): Promise<void> {
  await fs.mkdir(target, { recursive: true });
  const r = await run('tar', ['--incremental', '--extract', '--ignore-zeros', '--warning=none', '--overwrite',
    '--same-owner', '--preserve-permissions', '--directory', target, '-f', level.file]);
  assert.is(r.code, 0, describe(r));
}

/** listing is `tar --list --incremental -v` (-vv: with dumpdirs) of a level (fails the test if tar rejects the archive). */
async function listing(level: Level, verbose = '-v'): Promise<string> {
  const r = await run('tar', ['--list', '--incremental', verbose, '-f', level.file]);
  assert.is(r.code, 0, describe(r));
  return r.stdout;
}

/** members lists member names and types by decoding the archive's headers. */
async function members(file: string): Promise<Array<{ name: string; type: string; size: number }>> {
  const buf = await fs.readFile(file);
  const out: Array<{ name: string; type: string; size: number }> = [];
  let longName: string | null = null;
  for (let off = 0; off < buf.length;) {
    const h = decodeHeader(buf.subarray(off, off + 512));
    off += 512;
    if (!h) continue;
    if (h.type === 'L') {
      longName = buf.toString('utf8', off, off + h.size - 1);
    } else {
      out.push({ name: longName ?? h.name, type: h.type, size: h.size });
      longName = null;
    }
    if (h.type === 'S') for (let ext = buf[off - 512 + 482]; ext; off += 512) ext = buf[off + 504];
    if (!['1', '2', '3', '4', '6'].includes(h.type)) off += h.size + padding(h.size);
  }
  return out;
}

/** rejection awaits `p` and returns what it rejected with (fails the test if it resolved). */
async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  assert.unreachable('expected a rejection');
  return undefined;
}

async function expectSame(src: string, restored: string, drop: (p: string) => boolean = () => false): Promise<void> {
  const diffs = compareTrees(withoutPaths(await snapshotTree(src), drop), await snapshotTree(restored));
  assert.equal(diffs, [], diffs.join('\n'));
}

/** The standard tree plus files the tests exclude. */
function tree(): TreeSpec {
  return { ...standardTree({ big: 3 * 1024 * 1024 }), 'skip.o': 'excluded\n', 'data/also.o': 'excluded\n' };
}
const isExcluded = (p: string) => p.endsWith('.o');

test('levels 0 and 1 restore with GNU tar: content, modes, owners, links, renames, deletions, sparse', async () => {
  const work = await tempDir('tarw');
  try {
    const src = join(work, 'src');
    await createTree(src, tree());
    await sleep(1100); // let the tree's ctimes fall before level 0's snapshot time (start - 1 s)
    const l0 = await backup(work, src, { exclude: ['*.o'] });
    assert.equal(l0.warnings, []);
    const list0 = await listing(l0);
    assert.match(list0, './data/big.bin');
    assert.not.match(list0, 'skip.o');
    const m0 = await members(l0.file);
    assert.is(m0.find((m) => m.name === './sparse/holes.img')?.type, 'S', 'holes make an S member');
    assert.is(m0.find((m) => m.name === './hard/second' || m.name === './hard/sub/third')?.type, '1');
    assert.ok(m0.some((m) => m.name.length > 300), 'long names survive');
    assert.equal(l0.stats.warnings, 0);
    assert.ok(l0.stats.dirs > 10 && l0.stats.files > 20 && l0.stats.bytes > 3 * 1024 * 1024);

    const out = join(work, 'restored');
    await restore(l0, out);
    await expectSame(src, out, isExcluded);

    await mutate.change(src, 'README.txt', 'changed content\n');
    await mutate.delete(src, 'unicode/emoji 😀.txt');
    await mutate.renameFile(src, 'data/log.txt', 'data/log-renamed.txt');
    await mutate.renameDir(src, 'data/nested', 'data/moved');
    await mutate.add(src, 'new/dir/file.txt', 'new\n');
    await mutate.chmod(src, 'modes/private', 0o640);
    await mutate.symlink(src, 'links/relative', 'empty.txt');
    await mutate.delete(src, 'nested/empty');
    const l1 = await backup(work, src, { exclude: ['*.o'], previous: l0.snapshot });
    const names1 = (await members(l1.file)).map((m) => m.name);
    assert.ok(names1.includes('./README.txt'));
    assert.ok(names1.includes('./modes/private'), 'a chmod (ctime) is a change');
    assert.ok(names1.includes('./data/moved/deep/leaf.txt'), 'a renamed directory is dumped whole');
    assert.not.ok(names1.includes('./data/big.bin'), 'unchanged files are not dumped again');
    assert.not.ok(names1.includes('./sparse/holes.img'));
    assert.match(await listing(l1, '-vv'), /\nN big\.bin\n/);
    await restore(l1, out);
    await expectSame(src, out, isExcluded);
  } finally {
    await removeDir(work);
  }
});

test("real tar takes floe's snapshot for its next level, and floe takes tar's", async () => {
  const work = await tempDir('tarw');
  try {
    const src = join(work, 'src');
    await createTree(src, standardTree({ big: 256 * 1024 }));
    await sleep(1100);
    const l0 = await backup(work, src);
    const snapCopy = join(work, 'snap-floe');
    await fs.writeFile(snapCopy, l0.snapshot);
    await mutate.add(src, 'later.txt', 'later\n');
    await mutate.delete(src, 'README.txt');
    const tarL1 = join(work, 'tar-l1.tar');
    let r = await run('tar', ['--create', `--listed-incremental=${snapCopy}`, '--one-file-system', '--no-check-device',
      '-C', src, '-f', tarL1, '.']);
    assert.is(r.code, 0, describe(r));
    const tarNames = (await members(tarL1)).map((m) => m.name);
    assert.ok(tarNames.includes('./later.txt'));
    assert.not.ok(tarNames.includes('./data/big.bin'), "tar understood floe's snapshot: no full re-dump");
    const out = join(work, 'out');
    await restore(l0, out);
    await restore({ ...l0, file: tarL1 }, out);
    await expectSame(src, out);

    // tar's snapshot (now level 1, after tar rewrote it) as floe's previous level.
    await mutate.change(src, 'data/random.bin', 'now small\n');
    await mutate.renameFile(src, 'later.txt', 'renamed.txt');
    const l2 = await backup(work, src, { previous: await fs.readFile(snapCopy) });
    const names2 = (await members(l2.file)).map((m) => m.name);
    assert.ok(names2.includes('./data/random.bin') && names2.includes('./renamed.txt'));
    assert.not.ok(names2.includes('./data/big.bin'));
    await restore(l2, out);
    await expectSame(src, out);
  } finally {
    await removeDir(work);
  }
});

/** masked hides what legitimately differs between two runs: atime (reading updates it) and the checksum. */
function masked(buf: Buffer): Buffer {
  const b = Buffer.from(buf);
  for (let off = 0; off < b.length;) {
    const h = decodeHeader(b.subarray(off, off + 512));
    if (h) {
      b.fill(0, off + 148, off + 156);
      b.fill(0, off + 345, off + 357);
    }
    off += 512 + (h && !['1', '2', '3', '4', '6'].includes(h.type) ? h.size + padding(h.size) : 0);
  }
  return b;
}

test('a level 0 is byte-identical to GNU tar --listed-incremental (atime aside), and so is its snapshot', async () => {
  const work = await tempDir('tarw');
  try {
    const src = join(work, 'src');
    // No sparse file: Freezer's tar runs without --sparse, floe keeps holes ('S'), by design.
    const spec = tree();
    delete spec['sparse/holes.img'];
    await createTree(src, spec);
    const snap = join(work, 'snap');
    const tarFile = join(work, 'tar.tar');
    const r = await run('tar', ['--create', `--listed-incremental=${snap}`, '--one-file-system', '--no-check-device',
      '--preserve-permissions', '--same-owner', '--ignore-failed-read', '--exclude=*.o', '-C', src, '-f', tarFile, '.']);
    assert.is(r.code, 0, describe(r));
    const l0 = await backup(work, src, { exclude: ['*.o'] });
    const ours = masked(await fs.readFile(l0.file));
    const theirs = masked(await fs.readFile(tarFile));
    assert.is(ours.length, theirs.length);
    const at = ours.findIndex((x, i) => x !== theirs[i]);
    assert.is(at, -1, `first difference at byte ${at}`);
    // Same directory records; tar writes them in hash order and its own start time.
    const records = (b: Buffer) => b.toString('latin1').split('\n')[1].split('\0\0\0').slice(0, -1)
      .map((rec, i) => (i === 0 ? rec.split('\0').slice(2).join('\0') : rec)).sort();
    assert.equal(records(l0.snapshot), records(await fs.readFile(snap)));
  } finally {
    await removeDir(work);
  }
});

test("floe's own extractor restores floe's levels too", async () => {
  const work = await tempDir('tarw');
  try {
    const src = join(work, 'src');
    await createTree(src, standardTree({ big: 512 * 1024 }));
    const l0 = await backup(work, src);
    await mutate.renameDir(src, 'data/nested', 'data/moved');
    await mutate.delete(src, 'README.txt');
    await mutate.add(src, 'added.txt', 'added\n');
    const l1 = await backup(work, src, { previous: l0.snapshot });
    const out = join(work, 'out');
    for (const l of [l0, l1]) {
      await extractTar(createReadStream(l.file, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>, { target: out, incremental: true });
    }
    await expectSame(src, out);
  } finally {
    await removeDir(work);
  }
});

test('--one-file-system: a mount point is listed, not entered (as tar)', async () => {
  const work = await tempDir('tarw');
  const mnt = join(work, 'src', 'mnt');
  try {
    await createTree(join(work, 'src'), { 'a.txt': 'a', 'mnt': { type: 'dir' } });
    const m = await run('mount', ['-t', 'tmpfs', 'none', mnt]);
    if (m.code !== 0) {
      console.log('  skip: cannot mount a tmpfs here');
      return;
    }
    await fs.writeFile(join(mnt, 'inside.txt'), 'other fs');
    const snap = join(work, 'snap');
    const tarFile = join(work, 'tar.tar');
    const r = await run('tar', ['--create', `--listed-incremental=${snap}`, '--one-file-system', '--no-check-device',
      '-C', join(work, 'src'), '-f', tarFile, '.']);
    assert.is(r.code, 0, describe(r));
    const l = await backup(work, join(work, 'src'));
    assert.equal(await members(l.file), await members(tarFile));
    assert.ok(l.warnings.some((w) => w.includes('different filesystem')));
    assert.not.ok((await members(l.file)).some((x) => x.name.includes('inside')));
  } finally {
    await run('umount', [mnt]);
    await removeDir(work);
  }
});

test('the stream comes in chunkSize buffers, padded to a 10240-byte record', async () => {
  const work = await tempDir('tarw');
  try {
    const src = join(work, 'src');
    await createTree(src, { 'a.txt': 'a', 'b/c.bin': { type: 'file', random: 300 * 1024 }, 'd.bin': { type: 'file', random: 2 * 1024 * 1024 } });
    const l = await backup(work, src, { chunkSize: 4096 });
    assert.ok(l.chunks.slice(0, -1).every((n) => n === 4096));
    const total = l.chunks.reduce((a, b) => a + b, 0);
    assert.is(total % 10240, 0);
    assert.is((await fs.stat(l.file)).size, total);
    await listing(l);
  } finally {
    await removeDir(work);
  }
});

test('a single file: named by its basename, dumped again only when it changed', async () => {
  const work = await tempDir('tarw');
  try {
    const file = join(work, 'one.txt');
    await fs.writeFile(file, 'one\n');
    await sleep(1100);
    const l0 = await backup(work, file);
    assert.equal((await members(l0.file)).map((m) => m.name), ['one.txt']);
    const l1 = await backup(work, file, { previous: l0.snapshot });
    assert.equal(await members(l1.file), [], 'unchanged: empty archive');
    assert.is((await fs.stat(l1.file)).size, 10240);
    await fs.writeFile(file, 'two\n');
    const l2 = await backup(work, file, { previous: l1.snapshot });
    assert.equal((await members(l2.file)).map((m) => m.name), ['one.txt']);
    const out = join(work, 'out');
    await restore(l0, out);
    await restore(l2, out);
    assert.is(await fs.readFile(join(out, 'one.txt'), 'utf8'), 'two\n');
  } finally {
    await removeDir(work);
  }
});

test('sockets are skipped with a warning; a missing root is a SourceError', async () => {
  const work = await tempDir('tarw');
  const server = createServer();
  try {
    const src = join(work, 'src');
    await createTree(src, { 'a.txt': 'a' });
    await new Promise<void>((res) => server.listen(join(src, 'sock'), () => res()));
    const l = await backup(work, src);
    assert.ok(l.warnings.some((w) => w.includes('sock') && w.includes('socket ignored')), l.warnings.join('\n'));
    assert.not.ok((await members(l.file)).some((m) => m.name === './sock'));
    assert.instance(await rejection(backup(work, join(work, 'nope'))), SourceError);
  } finally {
    server.close();
    await removeDir(work);
  }
});

test('--dereference variants: soft follows symlinks, hard stores hard links as files', async () => {
  const work = await tempDir('tarw');
  try {
    const src = join(work, 'src');
    await createTree(src, {
      'f.txt': 'content\n', 'h.txt': { type: 'hardlink', target: 'f.txt' },
      'l.txt': { type: 'symlink', target: 'f.txt' }, 'ld': { type: 'symlink', target: 'sub' }, 'sub/x': 'x\n',
    });
    const soft = await members((await backup(work, src, { dereference: 'soft' })).file);
    assert.is(soft.find((m) => m.name === './l.txt')?.type, '0');
    assert.is(soft.find((m) => m.name === './ld/')?.type, 'D');
    assert.ok(soft.some((m) => m.name === './ld/x'));
    const hard = await members((await backup(work, src, { dereference: 'hard' })).file);
    assert.equal(hard.filter((m) => m.name === './f.txt' || m.name === './h.txt').map((m) => m.type), ['0', '0']);
    assert.is(hard.find((m) => m.name === './l.txt')?.type, '2');
  } finally {
    await removeDir(work);
  }
});

test('files that shrink or grow while read: zeros or st.size bytes, and a warning', async () => {
  const work = await tempDir('tarw');
  try {
    const src = join(work, 'src');
    await createTree(src, {
      'shrinks-small': 'x'.repeat(5000), 'grows-small': 'y'.repeat(5000),
      'shrinks-big': { type: 'file', random: 700 * 1024 }, 'grows-big': { type: 'file', random: 700 * 1024 },
    });
    const warnings: string[] = [];
    const onFile = (name: string) => {
      const path = join(src, name.slice(2));
      if (name.includes('shrinks')) truncateSync(path, 1000);
      if (name.includes('grows')) appendFileSync(path, 'more bytes');
    };
    const b = createTarBackup({ root: src, exclude: [], dereference: 'none', progress: { onFile, onWarning: (m) => warnings.push(m) } });
    const file = join(work, 'x.tar');
    const parts: Buffer[] = [];
    for await (const c of b.stream) parts.push(c);
    await fs.writeFile(file, Buffer.concat(parts));
    assert.is(warnings.length, 4, warnings.join('\n'));
    const sizes = Object.fromEntries((await members(file)).map((m) => [m.name, m.size]));
    assert.equal([sizes['./shrinks-small'], sizes['./grows-small'], sizes['./shrinks-big'], sizes['./grows-big']],
      [5000, 5000, 700 * 1024, 700 * 1024]);
    const out = join(work, 'out');
    await restore({ file } as Level, out);
    const shrunk = await fs.readFile(join(out, 'shrinks-small'));
    assert.ok(shrunk.subarray(0, 1000).equals(Buffer.from('x'.repeat(1000))) && shrunk.subarray(1000).every((x) => x === 0));
    assert.is((await fs.readFile(join(out, 'grows-small'), 'utf8')), 'y'.repeat(5000));
  } finally {
    await removeDir(work);
  }
});

test('growth is seen wherever a small file ends in the output chunk (with or without room for one more byte)', async () => {
  const work = await tempDir('tarw');
  try {
    const src = join(work, 'src');
    const spec: TreeSpec = {};
    for (let i = 1; i <= 8; i++) spec[`grows-${i}`] = String(i).repeat(512 * i);
    await createTree(src, spec);
    const warnings: string[] = [];
    const onFile = (name: string) => appendFileSync(join(src, name.slice(2)), 'more');
    // 2048-byte chunks: the files' data end at every 512-byte position of a chunk, the last one included.
    const b = createTarBackup({ root: src, exclude: [], dereference: 'none', chunkSize: 2048, progress: { onFile, onWarning: (m) => warnings.push(m) } });
    const file = join(work, 'x.tar');
    const parts: Buffer[] = [];
    for await (const c of b.stream) parts.push(c);
    await fs.writeFile(file, Buffer.concat(parts));
    assert.equal(warnings.sort(), Object.keys(spec).sort().map((n) => `./${n}: file changed as we read it`));
    const out = join(work, 'out');
    await restore({ file } as Level, out);
    for (let i = 1; i <= 8; i++) assert.is(await fs.readFile(join(out, `grows-${i}`), 'utf8'), String(i).repeat(512 * i));
  } finally {
    await removeDir(work);
  }
});

test('estimateTree counts what a backup would read', async () => {
  const work = await tempDir('tarw');
  try {
    const src = join(work, 'src');
    await createTree(src, { 'a.txt': 'aaa', 'b/c.txt': 'cc', 'b/skip.o': 'xxxxx', 'l': { type: 'symlink', target: 'a.txt' } });
    assert.equal(await estimateTree(src, ['*.o']), { bytes: 5, files: 3 });
  } finally {
    await removeDir(work);
  }
});

test('an aborted signal stops the stream', async () => {
  const work = await tempDir('tarw');
  try {
    const src = join(work, 'src');
    await createTree(src, { 'big.bin': { type: 'file', random: 4 * 1024 * 1024 } });
    const ac = new AbortController();
    const b = createTarBackup({ root: src, exclude: [], dereference: 'none', signal: ac.signal, chunkSize: 65536 });
    let n = 0;
    const err = await rejection((async () => {
      for await (const c of b.stream) {
        n += c.length;
        ac.abort(new Error('stop'));
      }
    })());
    assert.match(String(err), 'stop');
    assert.ok(n < 4 * 1024 * 1024);
    assert.throws(() => b.snapshot());
  } finally {
    await removeDir(work);
  }
});

test('files over 8 GiB (sparse, so the test stays small)', async () => {
  if (process.env.FLOE_TEST_BIG !== '1') {
    console.log('  skip: set FLOE_TEST_BIG=1 to scan a 9 GiB sparse file');
    return;
  }
  const work = await tempDir('tarw');
  try {
    const src = join(work, 'src');
    await createTree(src, { 'huge.img': { type: 'sparse', size: 9 * 1024 ** 3, data: [[0, 4096], [8.5 * 1024 ** 3, 4096]] } });
    const l = await backup(work, src);
    const out = join(work, 'out');
    await restore(l, out);
    await expectSame(src, out);
  } finally {
    await removeDir(work);
  }
});

if (!isRoot) console.log('  note: not root: owners and devices are not checked');

test.run();
