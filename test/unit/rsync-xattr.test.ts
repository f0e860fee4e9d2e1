/**
 * User xattrs through the rsync engine. Through the real CLI: a tree with xattrs on files and
 * directories backed up at level 0, then xattrs added, changed and removed with every content kept, and
 * level 1: level 1 must carry no file data ('A' records only) and both levels must restore the xattrs of
 * their time (removals included). Through the API: the degraded paths (no binding, ENOTSUP) warn once
 * and go on; the 64 KiB bound; a state and stream written before xattrs still serve.
 *
 * The CLI and real-file-system tests need user xattrs on the temp dir's file system and the fs-xattr
 * binding built: without them they are skipped with the reason, and fail under CI=true (where both must
 * be there: a silent skip would hide a broken install).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compress as zstdCompress, decompress as zstdDecompress } from 'zstd-napi';
import { createRsyncBackup, extractRsync, type RsyncBackupOptions } from '../../engine/archive/rsync/index.js';
import { KIND_ATTRS, KIND_ENTRY, KIND_TRAILER, MAGIC, META_MAGIC } from '../../engine/archive/rsync/format.js';
import { IntegrityError } from '../../engine/errors.js';
import { closeSharedPool } from '../../engine/pipeline/pool.js';
import { loadBinding, MAX_XATTR_VALUE, UserXattrs, type XattrBinding } from '../../engine/source/xattr.js';
import { describe, inCI, listStored, localDate, removeDir, runFloe, sleep, tempDir, type RunResult } from '../helpers/peers.js';
import { compareTrees, createTree, snapshotTree, type TreeSnapshot } from '../helpers/tree.js';

const HOST = 'xattr-host';
const NAME = 'xattrs';

// ------------------------------------------------------------------------------------ support gate

/** supportReason: undefined when the binding loads and the temp dir's file system keeps user xattrs. */
async function supportReason(): Promise<string | undefined> {
  const b = await loadBinding();
  if (b instanceof Error) return `the fs-xattr binding cannot load (${b.message.split('\n')[0]})`;
  const dir = await fs.mkdtemp(join(tmpdir(), 'floe-xattr-probe-'));
  try {
    await fs.writeFile(join(dir, 'f'), '');
    for (const p of [join(dir, 'f'), dir]) {
      b.setAttributeSync(p, 'user.floe.probe', Buffer.from('1'));
      if (b.getAttributeSync(p, 'user.floe.probe').toString() !== '1') return `user xattrs do not read back under ${tmpdir()}`;
    }
    return undefined;
  } catch (err) {
    return `the file system of ${tmpdir()} does not keep user xattrs (${(err as NodeJS.ErrnoException).code ?? String(err)})`;
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

const reason = await supportReason();
let binding: XattrBinding;

/** xtest: `test` when user xattrs work here; else skipped with the reason, or failing under CI=true. */
const xtest: typeof test = ((name: string, fn: Parameters<typeof test>[1]) => {
  if (reason === undefined) return test(name, fn);
  if (inCI) return test(name, () => { throw new Error(`user xattrs are required under CI=true: ${reason}`); });
  return test.skip(name, fn);
}) as typeof test;
if (reason !== undefined) console.log(`  skip: ${reason}: the tests that need user xattrs are skipped`);
else binding = (await loadBinding()) as XattrBinding;

// ------------------------------------------------------------------------------------ helpers

type XattrMap = Record<string, Record<string, string>>;

function setX(path: string, name: string, value: string | Buffer): void {
  binding.setAttributeSync(path, name, Buffer.isBuffer(value) ? value : Buffer.from(value));
}

function removeX(path: string, name: string): void {
  binding.removeAttributeSync(path, name);
}

/** treeXattrs: the user xattrs (hex values) of every file and directory under root, by relative path
 * ('.' for root); paths without any are left out. */
function treeXattrs(root: string): XattrMap {
  const out: XattrMap = {};
  const add = (rel: string) => {
    const abs = rel === '.' ? root : join(root, rel);
    const names = binding.listAttributesSync(abs).filter((x) => x.startsWith('user.')).sort();
    if (names.length > 0) out[rel] = Object.fromEntries(names.map((n) => [n, binding.getAttributeSync(abs, n).toString('hex')]));
  };
  add('.');
  for (const e of readdirSync(root, { recursive: true, withFileTypes: true })) {
    if (e.isFile() || e.isDirectory()) add(join(e.parentPath, e.name).slice(root.length + 1));
  }
  return out;
}

/** assertOk: exit 0 and no warning about xattrs. */
function assertOk(r: RunResult, what: string): void {
  assert.ok(r.code === 0, `${what} failed: ${describe(r)}`);
  assert.not.match(r.stderr, /user xattrs|extended attribute/, `${what}: ${describe(r)}`);
}

function assertSameTree(expected: TreeSnapshot, actual: TreeSnapshot, what: string): void {
  const diffs = compareTrees(expected, actual, { ignore: ['symlinkMtime'] });
  assert.ok(diffs.length === 0, `${what}: ${diffs.slice(0, 20).join('; ')}`);
}

interface StreamRecord { kind: string; json: Record<string, unknown> }

/** records reads a level's stream that carries no file data (a data entry fails the test). */
function records(stream: Buffer): StreamRecord[] {
  assert.ok(stream.subarray(0, MAGIC.length).equals(MAGIC), 'stream magic');
  const out: StreamRecord[] = [];
  for (let o = MAGIC.length; o < stream.length;) {
    const kind = stream[o]!;
    const len = stream.readUInt32LE(o + 1);
    const json = JSON.parse(stream.toString('utf8', o + 5, o + 5 + len)) as Record<string, unknown>;
    o += 5 + len;
    assert.ok(json.d === undefined, `file data sent for ${String(json.p)} (${String(json.d)}): its content did not change`);
    out.push({ kind: String.fromCharCode(kind), json });
    if (kind === KIND_TRAILER) assert.is(o, stream.length, 'trailer is last');
  }
  return out;
}

/** levelStream: the stored data object of one level (--compression none, no encryption: the stream). */
function levelStream(dataDir: string): Buffer {
  return readFileSync(join(dataDir, 'data'));
}

// ------------------------------------------------------------------------------------ through the CLI

xtest('CLI: xattrs on files and dirs through level 0 and level 1 (added, changed, removed; contents kept)', async () => {
  const work = await tempDir('rsync-xattr');
  try {
    const src = join(work, 'src');
    const store = join(work, 'store');
    const cwd = join(work, 'cwd');
    await fs.mkdir(cwd);
    await createTree(src, {
      'a.txt': 'alpha\n',
      'b.txt': 'bravo\n',
      'c.txt': 'charlie\n',
      'big.bin': { type: 'file', random: 300 * 1024, seed: 7 },
      'd/e.txt': 'echo\n',
      'd/sub/f.txt': 'foxtrot\n',
      'link': { type: 'symlink', target: 'a.txt' },
    });
    setX(src, 'user.root', 'r');
    setX(join(src, 'a.txt'), 'user.a', '1');
    setX(join(src, 'a.txt'), 'user.bin', Buffer.from([0, 0xff, 0x80, 0x0a]));
    setX(join(src, 'b.txt'), 'user.keep', 'k');
    setX(join(src, 'big.bin'), 'user.big', 'v0');
    setX(join(src, 'd'), 'user.d', 'dir');
    setX(join(src, 'd/sub'), 'user.s', 's');
    setX(join(src, 'd/e.txt'), 'user.empty', '');
    const args = ['--container', store, '--backup-name', NAME, '--hostname', HOST, '--storage', 'local'];
    const backup = () => runFloe(['backup', '--path-to-backup', src, ...args, '--engine', 'rsync', '--compression', 'none'], { cwd });

    const tree0 = await snapshotTree(src);
    const x0 = treeXattrs(src);
    assertOk(await backup(), 'level 0 backup');

    await sleep(1100); // levels are named by the second
    setX(join(src, 'a.txt'), 'user.a', '2'); // changed
    removeX(join(src, 'a.txt'), 'user.bin'); // removed
    setX(join(src, 'c.txt'), 'user.new', 'n'); // added to a file that had none
    setX(join(src, 'big.bin'), 'user.big', 'v1'); // changed on a file with a signature
    removeX(join(src, 'd'), 'user.d'); // a directory: one removed, one added
    setX(join(src, 'd'), 'user.d2', 'x');
    removeX(join(src, 'd/sub'), 'user.s'); // a directory left with none
    const tree1 = await snapshotTree(src);
    const x1 = treeXattrs(src);
    assert.not.equal(x1, x0);
    assertOk(await backup(), 'level 1 backup');

    const stored = listStored(store, HOST, NAME, 'rsync');
    assert.equal(stored.map((s) => s.level), [0, 1]);
    const recs = records(levelStream(stored[1]!.dataDir));
    const attrs = recs.filter((r) => r.kind === String.fromCharCode(KIND_ATTRS)).map((r) => r.json.p).sort();
    assert.equal(attrs, ['a.txt', 'big.bin', 'c.txt'], 'level 1: attributes-only records for the files whose xattrs changed');
    const files = recs.filter((r) => r.kind === String.fromCharCode(KIND_ENTRY) && r.json.t !== 'dir');
    assert.equal(files.map((r) => r.json.p), [], 'level 1: no file entries');
    const dirX = Object.fromEntries(recs.filter((r) => r.json.t === 'dir').map((r) => [r.json.p, r.json.x]));
    assert.equal(dirX['d/sub'], [], 'a directory without xattrs says so');

    const latest = join(work, 'latest');
    assertOk(await runFloe(['restore', '--restore-abs-path', latest, ...args], { cwd }), 'restore of level 1');
    assertSameTree(tree1, await snapshotTree(latest), 'level 1 tree');
    assert.equal(treeXattrs(latest), x1, 'level 1 xattrs');

    const first = join(work, 'first');
    assertOk(await runFloe(['restore', '--restore-abs-path', first, '--restore-from-date', localDate(stored[0]!.t), ...args], { cwd }), 'restore of level 0');
    assertSameTree(tree0, await snapshotTree(first), 'level 0 tree');
    assert.equal(treeXattrs(first), x0, 'level 0 xattrs');
  } finally {
    await removeDir(work);
  }
});

// ------------------------------------------------------------------------------------ through the API

interface Level { data: Buffer; meta: Buffer; warnings: string[] }

async function backup(root: string, previous?: Buffer, opts: Partial<RsyncBackupOptions> = {}): Promise<Level> {
  const warnings: string[] = [];
  const b = createRsyncBackup({ root, exclude: [], dereference: 'none', previous, ...opts, progress: { onWarning: (m) => warnings.push(m) } });
  const parts: Buffer[] = [];
  for await (const c of b.stream) parts.push(Buffer.from(c));
  return { data: Buffer.concat(parts), meta: b.metadata(), warnings };
}

async function* chunks(buf: Buffer): AsyncGenerator<Buffer> {
  yield buf;
}

/** unsupported: a binding whose every call fails as on a file system without xattrs. */
const unsupported: XattrBinding = {
  listAttributesSync: () => { throw Object.assign(new Error('not supported'), { code: 'ENOTSUP' }); },
  getAttributeSync: () => { throw Object.assign(new Error('not supported'), { code: 'ENOTSUP' }); },
  setAttributeSync: () => { throw Object.assign(new Error('not supported'), { code: 'ENOTSUP' }); },
  removeAttributeSync: () => { throw Object.assign(new Error('not supported'), { code: 'ENOTSUP' }); },
};

for (const [label, b] of [['ENOTSUP', unsupported], ['no binding', null]] as const) {
  test(`degraded backup (${label}): warns once and goes on; its levels restore without a warning`, async () => {
    const work = await tempDir('rsync-xattr-off');
    try {
      const src = join(work, 'src');
      await createTree(src, { 'a.txt': 'a\n', 'd/b.txt': 'b\n', 'd/e/c.txt': 'c\n' });
      const l0 = await backup(src, undefined, { xattrs: b });
      assert.equal(l0.warnings.length, 1, l0.warnings.join('; '));
      assert.match(l0.warnings[0]!, /user xattrs skipped/);
      assert.ok(!l0.data.includes('"x"'), 'no x field');
      await fs.writeFile(join(src, 'd/new.txt'), 'new\n');
      const l1 = await backup(src, l0.meta, { xattrs: b });
      assert.equal(l1.warnings.length, 1, l1.warnings.join('; '));
      const warnings: string[] = [];
      const progress = { onWarning: (m: string) => warnings.push(m) };
      const dst = join(work, 'dst');
      await extractRsync(chunks(l0.data), { target: dst, progress });
      await extractRsync(chunks(l1.data), { target: dst, progress });
      assert.equal(warnings, []);
      assert.equal(compareTrees(await snapshotTree(src), await snapshotTree(dst)), []);
    } finally {
      await removeDir(work);
    }
  });

  xtest(`degraded restore (${label}): warns once for all the levels of a restore, restores the rest`, async () => {
    const work = await tempDir('rsync-xattr-off');
    try {
      const src = join(work, 'src');
      await createTree(src, { 'a.txt': 'a\n', 'd/b.txt': 'b\n' });
      setX(join(src, 'a.txt'), 'user.a', '1');
      setX(join(src, 'd'), 'user.d', '1');
      const l0 = await backup(src);
      await fs.writeFile(join(src, 'd/new.txt'), 'new\n');
      setX(join(src, 'd/new.txt'), 'user.n', '1');
      const l1 = await backup(src, l0.meta);
      assert.equal([...l0.warnings, ...l1.warnings], []);
      const warnings: string[] = [];
      const progress = { onWarning: (m: string) => warnings.push(m) };
      const dst = join(work, 'dst');
      const r0 = await extractRsync(chunks(l0.data), { target: dst, progress, xattrs: b });
      const r1 = await extractRsync(chunks(l1.data), { target: dst, progress, xattrs: b });
      assert.is(warnings.length, 1, warnings.join('; '));
      assert.match(warnings[0]!, /user xattrs skipped/);
      assert.is(r0.warnings + r1.warnings, 1);
      assert.equal(compareTrees(await snapshotTree(src), await snapshotTree(dst)), []);
      assert.equal(treeXattrs(dst), {});
    } finally {
      await removeDir(work);
    }
  });
}

xtest('a value over 64 KiB is refused with a warning, the others are kept', async () => {
  const work = await tempDir('rsync-xattr-big');
  try {
    const src = join(work, 'src');
    await createTree(src, { 'a.txt': 'a\n' });
    setX(join(src, 'a.txt'), 'user.small', 's');
    setX(join(src, 'a.txt'), 'user.huge', 'h');
    // the kernel caps values at 64 KiB (ext4 at ~4 KiB): a binding that answers more stands for a
    // foreign file system
    const huge: XattrBinding = { ...binding, getAttributeSync: (p, n) => (n === 'user.huge' ? Buffer.alloc(MAX_XATTR_VALUE + 1) : binding.getAttributeSync(p, n)) };
    const l0 = await backup(src, undefined, { xattrs: huge });
    assert.equal(l0.warnings.length, 1, l0.warnings.join('; '));
    assert.match(l0.warnings[0]!, /a\.txt: extended attribute user\.huge is larger than 64 KiB/);
    const dst = join(work, 'dst');
    await extractRsync(chunks(l0.data), { target: dst });
    assert.equal(treeXattrs(dst), { 'a.txt': { 'user.small': Buffer.from('s').toString('hex') } });

    const warnings: string[] = [];
    const w = new UserXattrs({ onWarning: (m) => warnings.push(m) });
    await w.ready();
    w.write(join(dst, 'a.txt'), 'a.txt', [['user.huge', Buffer.alloc(MAX_XATTR_VALUE + 1)], ['user.ok', Buffer.from('o')]]);
    assert.equal(warnings, ['a.txt: extended attribute user.huge is larger than 64 KiB: not set']);
    assert.equal(Object.keys(treeXattrs(dst)['a.txt']!), ['user.ok', 'user.small']);
  } finally {
    await removeDir(work);
  }
});

xtest('symlinks are not followed; a rewrite that kept its mtime is still sent whole', async () => {
  const work = await tempDir('rsync-xattr-link');
  try {
    const src = join(work, 'src');
    await createTree(src, { 'a.txt': 'aaaa\n', 'l': { type: 'symlink', target: 'a.txt' } });
    setX(join(src, 'a.txt'), 'user.a', '1');
    const w = new UserXattrs({ onWarning: (m) => assert.unreachable(m) });
    await w.ready();
    assert.equal(w.read(join(src, 'l'), 'l'), []);
    assert.is(readlinkSync(join(src, 'l')), 'a.txt');
    const l0 = await backup(src);
    assert.equal(l0.warnings, []);
    // same size and mtime, new content, xattrs unchanged: not an attributes-only change
    const st = await fs.stat(join(src, 'a.txt'));
    await fs.writeFile(join(src, 'a.txt'), 'bbbb\n');
    await fs.utimes(join(src, 'a.txt'), st.atime, st.mtime);
    const l1 = await backup(src, l0.meta);
    const dst = join(work, 'dst');
    await extractRsync(chunks(l0.data), { target: dst });
    await extractRsync(chunks(l1.data), { target: dst });
    assert.is(await fs.readFile(join(dst, 'a.txt'), 'utf8'), 'bbbb\n');
    assert.equal(treeXattrs(dst), treeXattrs(src));
  } finally {
    await removeDir(work);
  }
});

xtest('a level 0 written before xattrs (state version 1, no x) restores, and a level 1 follows it', async () => {
  const work = await tempDir('rsync-xattr-old');
  try {
    const src = join(work, 'src');
    await createTree(src, { 'a.txt': 'a\n', 'd/b.txt': 'b\n' });
    const old = await backup(src, undefined, { xattrs: false });
    assert.ok(!old.data.includes('"x"'), 'no x field');
    // the state as floe wrote it before xattrs: the same records under version 1's magic
    const raw = zstdDecompress(old.meta);
    assert.ok(raw.subarray(0, META_MAGIC.length).equals(META_MAGIC));
    raw[META_MAGIC.length - 1] = 0x01;
    const v1 = zstdCompress(raw);
    await sleep(20);
    setX(join(src, 'a.txt'), 'user.a', 'new'); // ctime moves: an attributes-only change
    setX(join(src, 'd'), 'user.d', 'dir');
    const l1 = await backup(src, v1);
    assert.equal(l1.warnings, []);
    const dst = join(work, 'dst');
    await extractRsync(chunks(old.data), { target: dst });
    assert.equal(treeXattrs(dst), {});
    await extractRsync(chunks(l1.data), { target: dst });
    assert.equal(compareTrees(await snapshotTree(src), await snapshotTree(dst)), []);
    assert.equal(treeXattrs(dst), treeXattrs(src));
  } finally {
    await removeDir(work);
  }
});

xtest('hard links share their xattrs; an attributes record needs the file the previous level left', async () => {
  const work = await tempDir('rsync-xattr-hard');
  try {
    const src = join(work, 'src');
    await createTree(src, { 'h1': 'linked\n', 'h2': { type: 'hardlink', target: 'h1' } });
    setX(join(src, 'h1'), 'user.v', '0');
    const l0 = await backup(src);
    await sleep(20);
    setX(join(src, 'h2'), 'user.v', '1');
    const l1 = await backup(src, l0.meta);
    assert.equal(l1.warnings, []);
    assert.ok(!l1.data.includes('"d":'), 'no file data at level 1');
    const dst = join(work, 'dst');
    await extractRsync(chunks(l0.data), { target: dst });
    await extractRsync(chunks(l1.data), { target: dst });
    assert.equal(compareTrees(await snapshotTree(src), await snapshotTree(dst)), []);
    assert.equal(treeXattrs(dst), treeXattrs(src));
    // level 1 alone: the files its attributes records apply to are not there
    const lone = join(work, 'lone');
    try {
      await extractRsync(chunks(l1.data), { target: lone });
      assert.unreachable('level 1 without level 0 must fail');
    } catch (err) {
      assert.instance(err, IntegrityError);
      assert.match((err as Error).message, /restore the levels in order/);
    }
  } finally {
    await removeDir(work);
  }
});

test.after(async () => {
  await closeSharedPool();
});

test.run();
