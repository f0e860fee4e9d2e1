/**
 * Block compressors: one independent block in, one gzip member or zstd frame out. The pool's workers run
 * them (pipeline/worker.ts) and so does the parallel stage itself while no worker is ready
 * (transform/parallel.ts): the same function, so a block's bytes never depend on the thread.
 *
 * zlib and zstd-napi load on first use: a thread that only decrypts, or a zstd run, never loads the other.
 */
import { createRequire } from 'node:module';
import type * as Zlib from 'node:zlib';
import type * as ZstdBinding from 'zstd-napi/binding.js';
import { ownCopy } from '../pipeline/pool.js';

const require = createRequire(import.meta.url);
let zlibModule: typeof Zlib | undefined;
const zlib = () => (zlibModule ??= require('node:zlib') as typeof Zlib);

/** BlockCompression: the algorithms with a block compressor. */
export type BlockCompression = 'gzip' | 'zstd';

/**
 * INLINE_MAX_ZSTD_LEVEL: the zstd levels fast enough (1-5 ms a 2 MiB block at level 1, about twice that at
 * 3) for the parallel stage to compress on the main thread while no pool thread is ready
 * (transform/parallel.ts). Higher levels take tens of ms a block (level 19: 69 ms on very repetitive text).
 */
export const INLINE_MAX_ZSTD_LEVEL = 3;

/** compressesInline: whether the parallel stage may compress `alg` at `level` on its own thread. */
export function compressesInline(alg: BlockCompression, level: number | undefined): boolean {
  return alg === 'zstd' && (level ?? 1) <= INLINE_MAX_ZSTD_LEVEL;
}

/** compressBlock compresses `data` as one gzip member or one zstd frame, in a buffer of its own. */
export function compressBlock(alg: BlockCompression, level: number, data: Uint8Array): Buffer {
  return alg === 'zstd' ? zstdFrame(data, level) : gzipBlock(data, level);
}

/** loadBlockCompressor loads what compressBlock(alg) needs now, so its first block does not wait for it. */
export function loadBlockCompressor(alg: BlockCompression): void {
  if (alg === 'zstd') zstdFrame(new Uint8Array(0), 1);
  else zlib();
}

/**
 * zstdFrame compresses one block as one frame (content checksum on), through the binding alone, into a
 * scratch buffer this thread keeps, and returns a copy of exactly the frame: a transferred result owns its
 * whole buffer, and a fresh bound-sized buffer per block cost page faults on every task.
 */
let zstdCtx: { cctx: InstanceType<typeof ZstdBinding.CCtx>; b: typeof ZstdBinding; level: number; scratch: Buffer } | undefined;
function zstdFrame(data: Uint8Array, level: number): Buffer {
  if (!zstdCtx) {
    const b = require('zstd-napi/binding') as typeof ZstdBinding;
    const cctx = new b.CCtx();
    cctx.setParameter(b.CParameter.checksumFlag, 1);
    zstdCtx = { cctx, b, level: NaN, scratch: Buffer.alloc(0) };
  }
  if (zstdCtx.level !== level) {
    zstdCtx.cctx.setParameter(zstdCtx.b.CParameter.compressionLevel, level);
    zstdCtx.level = level;
  }
  const bound = zstdCtx.b.compressBound(data.byteLength);
  if (zstdCtx.scratch.length < bound) zstdCtx.scratch = Buffer.allocUnsafe(bound);
  return ownCopy(zstdCtx.scratch.subarray(0, zstdCtx.cctx.compress2(zstdCtx.scratch, data)));
}

/**
 * Incompressible blocks are stored, not deflated: random or already-compressed data then costs a copy
 * instead of ~30 ms per MiB. A block counts as incompressible only when PROBES samples of PROBE_SIZE bytes,
 * spread over it, each shrink by less than 3% at level 1; a block that mixes both is deflated whole (zlib
 * stores the incompressible parts itself), so the ratio never suffers. Stored deflate blocks inside a gzip
 * member are valid gzip for every reader.
 */
const PROBES = 4;
const PROBE_SIZE = 16 * 1024;
const INCOMPRESSIBLE_RATIO = 0.97;

function incompressible(data: Uint8Array): boolean {
  if (data.length < PROBES * PROBE_SIZE * 2) return false;
  const step = Math.floor((data.length - PROBE_SIZE) / (PROBES - 1));
  for (let i = 0; i < PROBES; i++) {
    const sample = Buffer.from(data.buffer, data.byteOffset + i * step, PROBE_SIZE);
    if (zlib().deflateRawSync(sample, { level: 1 }).length <= PROBE_SIZE * INCOMPRESSIBLE_RATIO) return false;
  }
  return true;
}

function gzipBlock(data: Uint8Array, level: number): Buffer {
  const z = zlib();
  return z.gzipSync(data, { level: level > 0 && incompressible(data) ? 0 : level, strategy: z.constants.Z_DEFAULT_STRATEGY });
}
