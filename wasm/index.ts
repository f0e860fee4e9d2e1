/**
 * floe WASM kernels: the one typed facade over the AssemblyScript module in wasm/assembly/.
 *
 * Kernels (each checked against a plain-TypeScript reference in wasm/reference.ts by
 * test/unit/wasm.test.ts, and timed by `npm run bench:kernels`):
 * - rsync weak rolling checksum at every offset, block signatures, and the weak-match scan against a
 *   signature table (reports every candidate; the caller confirms and skips): rollsum.ts;
 * - FastCDC content-defined segmenter keyed by a repository secret, and the fixed-size cutter:
 *   segmenter.ts;
 * - AES-256-CFB128 encryption and decryption, byte-identical to OpenSSL: cfb.ts;
 * - seeded XXH64 of the sub-blocks of blocks (the rsync engine's fine sums): fine.ts.
 *
 * Usage: `const k = Kernel.create(); const enc = k.aesCfb(key, iv, 'encrypt'); enc.update(buf)`.
 * Build: `npm run build:wasm` (part of `npm run build`, so of `npm install`) writes wasm/build/.
 * Worker boundary: errors travel as toTransferable(err) and are rebuilt with fromTransferable(obj).
 */
export { Kernel } from './kernel.js';
export {
  KERNEL_ABI_VERSION, WINDOW, DEFAULT_MAX_MEMORY, defaultWasmDir, loadKernelModule, wasmFileName,
  type KernelOptions,
} from './instance.js';
export { SignatureTable, BlockScanner, MAX_BLOCK_SIZE, type WeakMatches } from './rollsum.js';
export {
  CdcSegmenter, FixedSegmenter, gearTable, cdcParams, GEAR_TABLE_BYTES,
  type Segmenter, type CdcOptions, type CdcParams,
} from './segmenter.js';
export { AesCfb, type CfbDirection } from './cfb.js';
export { FINE_LEN, fineCount } from './fine.js';
export {
  KernelError, KernelErrorCode, toTransferable, fromTransferable, INTERNAL_CODE,
  type KernelErrorCodeValue, type TransferableError,
} from './errors.js';
