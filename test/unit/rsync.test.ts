/**
 * The rsync engine: round trips through many levels with random edits, compared with the source after
 * every level; change detection (unchanged files are not read); delta sizes; restore guarantees
 * (a tampered basis, stream or level order stops with IntegrityError and leaves no corrupt file).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import { join } from 'node:path';
import { createRsyncBackup, extractRsync, parseMeta, sqrtBlockSize } from '../../engine/archive/rsync/index.js';
import { IntegrityError } from '../../engine/errors.js';
import { closeSharedPool } from '../../engine/pipeline/pool.js';
import { createTree, mutate, standardTree } from '../helpers/tree.js';
import { backup, bytes, chunks, expectSame, rejectsIntegrity, restore, rng, type Level } from '../helpers/rsync.js';
import { removeDir, tempDir } from '../helpers/peers.js';

test('level 0 round trip of every file type', async () => {
  const work = await tempDir('floe-rsync-');
  try {
    const src = join(work, 'src');
    await createTree(src, standardTree());
    const l0 = await backup(src);
    assert.equal(l0.warnings, []);
    assert.ok(l0.stats.files > 20);
    await restore(l0, join(work, 'dst'));
    await expectSame(src, join(work, 'dst'), 'level 0');
  } finally {
    await removeDir(work);
  }
});

test('unchanged files are not read; a level without changes stores only directories', async () => {
  const work = await tempDir('floe-rsync-');
  try {
    const src = join(work, 'src');
    await createTree(src, { 'big.bin': { type: 'file', random: 1 << 20 }, 'a/b.txt': 'b\n', 'c.txt': 'c\n' });
    const l0 = await backup(src);
    const l1 = await backup(src, l0.meta);
    assert.is(l1.stats.files, 0);
    assert.is(l1.stats.bytes, 0);
    assert.ok(l1.data.length < 1024, `level 1 is ${l1.data.length} bytes`);
    // a file without read permission is not opened when unchanged
    await fs.chmod(join(src, 'c.txt'), 0o000);
    // a directory that cannot be listed keeps its previous contents (not deleted from the restore)
    if (process.getuid?.() !== 0) {
      await fs.chmod(join(src, 'a'), 0o000);
      const lx = await backup(src, l1.meta);
      assert.ok(lx.warnings.some((w) => w.includes('cannot read directory')), lx.warnings.join('; '));
      assert.not.ok(lx.data.includes(Buffer.from('"D"')));
      assert.ok(parseMeta(lx.meta).has('a/b.txt'));
      await fs.chmod(join(src, 'a'), 0o755);
    }
    const l2 = await backup(src, l1.meta);
    const l3 = await backup(src, l2.meta);
    assert.is(l3.stats.files, 0);
    const dst = join(work, 'dst');
    for (const l of [l0, l1, l2, l3]) await restore(l, dst);
    await expectSame(src, dst, 'levels 0-3');
  } finally {
    await removeDir(work);
  }
});

test('an insertion in the middle of a big file stores about the insertion', async () => {
  const work = await tempDir('floe-rsync-');
  try {
    const src = join(work, 'src');
    const size = 8 << 20;
    await createTree(src, { 'vm.img': { type: 'file', random: size, seed: 5 } });
    const l0 = await backup(src);
    const old = await fs.readFile(join(src, 'vm.img'));
    const ins = bytes(64 << 10, 9);
    await fs.writeFile(join(src, 'vm.img'), Buffer.concat([old.subarray(0, size / 2 + 123), ins, old.subarray(size / 2 + 123)]));
    const l1 = await backup(src, l0.meta);
    const bs = sqrtBlockSize(size + ins.length);
    assert.ok(l1.data.length < ins.length + 3 * bs + 4096, `level 1 stores ${l1.data.length} bytes`);
    const dst = join(work, 'dst');
    await restore(l0, dst);
    await restore(l1, dst);
    await expectSame(src, dst, 'insertion');
  } finally {
    await removeDir(work);
  }
});

test('a renamed file or directory is sent as a delta against its old path', async () => {
  const work = await tempDir('floe-rsync-');
  try {
    const src = join(work, 'src');
    await createTree(src, {
      'dir/big.bin': { type: 'file', random: 1 << 20, seed: 4 },
      'f.bin': { type: 'file', random: 500_000, seed: 6 },
      'g.bin': { type: 'file', random: 300_000, seed: 7 },
    });
    const l0 = await backup(src);
    await mutate.renameDir(src, 'dir', 'moved/dir2');
    await mutate.renameFile(src, 'f.bin', 'a-first.bin'); // met before its old name's directory slot
    await mutate.append(src, 'a-first.bin', 'and a change\n');
    // swap: each new name's inode was the other's old name
    await fs.rename(join(src, 'g.bin'), join(src, 'tmp'));
    const l1 = await backup(src, l0.meta);
    assert.ok(l1.data.length < 20_000, `level 1 stores ${l1.data.length} bytes`);
    await fs.rename(join(src, 'tmp'), join(src, 'z.bin'));
    await mutate.add(src, 'tmp', 'now a small file\n');
    const l2 = await backup(src, l1.meta);
    const dst = join(work, 'dst');
    for (const l of [l0, l1, l2]) await restore(l, dst);
    await expectSame(src, dst, 'renames');
  } finally {
    await removeDir(work);
  }
});

test('repetitive content: windows stitched across boundaries, identical blocks', async () => {
  const work = await tempDir('floe-rsync-');
  try {
    const src = join(work, 'src');
    const unit = bytes(1000, 21);
    const old = Buffer.concat(Array.from({ length: 10_500 }, () => unit)); // 10.5 MB: three scan windows
    await fs.mkdir(src, { recursive: true });
    await fs.writeFile(join(src, 'rep.bin'), old);
    await fs.writeFile(join(src, 'zero.bin'), Buffer.alloc(5 << 20));
    const l0 = await backup(src);
    await fs.writeFile(join(src, 'rep.bin'), Buffer.concat([Buffer.from('seventeen bytes!!'), old.subarray(0, 6_000_123), bytes(333, 22), old.subarray(6_000_123)]));
    await fs.writeFile(join(src, 'zero.bin'), Buffer.concat([Buffer.alloc(3 << 20), Buffer.from('x'), Buffer.alloc(2 << 20)]));
    const l1 = await backup(src, l0.meta);
    assert.ok(l1.data.length < 50_000, `level 1 stores ${l1.data.length} bytes`);
    const dst = join(work, 'dst');
    await restore(l0, dst);
    await restore(l1, dst);
    await expectSame(src, dst, 'repetitive');
  } finally {
    await removeDir(work);
  }
});

test('--rsync-block-size is used for new signatures', async () => {
  const work = await tempDir('floe-rsync-');
  try {
    const src = join(work, 'src');
    await createTree(src, { 'f.bin': { type: 'file', random: 300_000 } });
    const l0 = await backup(src, undefined, { blockSize: 2048 });
    const rec = parseMeta(l0.meta).get('f.bin');
    assert.is(rec?.sig?.blockSize, 2048);
    assert.is(rec?.sig?.weaks.length, Math.ceil(300_000 / 2048));
    const d = parseMeta((await backup(src)).meta).get('f.bin');
    assert.is(d?.sig?.blockSize, sqrtBlockSize(300_000));
  } finally {
    await removeDir(work);
  }
});

/** edit applies one random change under src; returns its description. */
async function edit(src: string, r: () => number, step: number): Promise<string> {
  const files: string[] = [];
  const dirs: string[] = [];
  const walk = async (rel: string) => {
    for (const d of await fs.readdir(join(src, rel), { withFileTypes: true })) {
      const p = rel ? `${rel}/${d.name}` : d.name;
      if (d.isDirectory()) { dirs.push(p); await walk(p); } else if (d.isFile()) files.push(p);
    }
  };
  await walk('');
  const pick = <T>(xs: T[]) => xs[Math.floor(r() * xs.length)];
  const f = pick(files);
  const abs = f ? join(src, f) : '';
  const kind = Math.floor(r() * 14);
  const seed = step * 100 + kind;
  if (!f) { await mutate.add(src, `new${step}.bin`, bytes(100_000, seed)); return 'add'; }
  const old = await fs.readFile(abs);
  const at = Math.floor(r() * (old.length + 1));
  switch (kind) {
    case 0: await fs.writeFile(abs, Buffer.concat([old.subarray(0, at), bytes(1 + Math.floor(r() * 20000), seed), old.subarray(at)])); return `insert ${f}`;
    case 1: await fs.writeFile(abs, Buffer.concat([old.subarray(0, at), old.subarray(Math.min(old.length, at + Math.floor(r() * 50000)))])); return `delete-range ${f}`;
    case 2: await fs.truncate(abs, at); return `truncate ${f}`;
    case 3: await mutate.append(src, f, bytes(Math.floor(r() * 100_000), seed)); return `append ${f}`;
    case 4: await mutate.renameFile(src, f, `moved${step}/${f.slice(-20).replace(/\//g, '_')}`); return `rename ${f}`;
    case 5: await mutate.chmod(src, f, r() < 0.5 ? 0o600 : 0o755); return `chmod ${f}`;
    case 6: await mutate.symlink(src, f, `target-${step}`); return `to-symlink ${f}`;
    case 7: {
      const d = pick(dirs);
      if (!d) return 'none';
      await fs.rm(join(src, d), { recursive: true });
      await fs.writeFile(join(src, d), `was a directory ${step}\n`);
      return `dir-to-file ${d}`;
    }
    case 8: await fs.link(abs, join(src, `link${step}`)).catch(() => undefined); return `hardlink ${f}`;
    case 9: await mutate.add(src, `d${step}/sub/new.bin`, bytes(70_000 + Math.floor(r() * 200_000), seed)); return 'add';
    case 10: await mutate.delete(src, f); return `delete ${f}`;
    case 12: {
      const g = pick(files);
      if (!g || g === f) return 'none';
      await fs.rename(abs, join(src, 'swap.tmp'));
      await fs.rename(join(src, g), abs);
      await fs.rename(join(src, 'swap.tmp'), join(src, g));
      return `swap ${f} ${g}`;
    }
    case 13: {
      const d = pick(dirs);
      if (!d) return 'none';
      await mutate.renameDir(src, d, `rd${step}/${d.slice(-20).replace(/\//g, '_')}`);
      return `rename-dir ${d}`;
    }
    default: {
      const fh = await fs.open(abs, 'r+');
      for (let i = 0; i < 5; i++) await fh.write(bytes(500, seed + i), 0, 500, Math.floor(r() * old.length));
      await fh.close();
      return `overwrite ${f}`;
    }
  }
}

test('many levels of random edits restore exactly, level after level', async () => {
  const work = await tempDir('floe-rsync-');
  try {
    const src = join(work, 'src');
    const dst = join(work, 'dst');
    const spec = standardTree({ big: 600 * 1024, text: 200 * 1024 });
    spec['data/mid.bin'] = { type: 'file', random: 300_000, seed: 11 };
    await createTree(src, spec);
    const r = rng(Number(process.env.FLOE_RSYNC_SEED ?? 42));
    let prev = await backup(src);
    await restore(prev, dst);
    await expectSame(src, dst, 'level 0');
    for (let level = 1; level <= 10; level++) {
      const did: string[] = [];
      for (let k = 0; k < 4; k++) did.push(await edit(src, r, level * 10 + k));
      const next = await backup(src, prev.meta);
      await restore(next, dst);
      await expectSame(src, dst, `level ${level} after ${did.join(', ')}`);
      prev = next;
    }
  } finally {
    await removeDir(work);
  }
});

test('a changed basis, a tampered stream or a skipped level stops with IntegrityError; no corrupt file', async () => {
  const work = await tempDir('floe-rsync-');
  try {
    const src = join(work, 'src');
    await createTree(src, { 'f.bin': { type: 'file', random: 500_000, seed: 3 }, 'g.txt': 'g\n' });
    const l0 = await backup(src);
    const fh = await fs.open(join(src, 'f.bin'), 'r+');
    await fh.write(Buffer.from('changed'), 0, 7, 1000);
    await fh.close();
    const l1 = await backup(src, l0.meta);
    const dst = join(work, 'dst');
    // level 1 onto an empty target: the basis is missing
    await rejectsIntegrity(() => restore(l1, join(work, 'empty')));
    await restore(l0, dst);
    // the basis in the target was changed since level 0
    const before = await fs.readFile(join(dst, 'f.bin'));
    const altered = Buffer.from(before);
    altered[5] ^= 1;
    await fs.writeFile(join(dst, 'f.bin'), altered);
    await rejectsIntegrity(() => restore(l1, dst));
    assert.ok((await fs.readFile(join(dst, 'f.bin'))).equals(altered), 'the file was left as it was');
    await fs.writeFile(join(dst, 'f.bin'), before);
    // a flipped byte inside a literal: the rebuilt file does not match its hash
    const bad = Buffer.from(l1.data);
    const at = bad.indexOf(Buffer.from('changed'));
    assert.ok(at > 0);
    bad[at] ^= 0x20;
    await rejectsIntegrity(() => restore(bad, dst));
    assert.ok((await fs.readFile(join(dst, 'f.bin'))).equals(before), 'the file was not replaced');
    const left = (await fs.readdir(dst)).filter((n) => n.startsWith('.floe-'));
    assert.equal(left, [], 'no temporary file left');
    // truncated streams, and garbage
    for (const cut of [l1.data.length - 1, Math.floor(l1.data.length / 2), 3]) {
      await rejectsIntegrity(() => restore(l1.data.subarray(0, cut), dst));
    }
    await rejectsIntegrity(() => restore(randomBytes(1000), dst));
    assert.throws(() => parseMeta(randomBytes(100)), (e: unknown) => e instanceof IntegrityError);
    // a stream cut just before its trailer has applied its entries (each one verified) before failing
    await fs.writeFile(join(dst, 'f.bin'), before);
    await restore(l1, dst);
    await expectSame(src, dst, 'after the failures');
  } finally {
    await removeDir(work);
  }
});

test('a single file as the root, excludes, and --dereference', async () => {
  const work = await tempDir('floe-rsync-');
  try {
    const src = join(work, 'src');
    await createTree(src, {
      'keep/a.bin': { type: 'file', random: 200_000, seed: 1 },
      'skip.log': 'excluded\n',
      'keep/link': { type: 'symlink', target: 'a.bin' },
      'keep/h1': 'same inode\n',
      'keep/h2': { type: 'hardlink', target: 'keep/h1' },
    });
    // single file: restored under its base name, level after level
    const one = join(src, 'keep', 'a.bin');
    const s0 = await backup(one);
    await mutate.append(src, 'keep/a.bin', bytes(5000, 2));
    const s1 = await backup(one, s0.meta);
    assert.ok(s1.data.length < 20_000, `single-file level 1 stores ${s1.data.length} bytes`);
    const dst1 = join(work, 'one');
    await restore(s0, dst1);
    await restore(s1, dst1);
    assert.ok((await fs.readFile(join(dst1, 'a.bin'))).equals(await fs.readFile(one)));
    // excludes: an excluded path is not stored; excluding it later deletes it from the restore
    const e0 = await backup(src, undefined, {});
    const e1 = await backup(src, e0.meta, { exclude: ['*.log'] });
    const dst2 = join(work, 'ex');
    await restore(e0, dst2);
    await restore(e1, dst2);
    assert.is(await fs.stat(join(dst2, 'skip.log')).then(() => true, () => false), false);
    // --dereference soft: the link becomes a copy of its target; hard: hard links become copies
    const d0 = await backup(src, undefined, { dereference: 'all' });
    const dst3 = join(work, 'deref');
    await restore(d0, dst3);
    const link = await fs.lstat(join(dst3, 'keep/link'));
    assert.ok(link.isFile());
    const [h1, h2] = await Promise.all([fs.stat(join(dst3, 'keep/h1')), fs.stat(join(dst3, 'keep/h2'))]);
    assert.is.not(h1.ino, h2.ino);
  } finally {
    await removeDir(work);
  }
});

test('a dry run lists the entries and writes nothing', async () => {
  const work = await tempDir('floe-rsync-');
  try {
    const src = join(work, 'src');
    await createTree(src, { 'a.txt': 'a\n', 'd/b.bin': { type: 'file', random: 100_000 } });
    const l0 = await backup(src);
    const names: string[] = [];
    const dst = join(work, 'dst');
    const r = await extractRsync(chunks(l0.data, 1), { target: dst, dryRun: true, onList: (n) => names.push(n) });
    assert.equal(names.sort(), ['.', 'a.txt', 'd', 'd/b.bin']);
    assert.is(r.files, 2);
    assert.is(await fs.stat(dst).then(() => true, () => false), false);
  } finally {
    await removeDir(work);
  }
});

test('an aborted backup or restore rejects with the abort reason', async () => {
  const work = await tempDir('floe-rsync-');
  try {
    const src = join(work, 'src');
    await createTree(src, { 'a.bin': { type: 'file', random: 3 << 20 }, 'b.bin': { type: 'file', random: 3 << 20, seed: 2 } });
    const l0 = await backup(src);
    const ac = new AbortController();
    const b = createRsyncBackup({ root: src, exclude: [], dereference: 'none', signal: ac.signal });
    let caught: unknown;
    try {
      for await (const _ of b.stream) ac.abort(new Error('stop'));
    } catch (err) {
      caught = err;
    }
    assert.is((caught as Error)?.message, 'stop');
    const ac2 = new AbortController();
    ac2.abort(new Error('stop restore'));
    await extractRsync(chunks(l0.data), { target: join(work, 'dst'), signal: ac2.signal }).then(
      () => assert.unreachable('restore resolved'), (err: Error) => assert.is(err.message, 'stop restore'));
  } finally {
    await removeDir(work);
  }
});

test.after(async () => {
  await closeSharedPool();
});

test.run();
