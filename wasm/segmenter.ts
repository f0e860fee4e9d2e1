/**
 * Segmenters: where a byte stream is cut into chunks. CdcSegmenter is FastCDC (gear hash, normalized
 * chunking) on a Kernel, keyed by a per-repository secret; FixedSegmenter cuts every `size` bytes and
 * exists to compare against (plain TypeScript: there is nothing to compute).
 *
 * Feeding contract (both): push(buf) consumes the whole buffer and returns the chunk ends found in it,
 * as offsets in buf (exclusive ends, ascending); the chunk in progress carries over to the next push,
 * so any split of a stream into buffers yields the same cuts. At the end of the stream the last chunk
 * is the `pending` bytes after the last cut (none if pending is 0).
 *
 * The gear table is derived from the repository key (gearTable): an observer who does not know the key
 * cannot predict cut points from content (fingerprinting by chunk lengths). The derivation is a
 * persisted definition: changing it changes every cut point, hence deduplication across versions.
 */
import { createHmac } from 'node:crypto';
import { KernelError, KernelErrorCode } from './errors.js';
import { WINDOW, type KernelInstance } from './instance.js';

/** Segmenter is the common interface of the content-defined and fixed-size cutters. */
export interface Segmenter {
  /** push consumes buf and returns the chunk ends inside it (offsets in buf, ascending, exclusive). */
  push(buf: Uint8Array): Uint32Array;
  /** pending is the number of bytes of the chunk in progress (the last chunk at end of stream). */
  readonly pending: number;
  /** reset forgets the chunk in progress (next push starts a new stream). */
  reset(): void;
}

/** CdcOptions: chunk sizes in bytes and FastCDC's normalization level. */
export interface CdcOptions {
  /** No cut before this many bytes (and no hashing: FastCDC's cut-point skipping). At least 64. */
  minSize: number;
  /** Where the masks switch from hard to easy; rounded to a power of two for the mask widths. */
  avgSize: number;
  /** A chunk is cut at this size if no content cut was found. At most 2^31. */
  maxSize: number;
  /** FastCDC normalization level 0..3 (default 2): maskS has log2(avg)+level bits, maskL log2(avg)-level. */
  normalization?: number;
}

/** CdcParams are the validated options with the mask widths the kernel uses. */
export interface CdcParams {
  minSize: number;
  avgSize: number;
  maxSize: number;
  bitsS: number;
  bitsL: number;
}

/** cdcParams validates options (KernelError INPUT) and derives the mask widths (kept within 1..32). */
export function cdcParams(o: CdcOptions): CdcParams {
  const bad = (msg: string) => new KernelError(KernelErrorCode.INPUT, `cdc: ${msg}`);
  for (const name of ['minSize', 'avgSize', 'maxSize'] as const) {
    if (!Number.isInteger(o[name])) throw bad(`${name} must be an integer`);
  }
  if (o.minSize < 64) throw bad('minSize must be at least 64');
  if (!(o.minSize <= o.avgSize && o.avgSize <= o.maxSize && o.minSize < o.maxSize)) {
    throw bad('sizes must satisfy minSize <= avgSize <= maxSize and minSize < maxSize');
  }
  if (o.maxSize > 2 ** 31) throw bad('maxSize must be at most 2^31');
  const level = o.normalization ?? 2;
  if (!Number.isInteger(level) || level < 0 || level > 3) throw bad('normalization must be 0, 1, 2 or 3');
  const bits = Math.round(Math.log2(o.avgSize));
  return {
    minSize: o.minSize,
    avgSize: o.avgSize,
    maxSize: o.maxSize,
    bitsS: Math.min(32, bits + level),
    bitsL: Math.max(1, Math.min(32, bits - level)),
  };
}

/** GEAR_TABLE_BYTES: 256 entries of 8 bytes. */
export const GEAR_TABLE_BYTES = 2048;

/**
 * gearTable derives the gear table from a repository secret: entry i (a little-endian u64) is the first
 * 8 bytes of HMAC-SHA256(key, [i]) (the message is the single byte i). The key must be at least 16 bytes.
 */
export function gearTable(key: Uint8Array): Uint8Array {
  if (!(key instanceof Uint8Array) || key.length < 16) {
    throw new KernelError(KernelErrorCode.INPUT, 'cdc: the gear key must be at least 16 bytes');
  }
  const out = new Uint8Array(GEAR_TABLE_BYTES);
  for (let i = 0; i < 256; i++) {
    out.set(createHmac('sha256', key).update(Uint8Array.of(i)).digest().subarray(0, 8), i * 8);
  }
  return out;
}

/** CdcSegmenter runs FastCDC in a Kernel. Gear table and chunk state live in the instance's memory. */
export class CdcSegmenter implements Segmenter {
  readonly params: CdcParams;
  readonly #k: KernelInstance;
  #gear = 0;
  #state = 0;

  /** gear: a table from gearTable(key) (2048 bytes). */
  constructor(k: KernelInstance, gear: Uint8Array, options: CdcOptions) {
    if (!(gear instanceof Uint8Array) || gear.length !== GEAR_TABLE_BYTES) {
      throw new KernelError(KernelErrorCode.INPUT, `cdc: the gear table must be ${GEAR_TABLE_BYTES} bytes`);
    }
    this.params = cdcParams(options);
    this.#k = k;
    this.#gear = k.alloc(GEAR_TABLE_BYTES, this);
    this.#state = k.alloc(16, this);
    k.bytes(this.#gear, GEAR_TABLE_BYTES).set(gear);
    this.reset();
  }

  get pending(): number {
    return this.#live().u32(this.#state + 8, 1)[0];
  }

  reset(): void {
    this.#live().bytes(this.#state, 16).fill(0);
  }

  push(buf: Uint8Array): Uint32Array {
    const k = this.#live();
    const { minSize, avgSize, maxSize, bitsS, bitsL } = this.params;
    const parts: Uint32Array[] = [];
    for (let s = 0; s < buf.length; s += WINDOW) {
      const len = Math.min(WINDOW, buf.length - s);
      const [p, out] = k.scratch(len, (Math.floor(len / minSize) + 2) * 4);
      k.bytes(p, len).set(buf.subarray(s, s + len));
      const n = k.call('cdcCuts', (x) => x.cdcCuts(p, len, this.#gear, this.#state, minSize, avgSize,
        maxSize, bitsS, bitsL, out));
      if (n > 0) parts.push(k.u32(out, n).map((c) => c + s));
    }
    return concatU32(parts);
  }

  /** dispose frees the table and state in the kernel. Idempotent. */
  dispose(): void {
    this.#k.release(this);
    if (this.#gear) this.#k.free(this.#gear);
    if (this.#state) this.#k.free(this.#state);
    this.#gear = this.#state = 0;
  }

  #live(): KernelInstance {
    if (!this.#gear) throw new KernelError(KernelErrorCode.DISPOSED, 'cdc segmenter used after dispose()');
    return this.#k;
  }
}

/** FixedSegmenter cuts every `size` bytes of the stream. */
export class FixedSegmenter implements Segmenter {
  readonly size: number;
  #pos = 0;

  constructor(size: number) {
    if (!Number.isInteger(size) || size < 1) {
      throw new KernelError(KernelErrorCode.INPUT, 'fixed segmenter: size must be a positive integer');
    }
    this.size = size;
  }

  get pending(): number {
    return this.#pos;
  }

  reset(): void {
    this.#pos = 0;
  }

  push(buf: Uint8Array): Uint32Array {
    const first = this.size - this.#pos;
    const count = first > buf.length ? 0 : 1 + Math.floor((buf.length - first) / this.size);
    const cuts = new Uint32Array(count);
    for (let i = 0; i < count; i++) cuts[i] = first + i * this.size;
    this.#pos = count === 0 ? this.#pos + buf.length : buf.length - cuts[count - 1];
    return cuts;
  }
}

function concatU32(parts: Uint32Array[]): Uint32Array {
  if (parts.length === 1) return parts[0];
  const out = new Uint32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
