/**
 * SlotPool: a fixed set of page-aligned buffers, shared with worker threads, that the data path fills,
 * passes along and gets back, instead of allocating a new buffer for every chunk.
 *
 * Why: an uncompressed, unencrypted backup moves every byte from the files to the store, and each fresh
 * 2 MiB buffer cost page faults to fill (~60k per GiB here), a copy into O_DIRECT's aligned stages
 * (~80 ms per GiB on the main thread) and garbage. A slot is allocated once and stays warm; being
 * page-aligned, O_DIRECT writes it where it is; being shared memory, postMessage passes it to the
 * sealing thread and back without transferring (detaching) or copying it.
 *
 * Contract: take() hands out a whole slot, or null when every slot is out (the caller then allocates as
 * before). The last consumer of a slot's bytes gives it back with give() once it no longer needs them:
 * local storage after writing it. A slot that is never given back is only lost to the pool, so a pool
 * must feed a chain with exactly one last consumer (one storage, not a tee). Slots are views of one
 * shared WebAssembly.Memory (whose backing store is page-aligned, unlike a Buffer's).
 */

/** The pool each shared memory belongs to, so any stage can tell a slot from an ordinary buffer. */
const pools = new WeakMap<ArrayBufferLike, SlotPool>();

const WASM_PAGE = 65536;
/** ALIGN: every slot starts on a 4 KiB boundary (O_DIRECT's largest logical block size). */
const ALIGN = 4096;

export class SlotPool {
  readonly slotSize: number;
  readonly count: number;
  readonly #memory: SharedArrayBuffer;
  /** Free slots, the most recently given back last (taken first: its pages are the warmest). */
  readonly #free: number[];
  /** #out[i] = 1 while slot i is handed out (a second give() of it is ignored). */
  readonly #out: Uint8Array;

  /**
   * create reserves `count` slots of `slotSize` bytes (a multiple of 4096), or returns null where the
   * shared memory cannot be had (an address-space limit): the caller then allocates as before.
   */
  static create(slotSize: number, count: number): SlotPool | null {
    if (!Number.isInteger(slotSize) || slotSize <= 0 || slotSize % ALIGN !== 0) throw new RangeError('slot size must be a positive multiple of 4096');
    if (!Number.isInteger(count) || count < 1) throw new RangeError('slot count must be a positive integer');
    const pages = Math.ceil((slotSize * count) / WASM_PAGE);
    let memory: WebAssembly.Memory;
    try {
      memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
    } catch {
      return null; // RangeError: could not allocate memory
    }
    return new SlotPool(memory.buffer as unknown as SharedArrayBuffer, slotSize, count);
  }

  private constructor(memory: SharedArrayBuffer, slotSize: number, count: number) {
    this.#memory = memory;
    this.slotSize = slotSize;
    this.count = count;
    this.#free = Array.from({ length: count }, (_, i) => count - 1 - i);
    this.#out = new Uint8Array(count);
    pools.set(memory, this);
  }

  /** free: slots not handed out. */
  get free(): number {
    return this.#free.length;
  }

  /** take hands out a whole free slot, or returns null when all are out. */
  take(): Buffer | null {
    const i = this.#free.pop();
    if (i === undefined) return null;
    this.#out[i] = 1;
    return Buffer.from(this.#memory, i * this.slotSize, this.slotSize);
  }

  /**
   * give takes back the slot `buf` starts at (`buf` may be a shorter view of it). Anything else (an
   * ordinary buffer, a view inside a slot, a slot already given back) is ignored.
   */
  give(buf: Uint8Array): void {
    if (buf.buffer !== this.#memory || buf.byteOffset % this.slotSize !== 0) return;
    const i = buf.byteOffset / this.slotSize;
    if (i >= this.count || this.#out[i] !== 1) return;
    this.#out[i] = 0;
    this.#free.push(i);
  }
}

/** slotPoolOf returns the pool `buf` is a view of, if any. */
export function slotPoolOf(buf: Uint8Array): SlotPool | undefined {
  return pools.get(buf.buffer);
}

/** giveBack gives `buf` back to its pool when it is a slot; nothing otherwise. */
export function giveBack(buf: Uint8Array): void {
  slotPoolOf(buf)?.give(buf);
}
