/**
 * Entry point of the floe kernels module (AssemblyScript, compiled by `npm run build:wasm` into
 * wasm/build/kernels.wasm with SIMD and wasm/build/kernels-scalar.wasm without).
 *
 * SIMD is used where it pays: the rolling sums (8 windows per step, see rollsum.ts; measured 1.5-1.7x
 * the scalar build) and so the scan. FastCDC's gear hash is a serial dependency chain and AES T-table
 * rounds are table lookups (gathers, which wasm SIMD lacks): both stay scalar in both builds.
 *
 * ABI: plain functions over byte offsets into the exported memory; the module never allocates, the
 * TypeScript facade (wasm/instance.ts) owns the memory layout above heapBase(). Bump ABI_VERSION on any
 * change of a signature or of a state record layout; the facade refuses a module with another version.
 */
export { weakSum, rollingChecksums, blockSums, tableBuild, scan, scanScratchBytes } from './rollsum';
export { cdcCuts } from './cdc';
export { aesExpandKey256, aesEncryptBlock, cfbEncrypt, cfbDecrypt } from './aes';
export { xxh64, fineSums } from './fine';

/** ABI_VERSION: the facade/module contract version (kept in step with KERNEL_ABI_VERSION in wasm/instance.ts). */
const ABI_VERSION: u32 = 2;

export function abiVersion(): u32 {
  return ABI_VERSION;
}

/** heapBase is the first byte after the static data (S-box, AES tables): the facade allocates above it. */
export function heapBase(): usize {
  return __heap_base;
}

/** simd tells whether this build uses WebAssembly SIMD (1) or the scalar fallbacks (0). */
export function simd(): u32 {
  return ASC_FEATURE_SIMD ? 1 : 0;
}
