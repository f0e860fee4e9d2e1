/**
 * KernelInstance: one instance of the WASM kernels module and the memory it owns (internal layer under
 * the public Kernel of wasm/kernel.ts; the typed kernels in rollsum.ts, segmenter.ts and cfb.ts use it).
 *
 * Model. The module (wasm/build/kernels.wasm, SIMD; kernels-scalar.wasm without SIMD) is read with
 * readFileSync and compiled synchronously once per thread (the compiled WebAssembly.Module is immutable;
 * it may also be compiled elsewhere and passed in, e.g. through a worker's workerData). Each instance
 * has its own memory: a Piscina worker keeps one Kernel for its life. Nothing here is
 * shared between instances, and every call is synchronous.
 *
 * Memory layout of an instance:
 *   [0, heapBase)         static data of the module (AES S-box and T-tables)
 *   [heapBase, top)       long-lived records (signature tables, AES key schedules, CDC gear tables),
 *                         first-fit allocation with coalescing free(); objects hold them until dispose()
 *   [top, ...)            per-call scratch: inputs are copied in, outputs copied out, and the region is
 *                         reused by the next call. Memory grows on demand and never shrinks.
 * Costs: each call copies its input in once and its output out once (memcpy, ~10 GB/s here, against
 * 0.2-2 GB/s for the kernels). Large inputs are processed in windows of WINDOW bytes, so an instance
 * stays at a few MiB whatever the buffer size.
 *
 * After a trap the instance state is undefined: it refuses further calls (KERNEL_TRAP).
 */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { KernelError, KernelErrorCode } from './errors.js';

/** KERNEL_ABI_VERSION must equal the module's abiVersion() (wasm/assembly/index.ts). */
export const KERNEL_ABI_VERSION = 2;

/** WINDOW: bytes handed to the module per call. 1 MiB keeps scratch small while the per-call overhead
 * (about a microsecond) stays below 0.1% of the work of the slowest kernel (AES, ~6 ms per MiB). */
export const WINDOW = 1 << 20;

/** DEFAULT_MAX_MEMORY: an instance refuses to grow past this (the wasm32 limit is 4 GiB). */
export const DEFAULT_MAX_MEMORY = 1 << 30;

const PAGE = 65536;

/** KernelExports is the module's ABI (see wasm/assembly/*.ts for each contract). */
export interface KernelExports {
  memory: WebAssembly.Memory;
  abiVersion(): number;
  heapBase(): number;
  simd(): number;
  weakSum(p: number, n: number): number;
  rollingChecksums(p: number, len: number, n: number, out: number): void;
  blockSums(p: number, len: number, n: number, out: number): number;
  tableBuild(weaks: number, count: number, table: number, slotBits: number, filter: number,
    filterBits: number, next: number): void;
  scan(p: number, len: number, n: number, table: number, slotBits: number, filter: number,
    filterBits: number, sums: number, out: number): number;
  scanScratchBytes(): number;
  cdcCuts(p: number, len: number, gear: number, state: number, minSize: number, avgSize: number,
    maxSize: number, bitsS: number, bitsL: number, out: number): number;
  aesExpandKey256(key: number, rk: number): void;
  aesEncryptBlock(rk: number, io: number): void;
  cfbEncrypt(rk: number, st: number, src: number, dst: number, len: number): void;
  cfbDecrypt(rk: number, st: number, src: number, dst: number, len: number): void;
  xxh64(p: number, len: number, seed: bigint): bigint;
  fineSums(p: number, len: number, n: number, f: number, first: number, seedLo: number, seedHi: number, out: number): number;
}

/** KernelOptions select the module variant and bound the instance's memory. */
export interface KernelOptions {
  /** true: SIMD build (fails where unsupported); false: scalar build; 'auto' (default): SIMD if it compiles. */
  simd?: boolean | 'auto';
  /** A module compiled elsewhere (its variant is read from its simd() export). */
  module?: WebAssembly.Module;
  /** Directory holding kernels.wasm and kernels-scalar.wasm (default: wasm/build of this package). */
  wasmDir?: string;
  /** Upper bound of the instance's memory in bytes (default DEFAULT_MAX_MEMORY). */
  maxMemoryBytes?: number;
}

/** wasmFileName is the built artefact of each variant. */
export function wasmFileName(simd: boolean): string {
  return simd ? 'kernels.wasm' : 'kernels-scalar.wasm';
}

/** defaultWasmDir finds wasm/build whether this file runs from dist/wasm/ (tsc) or from wasm/. */
export function defaultWasmDir(): string {
  const candidates = ['./build/', '../../wasm/build/'].map((p) => fileURLToPath(new URL(p, import.meta.url)));
  return candidates.find((dir) => existsSync(dir)) ?? candidates[candidates.length - 1];
}

const compiled = new Map<string, WebAssembly.Module>();

/**
 * loadKernelModule reads and compiles one variant, once per thread (a cache of immutable compiled
 * modules, keyed by path). Throws KernelError(LOAD) when the file is missing or does not compile.
 */
export function loadKernelModule(simd: boolean, wasmDir = defaultWasmDir()): WebAssembly.Module {
  const path = `${wasmDir.replace(/\/$/, '')}/${wasmFileName(simd)}`;
  const cached = compiled.get(path);
  if (cached) return cached;
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (err) {
    throw new KernelError(KernelErrorCode.LOAD, `cannot read ${path}: run \`npm run build:wasm\``, { cause: err });
  }
  let mod: WebAssembly.Module;
  try {
    mod = new WebAssembly.Module(new Uint8Array(bytes));
  } catch (err) {
    throw new KernelError(KernelErrorCode.LOAD, `cannot compile ${path}: ${(err as Error).message}`, { cause: err });
  }
  compiled.set(path, mod);
  return mod;
}

function align(n: number, to = 16): number {
  return Math.ceil(n / to) * to;
}

/**
 * KernelInstance owns one instance: its exports, its memory and the allocator described above. The
 * typed kernels (rollsum.ts, segmenter.ts, cfb.ts) call into it; it is not part of the public API.
 */
export class KernelInstance {
  readonly simd: boolean;
  readonly #x: KernelExports;
  readonly #maxMemory: number;
  readonly #sizes = new Map<number, number>();
  #free: { ptr: number; size: number }[] = [];
  #top: number;
  #state: 'ok' | 'trapped' | 'disposed' = 'ok';
  readonly #registry = new FinalizationRegistry<number>((ptr) => this.free(ptr));

  private constructor(x: KernelExports, maxMemory: number) {
    this.#x = x;
    this.#maxMemory = maxMemory;
    this.simd = x.simd() === 1;
    this.#top = align(x.heapBase(), 64);
  }

  /** create instantiates the module synchronously. Throws KernelError(LOAD). */
  static create(options: KernelOptions = {}): KernelInstance {
    const maxMemory = options.maxMemoryBytes ?? DEFAULT_MAX_MEMORY;
    if (!Number.isInteger(maxMemory) || maxMemory < PAGE || maxMemory > 2 ** 32) {
      throw new KernelError(KernelErrorCode.INPUT, 'options.maxMemoryBytes must be an integer in [64 KiB, 4 GiB]');
    }
    const want = options.simd ?? 'auto';
    let mod = options.module;
    if (!mod) {
      if (want === 'auto') {
        try {
          mod = loadKernelModule(true, options.wasmDir);
        } catch (err) {
          if (!(err instanceof KernelError) || !/cannot compile/.test(err.message)) throw err;
          mod = loadKernelModule(false, options.wasmDir);
        }
      } else {
        mod = loadKernelModule(want, options.wasmDir);
      }
    }
    let x: KernelExports;
    try {
      x = new WebAssembly.Instance(mod, {}).exports as unknown as KernelExports;
    } catch (err) {
      throw new KernelError(KernelErrorCode.LOAD, `cannot instantiate the kernels module: ${(err as Error).message}`, { cause: err });
    }
    if (typeof x.abiVersion !== 'function' || x.abiVersion() !== KERNEL_ABI_VERSION) {
      throw new KernelError(KernelErrorCode.LOAD,
        `kernels module has ABI ${x.abiVersion?.() ?? 'unknown'}, expected ${KERNEL_ABI_VERSION}: run \`npm run build:wasm\``);
    }
    return new KernelInstance(x, maxMemory);
  }

  /** memoryBytes is the current size of the instance's memory (it never shrinks). */
  get memoryBytes(): number {
    return this.#x.memory.buffer.byteLength;
  }

  /** dispose wipes the instance's memory (key schedules included); every object made from it becomes
   * unusable. Idempotent. */
  dispose(): void {
    if (this.#state !== 'disposed') new Uint8Array(this.#x.memory.buffer).fill(0, this.#x.heapBase());
    this.#state = 'disposed';
    this.#free = [];
    this.#sizes.clear();
  }

  /** exports, after checking that the instance is usable. */
  get x(): KernelExports {
    if (this.#state !== 'ok') {
      throw this.#state === 'disposed'
        ? new KernelError(KernelErrorCode.DISPOSED, 'kernel used after dispose()')
        : new KernelError(KernelErrorCode.TRAP, 'kernel instance is unusable after an earlier trap');
    }
    return this.#x;
  }

  /** call runs fn against the exports and turns a trap into KernelError(TRAP). */
  call<T>(what: string, fn: (x: KernelExports) => T): T {
    const x = this.x;
    try {
      return fn(x);
    } catch (err) {
      if (err instanceof WebAssembly.RuntimeError) {
        this.#state = 'trapped';
        throw new KernelError(KernelErrorCode.TRAP, `${what}: ${err.message}`, { cause: err });
      }
      throw err;
    }
  }

  /**
   * alloc reserves a long-lived region (16-byte aligned) until free(ptr). With an owner, the region is
   * also freed when the owner is garbage-collected without having called release(owner) (a safety net
   * for a forgotten dispose(), not a substitute: collection may come late or never).
   */
  alloc(size: number, owner?: object): number {
    void this.x;
    size = align(Math.max(size, 16));
    const i = this.#free.findIndex((b) => b.size >= size);
    let ptr: number;
    if (i >= 0) {
      const b = this.#free[i];
      ptr = b.ptr;
      if (b.size === size) this.#free.splice(i, 1);
      else this.#free[i] = { ptr: b.ptr + size, size: b.size - size };
    } else {
      ptr = this.#top;
      this.#ensure(ptr + size);
      this.#top = ptr + size;
    }
    this.#sizes.set(ptr, size);
    if (owner) this.#registry.register(owner, ptr, owner);
    return ptr;
  }

  /** release cancels the garbage-collection safety net of owner's regions (call it, then free them). */
  release(owner: object): void {
    this.#registry.unregister(owner);
  }

  /**
   * free returns a region from alloc(), zero-filled (key schedules must not linger); coalesces
   * neighbours and lowers the top when it can. Unknown or already freed regions are ignored.
   */
  free(ptr: number): void {
    const size = this.#sizes.get(ptr);
    if (size === undefined) return;
    this.#sizes.delete(ptr);
    this.bytes(ptr, size).fill(0);
    this.#free.push({ ptr, size });
    this.#free.sort((a, b) => a.ptr - b.ptr);
    const merged: { ptr: number; size: number }[] = [];
    for (const b of this.#free) {
      const last = merged[merged.length - 1];
      if (last && last.ptr + last.size === b.ptr) last.size += b.size;
      else merged.push({ ...b });
    }
    const tail = merged[merged.length - 1];
    if (tail && tail.ptr + tail.size === this.#top) {
      this.#top = tail.ptr;
      merged.pop();
    }
    this.#free = merged;
  }

  /**
   * scratch lays out per-call regions of the given byte sizes above the long-lived ones and
   * returns their offsets. Valid until the next alloc() or scratch(): never keep them across calls.
   */
  scratch(...sizes: number[]): number[] {
    let p = align(this.#top, 64);
    const out: number[] = [];
    for (const s of sizes) {
      out.push(p);
      p = align(p + s, 64);
    }
    this.#ensure(p);
    return out;
  }

  /** bytes is a view of the instance memory; re-create it after any alloc/scratch (growth). */
  bytes(ptr: number, len: number): Uint8Array {
    return new Uint8Array(this.#x.memory.buffer, ptr, len);
  }

  /** u32 is a Uint32Array view (ptr must be 4-aligned); same lifetime rule as bytes(). */
  u32(ptr: number, count: number): Uint32Array {
    return new Uint32Array(this.#x.memory.buffer, ptr, count);
  }

  #ensure(end: number): void {
    const mem = this.#x.memory;
    const have = mem.buffer.byteLength;
    if (end <= have) return;
    if (end > this.#maxMemory) {
      throw new KernelError(KernelErrorCode.MEMORY,
        `kernel needs ${end} bytes of memory, over its limit of ${this.#maxMemory}`);
    }
    try {
      mem.grow(Math.ceil((end - have) / PAGE));
    } catch (err) {
      throw new KernelError(KernelErrorCode.MEMORY, `kernel cannot grow its memory to ${end} bytes`, { cause: err });
    }
  }
}
