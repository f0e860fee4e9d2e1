/**
 * Kernel: the public face of the WASM kernels. One Kernel is one instance of the module with its own
 * memory (wasm/instance.ts); create one per thread (a Piscina worker keeps one for its life) and make
 * every table, segmenter and cipher from it. All calls are synchronous; nothing is shared between
 * Kernels. Long-lived objects (SignatureTable, CdcSegmenter, AesCfb) hold memory in their Kernel until
 * their dispose(); Kernel.dispose() makes the instance and all of them unusable.
 *
 * Every error is a KernelError (wasm/errors.ts); send it across a worker boundary as toTransferable(err).
 */
import { AesCfb, type CfbDirection } from './cfb.js';
import { fineSums, xxh64 } from './fine.js';
import { KernelInstance, type KernelOptions } from './instance.js';
import { blockSignature, rollingChecksums, SignatureTable, weakSum } from './rollsum.js';
import { CdcSegmenter, gearTable, type CdcOptions } from './segmenter.js';

export class Kernel {
  readonly #i: KernelInstance;

  private constructor(i: KernelInstance) {
    this.#i = i;
  }

  /** create compiles (once per thread) and instantiates the module. Throws KernelError(LOAD). */
  static create(options: KernelOptions = {}): Kernel {
    return new Kernel(KernelInstance.create(options));
  }

  /** simd tells whether this instance runs the SIMD build. */
  get simd(): boolean {
    return this.#i.simd;
  }

  /** memoryBytes is the instance's memory size (grows on demand, never shrinks). */
  get memoryBytes(): number {
    return this.#i.memoryBytes;
  }

  /** weakSum is the rsync weak sum of the whole buffer (librsync rollsum, char offset 0). */
  weakSum(buf: Uint8Array): number {
    return weakSum(this.#i, buf);
  }

  /**
   * rollingChecksums returns the weak sum of the window at every offset in [0, len - blockSize], in
   * `out` if given (a subarray of it; it must hold len - blockSize + 1 sums) or in a new array.
   */
  rollingChecksums(buf: Uint8Array, blockSize: number, out?: Uint32Array): Uint32Array {
    return rollingChecksums(this.#i, buf, blockSize, out);
  }

  /** blockSignature returns the weak sums of consecutive blocks (the last one may be short). */
  blockSignature(buf: Uint8Array, blockSize: number): Uint32Array {
    return blockSignature(this.#i, buf, blockSize);
  }

  /**
   * fineSums returns seeded XXH64 sums (8 bytes each) of the sub-blocks of buf: blocks of n bytes cut
   * into f-byte pieces, buf starting `first` bytes into a block (wasm/fine.ts).
   */
  fineSums(buf: Uint8Array, n: number, f: number, seed: Uint8Array, first = 0): Uint8Array {
    return fineSums(this.#i, buf, n, f, seed, first);
  }

  /** xxh64 is XXH64 of the whole buffer with a 64-bit seed. */
  xxh64(buf: Uint8Array, seed = 0n): bigint {
    return xxh64(this.#i, buf, seed);
  }

  /** signatureTable loads block weak sums for scans (SignatureTable.scan / scanner). Dispose it. */
  signatureTable(weaks: Uint32Array, blockSize: number): SignatureTable {
    return new SignatureTable(this.#i, weaks, blockSize);
  }

  /**
   * cdc makes a FastCDC segmenter. `secret` is either the repository key (at least 16 bytes, from
   * which gearTable() derives the table) or a 2048-byte gear table already derived. Dispose it.
   */
  cdc(secret: { key: Uint8Array } | { gear: Uint8Array }, options: CdcOptions): CdcSegmenter {
    const gear = 'gear' in secret ? secret.gear : gearTable(secret.key);
    return new CdcSegmenter(this.#i, gear, options);
  }

  /** aesCfb starts an AES-256-CFB128 stream (32-byte key, 16-byte IV). Dispose it. */
  aesCfb(key: Uint8Array, iv: Uint8Array, direction: CfbDirection): AesCfb {
    return new AesCfb(this.#i, key, iv, direction);
  }

  /** dispose releases the instance. Idempotent. */
  dispose(): void {
    this.#i.dispose();
  }
}
