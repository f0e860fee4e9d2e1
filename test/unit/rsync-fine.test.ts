/**
 * The rsync engine's fine sums (format.ts fineSizeFor, filerun.ts GapFill): a change inside a block
 * costs about what changed, not the block. Overwrites, insertions and deletions at awkward places
 * (the first and last bytes, the short last block, across block boundaries) through many levels,
 * restored and compared after each; the signature computed both ways (Signer and inline); a state
 * without fine sums (version 2) still followed.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs/promises';
import { join } from 'node:path';
import { compress as zstdCompress, decompress as zstdDecompress } from 'zstd-napi';
import { extractRsync, META_MAGIC, parseMeta } from '../../engine/archive/rsync/index.js';
import { fineSizeFor, OP_RANGE } from '../../engine/archive/rsync/format.js';
import { closeSharedPool } from '../../engine/pipeline/pool.js';
import { FINE_LEN, fineCount } from '../../wasm/index.js';
import { backup, bytes, chunks, expectSame, rng } from '../helpers/rsync.js';
import { removeDir, tempDir } from '../helpers/peers.js';

/** rewrite changes the file's content and moves its mtime, so the next level sees it changed. */
async function rewrite(path: string, content: Buffer): Promise<void> {
  await fs.writeFile(path, content);
  const t = new Date(Date.now() + Math.floor(Math.random() * 1e6));
  await fs.utimes(path, t, t);
}

const BS = 32768;

test('fine sums: 512-byte sub-blocks from 32 KiB blocks, none below 4 KiB blocks, kept in the state', async () => {
  assert.is(fineSizeFor(700), 0);
  assert.is(fineSizeFor(4095), 0);
  assert.is(fineSizeFor(4096), 512);
  assert.is(fineSizeFor(BS), 512);
  assert.is(fineSizeFor(128 << 10), 2048);
  const work = await tempDir('floe-fine-');
  try {
    const src = join(work, 'src');
    await fs.mkdir(src);
    await fs.writeFile(join(src, 'big'), bytes(1_000_003, 1));
    const l0 = await backup(src, undefined, { blockSize: BS });
    const sig = parseMeta(l0.meta).get('big')!.sig!;
    assert.ok(sig.fine, 'a signature with fine sums');
    assert.is(sig.fine!.size, 512);
    assert.is(sig.fine!.seed.length, 8);
    assert.is(sig.fine!.sums.length, fineCount(1_000_003, BS, 512) * FINE_LEN);
    const small = await backup(src, undefined, { blockSize: 2048 });
    assert.is(parseMeta(small.meta).get('big')!.sig!.fine, undefined);
  } finally {
    await removeDir(work);
  }
});

test('100 random unaligned 4 KiB overwrites store within 1.2x of what changed, and restore exactly', async () => {
  const work = await tempDir('floe-fine-');
  try {
    const src = join(work, 'src');
    const dst = join(work, 'dst');
    await fs.mkdir(src);
    const size = 16 << 20;
    const file = bytes(size, 2);
    await fs.writeFile(join(src, 'db'), file);
    const l0 = await backup(src, undefined, { blockSize: BS });
    const r = rng(7);
    const changed = new Uint8Array(size);
    for (let i = 0; i < 100; i++) {
      const at = Math.floor(r() * (size - 4096));
      bytes(4096, 100 + i).copy(file, at);
      changed.fill(1, at, at + 4096);
    }
    await rewrite(join(src, 'db'), file);
    const l1 = await backup(src, l0.meta);
    const total = changed.reduce((a, b) => a + b, 0);
    assert.ok(l1.data.length <= 1.2 * total, `level 1 stores ${l1.data.length} bytes for ${total} changed (${(l1.data.length / total).toFixed(3)}x)`);
    assert.ok(l1.data.includes(OP_RANGE), 'range copies used');
    await extractRsync(chunks(l0.data), { target: dst });
    await extractRsync(chunks(l1.data), { target: dst });
    await expectSame(src, dst, 'overwrites');
  } finally {
    await removeDir(work);
  }
});

/** edits at the awkward places: each returns the new content. */
const edits: [string, (b: Buffer) => Buffer][] = [
  ['first bytes', (b) => Buffer.concat([bytes(100, 1), b.subarray(100)])],
  ['last bytes (short last block)', (b) => Buffer.concat([b.subarray(0, b.length - 77), bytes(77, 2)])],
  ['across a block boundary', (b) => Buffer.concat([b.subarray(0, 3 * BS - 1000), bytes(2000, 3), b.subarray(3 * BS + 1000)])],
  ['insertion mid-block', (b) => Buffer.concat([b.subarray(0, 5 * BS + 333), bytes(1000, 4), b.subarray(5 * BS + 333)])],
  ['deletion mid-block', (b) => Buffer.concat([b.subarray(0, 7 * BS + 100), b.subarray(7 * BS + 3100)])],
  ['truncation inside a block', (b) => b.subarray(0, b.length - 12_345)],
  ['append', (b) => Buffer.concat([b, bytes(777, 5)])],
  ['one byte in a sub-block', (b) => { const c = Buffer.from(b); c[9 * BS + 515] ^= 0xff; return c; }],
  ['the same content again', (b) => Buffer.from(b)],
  ['whole new content', (b) => bytes(b.length + 5000, 6)],
  ['a sub-block of zeros', (b) => { const c = Buffer.from(b); c.fill(0, 2 * BS, 2 * BS + 512); return c; }],
];

test('edits at the edges of blocks and of the file, level after level, restore exactly', async () => {
  const work = await tempDir('floe-fine-');
  try {
    const src = join(work, 'src');
    const dst = join(work, 'dst');
    await fs.mkdir(src);
    let content = bytes(12 * BS + 4321, 3);
    await fs.writeFile(join(src, 'f'), content);
    let prev = await backup(src, undefined, { blockSize: BS });
    await extractRsync(chunks(prev.data), { target: dst });
    for (const [what, edit] of edits) {
      content = edit(content);
      await rewrite(join(src, 'f'), content);
      const next = await backup(src, prev.meta);
      await extractRsync(chunks(next.data), { target: dst });
      await expectSame(src, dst, what);
      if (what === 'one byte in a sub-block') assert.ok(next.data.length < 2048, `${what}: ${next.data.length} bytes`);
      if (what === 'the same content again') assert.ok(next.data.length < 1024, `${what}: ${next.data.length} bytes`);
      prev = next;
    }
  } finally {
    await removeDir(work);
  }
});

test('random edits of a big file through 12 levels restore exactly', async () => {
  const work = await tempDir('floe-fine-');
  try {
    const src = join(work, 'src');
    const dst = join(work, 'dst');
    await fs.mkdir(src);
    const r = rng(Number(process.env.FLOE_RSYNC_SEED ?? 11));
    let content = bytes(40 * 4096 + 99, 8);
    await fs.writeFile(join(src, 'f'), content);
    let prev = await backup(src, undefined, { blockSize: 4096 });
    await extractRsync(chunks(prev.data), { target: dst });
    for (let level = 1; level <= 12; level++) {
      for (let k = 0; k < 5; k++) {
        const at = Math.floor(r() * content.length);
        const n = 1 + Math.floor(r() * 3000);
        const kind = Math.floor(r() * 3);
        const piece = bytes(n, level * 10 + k);
        content = kind === 0 ? Buffer.concat([content.subarray(0, at), piece, content.subarray(at)])
          : kind === 1 ? Buffer.concat([content.subarray(0, at), content.subarray(at + n)])
            : Buffer.concat([content.subarray(0, at), piece, content.subarray(Math.min(content.length, at + n))]);
      }
      await rewrite(join(src, 'f'), content);
      const next = await backup(src, prev.meta);
      await extractRsync(chunks(next.data), { target: dst });
      await expectSame(src, dst, `level ${level}`);
      prev = next;
    }
  } finally {
    await removeDir(work);
  }
});

test('a state without fine sums (version 2) is followed; the next level has them', async () => {
  const work = await tempDir('floe-fine-');
  try {
    const src = join(work, 'src');
    const dst = join(work, 'dst');
    await fs.mkdir(src);
    let content = bytes(4 << 20, 9);
    await fs.writeFile(join(src, 'f'), content);
    const l0 = await backup(src, undefined, { blockSize: 2048 }); // no fine sums at this block size
    const raw = zstdDecompress(l0.meta);
    raw[META_MAGIC.length - 1] = 0x02;
    const v2 = zstdCompress(raw);
    content = Buffer.concat([content.subarray(0, 1000), bytes(50, 1), content.subarray(1050)]);
    await rewrite(join(src, 'f'), content);
    const l1 = await backup(src, v2, { blockSize: BS }); // another block size: the Signer computes the new signature
    assert.ok(parseMeta(l1.meta).get('f')!.sig!.fine, 'level 1 has fine sums');
    content = Buffer.concat([content.subarray(0, 2_000_000), bytes(50, 2), content.subarray(2_000_050)]);
    await rewrite(join(src, 'f'), content);
    const l2 = await backup(src, l1.meta, { blockSize: BS });
    assert.ok(l2.data.length < 2048, `level 2 stores ${l2.data.length} bytes`);
    for (const l of [l0, l1, l2]) await extractRsync(chunks(l.data), { target: dst });
    await expectSame(src, dst, 'after level 2');
  } finally {
    await removeDir(work);
  }
});

test.after(async () => {
  await closeSharedPool();
});

test.run();
