/**
 * The rsync engine's worker-side computations, run by engine/pipeline/worker.ts on the thread's Kernel.
 *
 * - signatureOf: weak sums (WASM) and strong sums (SHA-256 truncated to STRONG_LEN) of consecutive blocks.
 * - deltaWindow: rsync's match search over one window of the new file. The WASM scan reports every
 *   offset whose rolling weak sum equals a block's; this confirms each with the strong sum, prefers the
 *   block after the previous match (so runs of blocks merge into one copy op), and applies rsync's skip
 *   (after a match, the search resumes one block further). Before each scan it tries the block after
 *   the previous match right where the search stands (unchanged runs then cost no scan). Windows are
 *   independent tasks, greedy from their own start; the caller stitches them (filerun.ts delta()) and
 *   rescans a window from the right position in the rare case they disagree. With `signEnd`, the task
 *   also returns the new file's signature of the window's blocks.
 * The old file's signature arrives in shared memory (no copy per task); each worker keeps the WASM
 * hash table of the last few signatures it saw (TABLE_CACHE), keyed by the caller's signature id.
 */
import * as crypto from 'node:crypto';
import { createHash } from 'node:crypto';
import type { Kernel, SignatureTable } from '../../../wasm/index.js';
import { STRONG_LEN } from './format.js';

export interface DeltaTask {
  blockSize: number;
  /** Unique id of the signature (the cache key). */
  sigId: string;
  /** weak:u32 x blocks, then strong:STRONG_LEN x blocks (a SharedArrayBuffer view). */
  sig: Uint8Array;
  blocks: number;
  /** Length of the old file's last block (blockSize when the old size is a multiple of it). */
  lastLen: number;
  /** The window reaches the end of the new file: decide everything, try the short last block. */
  final: boolean;
  /**
   * Also return the new file's signature for the blocks of data[0, signEnd) (to the end when final):
   * the window starts on a block boundary of the new file and the new signature uses the same block
   * size, so confirmed matches on block boundaries give their strong sums for free. 0: no signature.
   */
  signEnd: number;
  /** Fine sums of the new signature (with signEnd; fineSize 0: none). */
  fineSize: number;
  fineSeed: Uint8Array;
  data: Uint8Array;
}

/** TABLE_CACHE: signatures kept per worker; a backup works on one file at a time, two is plenty (a table of 1M blocks takes ~17 MiB of the instance). */
const TABLE_CACHE = 2;
interface Cached { table: SignatureTable; strongs: Uint8Array; next: Int32Array }
const cache = new Map<string, Cached>();
/** SUB_SCAN: offsets per rolling scan call between fast-path attempts (a scan call costs a copy into
 * the WASM memory; 256 KiB keeps that small next to the scan while a change is rarely much longer). */
const SUB_SCAN = 256 << 10;

/** oneShot: crypto.hash (Node >= 20.12) skips the Hash object: 1.5x faster on 700-byte blocks. */
const oneShot = (crypto as { hash?: (alg: string, data: Uint8Array, enc: 'buffer') => Buffer }).hash;

function strongOf(data: Uint8Array, start: number, end: number): Buffer {
  const view = data.subarray(start, end);
  return oneShot ? oneShot('sha256', view, 'buffer') : createHash('sha256').update(view).digest();
}

function sameStrong(h: Buffer, strongs: Uint8Array, block: number): boolean {
  const o = block * STRONG_LEN;
  for (let i = 0; i < STRONG_LEN; i++) if (h[i] !== strongs[o + i]) return false;
  return true;
}

/** FineSpec: the sub-block size and XXH64 seed of a new signature's fine sums (size 0: none). */
export interface FineSpec {
  fineSize: number;
  fineSeed: Uint8Array;
}

/**
 * signatureOf returns weak:u32 x n, then strong x n for the blocks of `data` (the last may be short),
 * then the fine sums of its sub-blocks (FINE_LEN bytes each) when fineSize > 0. `data` starts on a
 * block boundary of the file.
 */
export function signatureOf(k: Kernel, data: Uint8Array, blockSize: number, fine?: FineSpec): Uint8Array {
  const weaks = k.blockSignature(data, blockSize);
  const n = weaks.length;
  const sums = fine && fine.fineSize > 0 ? k.fineSums(data, blockSize, fine.fineSize, fine.fineSeed) : null;
  const out = new Uint8Array(n * (4 + STRONG_LEN) + (sums?.length ?? 0));
  out.set(new Uint8Array(weaks.buffer, weaks.byteOffset, n * 4), 0);
  for (let i = 0; i < n; i++) {
    const h = strongOf(data, i * blockSize, Math.min(data.length, (i + 1) * blockSize));
    out.set(h.subarray(0, STRONG_LEN), n * 4 + i * STRONG_LEN);
  }
  if (sums) out.set(sums, n * (4 + STRONG_LEN));
  return out;
}

function tableFor(k: Kernel, t: DeltaTask): Cached {
  const hit = cache.get(t.sigId);
  if (hit) return hit;
  // Only full-size blocks go in the table: the scan sums blockSize-byte windows, and the short last
  // block is matched against the end of the file separately.
  const full = t.lastLen === t.blockSize ? t.blocks : t.blocks - 1;
  const weaks = new Uint32Array(full);
  new Uint8Array(weaks.buffer).set(t.sig.subarray(0, full * 4));
  const table = k.signatureTable(weaks, t.blockSize);
  const entry = { table, strongs: t.sig.subarray(t.blocks * 4), next: table.nextSameWeak };
  cache.set(t.sigId, entry);
  if (cache.size > TABLE_CACHE) {
    const [oldest, old] = cache.entries().next().value as [string, Cached];
    old.table.dispose();
    cache.delete(oldest);
  }
  return entry;
}

/**
 * deltaWindow returns u32 [count, next, sigBlocks, (offset, block, length) x count, weak x sigBlocks],
 * then strong sums (STRONG_LEN bytes x sigBlocks), then the fine sums of those blocks (FINE_LEN bytes
 * each, when t.fineSize > 0): confirmed matches inside the window (offsets relative
 * to it, ascending, not overlapping), the window offset up to which everything is decided (bytes before
 * it not covered by a match are literals), and the new signature's blocks (see DeltaTask.signEnd).
 */
export function deltaWindow(k: Kernel, t: DeltaTask): Uint32Array {
  const bs = t.blockSize;
  const len = t.data.length;
  const found: number[] = [];
  const aligned = new Map<number, Buffer>();
  let p = 0;
  let want = -1;
  const full = t.lastLen === bs ? t.blocks : t.blocks - 1;
  if (full > 0 && len >= bs) {
    const c = tableFor(k, t);
    const hashAt = (off: number): Buffer => {
      let h = aligned.get(off);
      if (h) return h;
      h = strongOf(t.data, off, off + bs);
      if (off % bs === 0) aligned.set(off, h);
      return h;
    };
    while (p + bs <= len) {
      // Fast path: the block after the previous match, right at p (what the greedy search would take
      // first at p anyway). Unchanged runs of a file then cost one strong sum per block, no scan.
      if (want >= 0 && want < full && sameStrong(hashAt(p), c.strongs, want)) {
        found.push(p, want, bs);
        p += bs;
        want++;
        continue;
      }
      const end = Math.min(len, p + SUB_SCAN + bs - 1);
      const m = c.table.scan(t.data.subarray(p, end));
      let hit = false;
      for (let i = 0; i < m.offsets.length && !hit; i++) {
        const off = p + m.offsets[i];
        const h = hashAt(off);
        let chosen = -1;
        for (let b = m.blocks[i]; b !== -1; b = c.next[b]) {
          if (!sameStrong(h, c.strongs, b)) continue;
          if (chosen < 0) chosen = b;
          if (b === want) { chosen = b; break; }
        }
        if (chosen < 0) continue;
        found.push(off, chosen, bs);
        p = off + bs;
        want = chosen + 1;
        hit = true;
      }
      if (!hit) p = end - bs + 1; // every offset in [p, end - bs] was examined
    }
  }
  let next = t.final ? len : Math.max(p, len - bs + 1);
  if (t.final && t.lastLen < bs && t.lastLen > 0) {
    const tail = len - t.lastLen;
    if (tail >= p && tail >= 0) {
      const strongs = t.sig.subarray(t.blocks * 4);
      if (sameStrong(strongOf(t.data, tail, len), strongs, t.blocks - 1)) found.push(tail, t.blocks - 1, t.lastLen);
    }
    next = len;
  }
  const signLen = t.signEnd > 0 ? (t.final ? len : Math.min(len, t.signEnd)) : 0;
  const n = signLen > 0 ? Math.ceil(signLen / bs) : 0;
  const fine = n > 0 && t.fineSize > 0 ? k.fineSums(t.data.subarray(0, signLen), bs, t.fineSize, t.fineSeed) : null;
  const out = new Uint32Array(3 + found.length + n * (1 + STRONG_LEN / 4) + (fine ? fine.length / 4 : 0));
  out[0] = found.length / 3;
  out[1] = next;
  out[2] = n;
  out.set(found, 3);
  if (n > 0) {
    const at = 3 + found.length;
    out.set(k.blockSignature(t.data.subarray(0, signLen), bs), at);
    const strongs = new Uint8Array(out.buffer, (at + n) * 4, n * STRONG_LEN);
    for (let i = 0; i < n; i++) {
      const h = aligned.get(i * bs) ?? strongOf(t.data, i * bs, Math.min(signLen, (i + 1) * bs));
      strongs.set(h.subarray(0, STRONG_LEN), i * STRONG_LEN);
    }
    if (fine) new Uint8Array(out.buffer, (at + n) * 4 + n * STRONG_LEN, fine.length).set(fine);
  }
  return out;
}
