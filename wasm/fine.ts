/**
 * Fine sums on a Kernel (wasm/assembly/fine.ts): seeded XXH64 of each sub-block of a file's blocks,
 * which the rsync engine keeps next to its block signature so a delta can copy the unchanged parts of
 * a block that did not match whole.
 *
 * Grid: blocks of n bytes from the file's start, each cut into sub-blocks of f bytes from the block's
 * start (the last of a block shorter when f does not divide n; the last of the file where it ends).
 * `first` says where in its block the buffer starts (a sub-block start), so any run of whole sub-blocks
 * can be summed, not only a whole file.
 */
import { KernelError, KernelErrorCode } from './errors.js';
import { WINDOW, type KernelInstance } from './instance.js';
import { checkBlockSize } from './rollsum.js';

/** FINE_LEN: bytes per fine sum (XXH64, little-endian). */
export const FINE_LEN = 8;

/** fineCount is the number of sub-blocks of `len` bytes that start `first` bytes into a block. */
export function fineCount(len: number, n: number, f: number, first = 0): number {
  if (len <= 0) return 0;
  const head = Math.min(len, n - first);
  const rest = len - head;
  const perBlock = Math.ceil(n / f);
  return Math.ceil(head / f) + Math.floor(rest / n) * perBlock + Math.ceil((rest % n) / f);
}

function checkGrid(n: number, f: number, first: number): void {
  checkBlockSize(n);
  if (!Number.isInteger(f) || f < 1 || f > n) {
    throw new KernelError(KernelErrorCode.INPUT, `fine size must be an integer in [1, ${n}], got ${f}`);
  }
  if (!Number.isInteger(first) || first < 0 || first >= n || first % f !== 0) {
    throw new KernelError(KernelErrorCode.INPUT, `fine sums: start ${first} is not a sub-block start of a ${n}-byte block`);
  }
}

/** seedHalves splits an 8-byte seed (little-endian) into the two u32 the module takes. */
function seedHalves(seed: Uint8Array): [number, number] {
  if (seed.length !== 8) throw new KernelError(KernelErrorCode.INPUT, `fine sums: the seed has ${seed.length} bytes, 8 expected`);
  const v = new DataView(seed.buffer, seed.byteOffset, 8);
  return [v.getUint32(0, true), v.getUint32(4, true)];
}

/**
 * fineSums returns the fine sums (FINE_LEN bytes each, in order) of buf, whose first byte is `first`
 * bytes into a block of n bytes, cut into sub-blocks of f bytes; `seed` is 8 bytes.
 */
export function fineSums(k: KernelInstance, buf: Uint8Array, n: number, f: number, seed: Uint8Array, first = 0): Uint8Array {
  checkGrid(n, f, first);
  const [lo, hi] = seedHalves(seed);
  const total = fineCount(buf.length, n, f, first);
  const out = new Uint8Array(total * FINE_LEN);
  let at = 0;
  let inBlock = first;
  for (let s = 0; s < buf.length;) {
    // whole blocks per call (the first one from `first`), about WINDOW bytes: calls end on block ends
    const len = Math.min(buf.length - s, n - inBlock + Math.max(0, Math.floor(WINDOW / n) - 1) * n);
    const count = fineCount(len, n, f, inBlock);
    const [p, o] = k.scratch(len, count * FINE_LEN);
    k.bytes(p, len).set(buf.subarray(s, s + len));
    const got = k.call('fineSums', (x) => x.fineSums(p, len, n, f, inBlock, lo, hi, o));
    if (got !== count) throw new KernelError(KernelErrorCode.TRAP, `fineSums: the module wrote ${got} sums, ${count} expected`);
    out.set(k.bytes(o, count * FINE_LEN), at * FINE_LEN);
    at += count;
    s += len;
    inBlock = 0;
  }
  return out;
}

/** xxh64 is XXH64 of the whole buffer (at most 64 MiB) with a 64-bit seed. */
export function xxh64(k: KernelInstance, buf: Uint8Array, seed: bigint): bigint {
  if (buf.length > WINDOW * 64) throw new KernelError(KernelErrorCode.INPUT, 'xxh64: buffer larger than 64 MiB');
  const [p] = k.scratch(Math.max(1, buf.length));
  k.bytes(p, buf.length).set(buf);
  return BigInt.asUintN(64, k.call('xxh64', (x) => x.xxh64(p, buf.length, BigInt.asUintN(64, seed))));
}
