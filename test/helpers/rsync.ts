/**
 * Helpers for the rsync engine's unit tests: a level made in memory, a stream fed back in pieces, tree
 * comparison, and seeded randomness (a failing sequence can be replayed).
 */
import * as assert from 'uvu/assert';
import { createRsyncBackup, extractRsync, type RsyncBackupOptions } from '../../engine/archive/rsync/index.js';
import { IntegrityError } from '../../engine/errors.js';
import { compareTrees, randomBlocks, snapshotTree } from './tree.js';

export interface Level {
  data: Buffer;
  meta: Buffer;
  stats: { files: number; dirs: number; bytes: number; warnings: number };
  warnings: string[];
}

/** backup makes one level of `root` in memory (level 0 without `previous`). */
export async function backup(root: string, previous?: Buffer, opts: Partial<RsyncBackupOptions> = {}): Promise<Level> {
  const warnings: string[] = [];
  const b = createRsyncBackup({ root, exclude: [], dereference: 'none', previous, ...opts, progress: { onWarning: (m) => warnings.push(m) } });
  const parts: Buffer[] = [];
  for await (const c of b.stream) parts.push(Buffer.from(c));
  return { data: Buffer.concat(parts), meta: b.metadata(), stats: b.stats(), warnings };
}

/** chunks feeds a stream back in pieces of `size` bytes. */
export async function* chunks(buf: Buffer, size = 65536): AsyncGenerator<Buffer> {
  for (let i = 0; i < buf.length; i += size) yield buf.subarray(i, i + size);
}

/** restore applies one level (its stream) under target. */
export function restore(level: Level | Buffer, target: string) {
  return extractRsync(chunks(Buffer.isBuffer(level) ? level : level.data), { target });
}

/** expectSame asserts two trees are equal (a symlink's own mtime aside). */
export async function expectSame(src: string, dst: string, label: string): Promise<void> {
  const diffs = compareTrees(await snapshotTree(src), await snapshotTree(dst), { ignore: ['symlinkMtime'] });
  assert.equal(diffs, [], `${label}: ${diffs.slice(0, 10).join('; ')}`);
}

/** rng: a small seeded generator (mulberry32), so a failing sequence can be replayed. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** rejectsIntegrity: fn must reject with an IntegrityError. */
export async function rejectsIntegrity(fn: () => Promise<unknown>): Promise<void> {
  try {
    await fn();
  } catch (err) {
    assert.ok(err instanceof IntegrityError, `expected IntegrityError, got ${String(err)}`);
    return;
  }
  assert.unreachable('expected IntegrityError, resolved');
}

/** bytes: n reproducible random bytes. */
export function bytes(n: number, seed: number): Buffer {
  return Buffer.concat([...randomBlocks(n, seed)]);
}
