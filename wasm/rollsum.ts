/**
 * rsync weak rolling checksum on a Kernel: sums at every offset, block signatures, and the weak-match
 * scan against a signature table (the kernel side of rsync's delta search).
 *
 * Checksum definition (wasm/assembly/rollsum.ts): unsigned bytes, no character offset, a and b mod 2^16,
 * weak = (b << 16) | a: librsync's rollsum with ROLLSUM_CHAR_OFFSET = 0, not rsync's get_checksum1
 * (which sign-extends bytes >= 0x80).
 *
 * The scan reports EVERY window whose weak sum is in the table, as (offset, first block index) pairs,
 * and never skips: the caller computes the strong hash of a candidate, walks `nextSameWeak` for blocks
 * sharing the weak sum, and applies rsync's skip (jump one block after a confirmed match) itself. A
 * kernel that skipped internally would have to be re-entered after every strong-hash mismatch (measured
 * 5-15 MB/s); this one runs at memory speed and leaves the rare candidates to the caller.
 */
import { KernelError, KernelErrorCode } from './errors.js';
import { WINDOW, type KernelInstance } from './instance.js';

/** MAX_BLOCK_SIZE: a sanity bound on the window length (rsync's own maximum block is 128 KiB). */
export const MAX_BLOCK_SIZE = 1 << 24;

/** WeakMatches: pair k is window offset base + offsets[k] matching block blocks[k] (ascending offsets). */
export interface WeakMatches {
  /** Stream offset that `offsets` are relative to (0 for a one-shot scan). */
  base: number;
  offsets: Uint32Array;
  blocks: Uint32Array;
}

export function checkBlockSize(n: number): void {
  if (!Number.isInteger(n) || n < 1 || n > MAX_BLOCK_SIZE) {
    throw new KernelError(KernelErrorCode.INPUT, `block size must be an integer in [1, ${MAX_BLOCK_SIZE}], got ${n}`);
  }
}

/** weakSum returns the weak sum of the whole buffer (one window). */
export function weakSum(k: KernelInstance, buf: Uint8Array): number {
  if (buf.length === 0) return 0;
  if (buf.length > WINDOW * 64) throw new KernelError(KernelErrorCode.INPUT, 'weakSum: buffer larger than 64 MiB');
  const [p] = k.scratch(buf.length);
  k.bytes(p, buf.length).set(buf);
  return k.call('weakSum', (x) => x.weakSum(p, buf.length)) >>> 0;
}

/**
 * rollingChecksums returns out[i] = weak sum of buf[i .. i + blockSize) for i in [0, len - blockSize]
 * (empty when the buffer is shorter than a block), in `out` when given (at least that long; reuse it
 * to spare the allocation and its page faults) or in a new array. The output is 4 bytes per input
 * byte, copied out of the instance: at SIMD speed that copy costs about as much as the computation
 * (use the scan instead when only matches matter).
 */
export function rollingChecksums(k: KernelInstance, buf: Uint8Array, blockSize: number, out?: Uint32Array): Uint32Array {
  checkBlockSize(blockSize);
  const total = Math.max(0, buf.length - blockSize + 1);
  if (out && out.length < total) {
    throw new KernelError(KernelErrorCode.INPUT, `rollingChecksums: out holds ${out.length} sums, ${total} needed`);
  }
  out = out ? out.subarray(0, total) : new Uint32Array(total);
  const step = Math.max(WINDOW, 4 * blockSize);
  for (let s = 0; s < total; s += step) {
    const count = Math.min(step, total - s);
    const len = count + blockSize - 1;
    const [p, o] = k.scratch(len, count * 4);
    k.bytes(p, len).set(buf.subarray(s, s + len));
    k.call('rollingChecksums', (x) => x.rollingChecksums(p, len, blockSize, o));
    out.set(k.u32(o, count), s);
  }
  return out;
}

/** blockSignature returns the weak sums of consecutive blocks of blockSize bytes (the last may be short). */
export function blockSignature(k: KernelInstance, buf: Uint8Array, blockSize: number): Uint32Array {
  checkBlockSize(blockSize);
  const out = new Uint32Array(Math.ceil(buf.length / blockSize));
  const per = Math.max(1, Math.floor(WINDOW / blockSize)) * blockSize;
  for (let s = 0; s < buf.length; s += per) {
    const len = Math.min(per, buf.length - s);
    const count = Math.ceil(len / blockSize);
    const [p, o] = k.scratch(len, count * 4);
    k.bytes(p, len).set(buf.subarray(s, s + len));
    k.call('blockSums', (x) => x.blockSums(p, len, blockSize, o));
    out.set(k.u32(o, count), s / blockSize);
  }
  return out;
}

/**
 * SignatureTable holds the weak sums of a file's blocks in the instance's memory (hash table plus a
 * bit filter in front of it), for scans of new data. Build it once per file and scan every buffer of
 * the file through a BlockScanner. dispose() frees its memory.
 */
export class SignatureTable {
  readonly blockSize: number;
  readonly count: number;
  /**
   * nextSameWeak[i] is the next block (ascending) with the same weak sum as block i, or -1. The scan
   * reports the first block of each weak sum; follow this chain to try the others.
   */
  readonly nextSameWeak: Int32Array;
  readonly #k: KernelInstance;
  readonly #slotBits: number;
  readonly #filterBits: number;
  #table = 0;
  #filter = 0;

  constructor(k: KernelInstance, weaks: Uint32Array, blockSize: number) {
    checkBlockSize(blockSize);
    this.#k = k;
    this.blockSize = blockSize;
    this.count = weaks.length;
    // 2 slots per block at least: linear probes stay short. Filter: 64 bits per block (false positives
    // ~1.5%, each costing a table probe), 2^16 (8 KiB) to 2^23 bits (1 MiB: past that the filter leaves
    // L2 and every test misses the cache). Measured on 4096 and 65536 blocks: 16 bits per block ran at
    // 0.7x of 64, 256 bits at 1.0x for 4096 blocks but 0.65x for 65536.
    this.#slotBits = Math.max(4, Math.ceil(Math.log2(Math.max(1, weaks.length) * 2)));
    this.#filterBits = Math.min(23, Math.max(16, Math.ceil(Math.log2(Math.max(1, weaks.length) * 64))));
    if (this.#slotBits > 30) throw new KernelError(KernelErrorCode.INPUT, 'signature table: too many blocks');
    this.#table = k.alloc(8 * 2 ** this.#slotBits, this);
    this.#filter = k.alloc(2 ** (this.#filterBits - 3), this);
    const [w, nx] = k.scratch(weaks.length * 4, weaks.length * 4);
    k.u32(w, weaks.length).set(weaks);
    k.call('tableBuild', (x) => x.tableBuild(w, weaks.length, this.#table, this.#slotBits, this.#filter,
      this.#filterBits, nx));
    this.nextSameWeak = new Int32Array(k.u32(nx, weaks.length).buffer, nx, weaks.length).slice();
  }

  /** scan reports every window of buf matching a block's weak sum (one-shot; see BlockScanner). */
  scan(buf: Uint8Array): WeakMatches {
    return this.scanner().push(buf);
  }

  /** scanner starts a streaming scan over a sequence of buffers (offsets relative to the stream). */
  scanner(): BlockScanner {
    return new BlockScanner(this);
  }

  /** dispose frees the table's memory in the kernel. Idempotent. */
  dispose(): void {
    this.#k.release(this);
    if (this.#table) this.#k.free(this.#table);
    if (this.#filter) this.#k.free(this.#filter);
    this.#table = this.#filter = 0;
  }

  /** @internal runs the scan kernel over `len` bytes already copied to p; returns the pair count. */
  run(p: number, len: number, sums: number, out: number): number {
    if (!this.#table) throw new KernelError(KernelErrorCode.DISPOSED, 'signature table used after dispose()');
    return this.#k.call('scan', (x) => x.scan(p, len, this.blockSize, this.#table, this.#slotBits,
      this.#filter, this.#filterBits, sums, out));
  }

  /** @internal */
  get kernel(): KernelInstance {
    return this.#k;
  }
}

/**
 * BlockScanner scans a stream fed in buffers split anywhere: push() reports each window once, as soon
 * as its last byte has arrived, so windows that straddle two buffers are found too. It keeps the last
 * blockSize - 1 bytes between calls. Windows shorter than a block at the end of the stream are never
 * reported: compare the stream's tail with the short last block of the signature yourself.
 */
export class BlockScanner {
  readonly #t: SignatureTable;
  #carry: Uint8Array = new Uint8Array(0);
  #streamed = 0;

  constructor(table: SignatureTable) {
    this.#t = table;
  }

  /** push scans carry + buf; offsets in the result are relative to `base` (a stream offset). */
  push(buf: Uint8Array): WeakMatches {
    const n = this.#t.blockSize;
    const k = this.#t.kernel;
    const carry = this.#carry;
    const dataLen = carry.length + buf.length;
    const base = this.#streamed - carry.length;
    this.#streamed += buf.length;
    const total = dataLen - n + 1;
    const parts: { offsets: Uint32Array; blocks: Uint32Array }[] = [];
    const scratchBytes = k.x.scanScratchBytes();
    for (let s = 0; s < total; s += WINDOW) {
      const count = Math.min(WINDOW, total - s);
      const len = count + n - 1;
      const [p, sums, out] = k.scratch(len, scratchBytes, count * 8);
      copyRange(k.bytes(p, len), carry, buf, s);
      const found = this.#t.run(p, len, sums, out);
      if (found > 0) parts.push(splitPairs(k.u32(out, found * 2), s));
    }
    this.#carry = sliceTail(carry, buf, Math.max(0, total), dataLen);
    return concat(base, parts);
  }
}

/** copyRange fills dst with the bytes [start, start + dst.length) of the concatenation a ++ b. */
function copyRange(dst: Uint8Array, a: Uint8Array, b: Uint8Array, start: number): void {
  let filled = 0;
  if (start < a.length) {
    const piece = a.subarray(start, Math.min(a.length, start + dst.length));
    dst.set(piece);
    filled = piece.length;
  }
  if (filled < dst.length) {
    const from = Math.max(0, start - a.length);
    dst.set(b.subarray(from, from + dst.length - filled), filled);
  }
}

/** sliceTail copies the bytes [from, end) of a ++ b into a new array. */
function sliceTail(a: Uint8Array, b: Uint8Array, from: number, end: number): Uint8Array {
  const out = new Uint8Array(end - from);
  copyRange(out, a, b, from);
  return out;
}

function splitPairs(pairs: Uint32Array, shift: number): { offsets: Uint32Array; blocks: Uint32Array } {
  const count = pairs.length / 2;
  const offsets = new Uint32Array(count);
  const blocks = new Uint32Array(count);
  for (let i = 0; i < count; i++) {
    offsets[i] = pairs[2 * i] + shift;
    blocks[i] = pairs[2 * i + 1];
  }
  return { offsets, blocks };
}

function concat(base: number, parts: { offsets: Uint32Array; blocks: Uint32Array }[]): WeakMatches {
  if (parts.length === 1) return { base, ...parts[0] };
  const total = parts.reduce((sum, p) => sum + p.offsets.length, 0);
  const offsets = new Uint32Array(total);
  const blocks = new Uint32Array(total);
  let at = 0;
  for (const p of parts) {
    offsets.set(p.offsets, at);
    blocks.set(p.blocks, at);
    at += p.offsets.length;
  }
  return { base, offsets, blocks };
}
