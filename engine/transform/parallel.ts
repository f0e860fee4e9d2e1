/**
 * Parallel compression: the stream is cut into independent blocks, each compressed in the worker pool as
 * its own gzip member or zstd frame, and the results are emitted in order. Concatenated gzip members and
 * zstd frames are one valid stream for every reader (gzip -d, GNU tar -z, Freezer's restore, zstd -d), so
 * the output stays compatible while every core works.
 *
 * Memory: at most `inflight` blocks are out at once (default threads x 2), plus the one being cut.
 * BLOCK_SIZE: 4 MiB measured best here (dispatch costs 40-80 us a task; the dictionary restart per block
 * costs under 0.5% of gzip's output at 4 MiB).
 */
import { Stage, rechunk } from '../pipeline/stages.js';
import { WorkerPool, sharedPool, transferable } from '../pipeline/pool.js';
import { Compression } from './compress.js';

export const BLOCK_SIZE = 4 * 1024 * 1024;

export interface ParallelOptions {
  level?: number;
  blockSize?: number;
  pool?: WorkerPool;
  inflight?: number;
}

const DEFAULT_LEVEL = { gzip: 6, zstd: 3 } as const;

/** canParallelCompress tells which algorithms have a parallel stage. */
export function canParallelCompress(alg: Compression): alg is 'gzip' | 'zstd' {
  return alg === 'gzip' || alg === 'zstd';
}

export function parallelCompressStage(alg: 'gzip' | 'zstd', o: ParallelOptions = {}): Stage {
  const level = o.level ?? DEFAULT_LEVEL[alg];
  const blockSize = o.blockSize ?? BLOCK_SIZE;
  return async function* (input, signal) {
    const pool = o.pool ?? sharedPool();
    const limit = o.inflight ?? pool.threads * 2;
    const pending: Array<Promise<Buffer>> = [];
    try {
      for await (const block of rechunk(blockSize)(input, signal)) {
        if (signal.aborted) throw signal.reason;
        const p = pool.run({ op: alg, level, data: transferable(block) });
        p.catch(() => undefined); // awaited below, in order; this only keeps a later failure from being "unhandled"
        pending.push(p);
        if (pending.length >= limit) yield await pending.shift()!;
      }
      while (pending.length > 0) yield await pending.shift()!;
    } finally {
      pending.length = 0;
    }
  };
}
