/**
 * Output chunks and hole detection for the tar writer.
 *
 * ChunkWriter packs the archive into fixed-size buffers that the stream hands downstream; file data is
 * read straight into them, so the data path copies nothing. A buffer is never written again once taken,
 * so consumers may keep it (queues, parallel compressors) without copying; with a SlotPool, buffers are
 * the pool's slots (when one is free), written again only after their last consumer gave them back.
 *
 * SparseScanner finds the data regions of a file the way GNU tar's raw hole detection does: every
 * all-zero 512-byte block is a hole, runs of other blocks are data.
 */
import type { SlotPool } from '../../pipeline/slots.js';
import { BLOCK, type SparseChunk } from './header.js';

/** ZERO_SPAN: the largest run compared in one memcmp; matches the writer's largest read. */
export const ZERO_SPAN = 1 << 20;
const ZEROS = Buffer.alloc(ZERO_SPAN);

/** isZero: `len` (at most ZERO_SPAN) zero bytes at `off`. Probes two bytes first: data rarely passes. */
export function isZero(buf: Buffer, off: number, len: number): boolean {
  if (len === 0) return true;
  if (buf[off] !== 0 || buf[off + len - 1] !== 0) return false;
  return buf.compare(ZEROS, 0, len, off, off + len) === 0;
}

/** ChunkWriter: see the file comment. `size` is the length of every buffer but the last. */
export class ChunkWriter {
  /** Bytes written so far. */
  total = 0;
  readonly #size: number;
  readonly #slots: SlotPool | null;
  #buf: Buffer;
  #pos = 0;
  #ready: Buffer[] = [];

  /** `slots`: take buffers from this pool while it has free ones (`size` must be its slot size). */
  constructor(size: number, slots: SlotPool | null = null) {
    if (slots && slots.slotSize !== size) throw new RangeError('chunk size must be the slot size');
    this.#size = size;
    this.#slots = slots;
    this.#buf = this.#fresh();
  }

  #fresh(): Buffer {
    return this.#slots?.take() ?? Buffer.allocUnsafe(this.#size);
  }

  write(data: Buffer): void {
    for (let off = 0; off < data.length;) {
      const n = Math.min(data.length - off, this.#size - this.#pos);
      data.copy(this.#buf, this.#pos, off, off + n);
      off += n;
      this.commit(n);
    }
  }

  zeros(count: number): void {
    while (count > 0) {
      const n = Math.min(count, this.#size - this.#pos);
      this.#buf.fill(0, this.#pos, this.#pos + n);
      count -= n;
      this.commit(n);
    }
  }

  /** window returns the free part of the current buffer, at most `max` bytes and never empty; then commit. */
  window(max: number): { buf: Buffer; offset: number; length: number } {
    return { buf: this.#buf, offset: this.#pos, length: Math.min(max, this.#size - this.#pos) };
  }

  /** commit accounts `n` bytes placed in the current window. */
  commit(n: number): void {
    this.#pos += n;
    this.total += n;
    if (this.#pos === this.#size) {
      this.#ready.push(this.#buf);
      this.#buf = this.#fresh();
      this.#pos = 0;
    }
  }

  get hasReady(): boolean {
    return this.#ready.length > 0;
  }

  /** take hands over the full buffers. */
  take(): Buffer[] {
    const r = this.#ready;
    this.#ready = [];
    return r;
  }

  /** rest returns the partly filled last buffer; call once, at the end. */
  rest(): Buffer | null {
    return this.#pos > 0 ? this.#buf.subarray(0, this.#pos) : null;
  }
}

/**
 * SparseScanner builds a file's sparse map from its bytes, fed in order. The map ends as tar's does: with
 * the last data chunk or, when the file ends in a hole, a (size, 0) entry that tells the extractor the
 * real size.
 */
export class SparseScanner {
  readonly #map: SparseChunk[] = [];
  #cur: SparseChunk | null = null;

  /** feed scans `len` bytes at the start of `buf`, found at file offset `pos` (a multiple of 512). */
  feed(buf: Buffer, len: number, pos: number): void {
    if (len <= ZERO_SPAN && isZero(buf, 0, len)) { // inside a hole: one memcmp instead of one per block
      this.#endChunk();
      return;
    }
    for (let off = 0; off < len; off += BLOCK) {
      const n = Math.min(BLOCK, len - off);
      if (isZero(buf, off, n)) this.#endChunk();
      else if (this.#cur) this.#cur.size += n;
      else this.#cur = { offset: pos + off, size: n };
    }
  }

  finish(realSize: number): SparseChunk[] {
    this.#map.push(this.#cur ?? { offset: realSize, size: 0 });
    this.#cur = null;
    return this.#map;
  }

  #endChunk(): void {
    if (this.#cur) this.#map.push(this.#cur);
    this.#cur = null;
  }
}

/** hasHoles: the map leaves part of the file out (else the file is better stored as a plain member). */
export function hasHoles(map: SparseChunk[], size: number): boolean {
  return map.length > 1 || map[0].offset > 0 || map[0].size < size;
}
