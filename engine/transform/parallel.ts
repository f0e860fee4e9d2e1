/**
 * Parallel compression: the stream is cut into independent blocks, each compressed in the worker pool as
 * its own gzip member or zstd frame, and the results are emitted in order. Concatenated gzip members and
 * zstd frames are one valid stream for every reader (gzip -d, GNU tar -z, Freezer's restore, zstd -d), so
 * the output stays compatible while every core works.
 *
 * Memory: at most `inflight` blocks are out at once (default threads x 2), plus the one being cut.
 * BLOCK_SIZE: 2 MiB. Dispatch costs 40-80 us a task, under 1% of a 2 MiB block's compression; the
 * dictionary restart per block costs 0.3% of gzip's output (569.6 vs 568.0 MiB at 4 MiB on the 1 GiB bench
 * tree, still under Freezer's 571.4). Against 4 MiB it was as fast and cut peak RSS by ~70 MB (blocks in
 * flight, their outputs, and what the threads keep of both).
 */
import { spawn } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { UsageError } from '../errors.js';
import { Stage, rechunk } from '../pipeline/stages.js';
import { WorkerPool, prewarmSharedPool, sharedPool, startedSharedPool, transferable } from '../pipeline/pool.js';
import { compressBlock, compressesInline } from './blocks.js';
import { Compression, compressionLevel } from './compress.js';

export const BLOCK_SIZE = 2 * 1024 * 1024;

export interface ParallelOptions {
  level?: number;
  blockSize?: number;
  pool?: WorkerPool;
  inflight?: number;
  /** zstd without `pool`: INLINE_BUDGET_MS unless given (tests). */
  inlineBudgetMs?: number;
}

/** canParallelCompress tells which algorithms have a parallel stage. */
export function canParallelCompress(alg: Compression): alg is 'gzip' | 'zstd' | 'bzip2' | 'xz' {
  return alg !== 'none';
}

/** parallelStage picks the parallel compressor of `alg`: the worker pool for gzip/zstd, processes for the rest. */
export function parallelStage(alg: 'gzip' | 'zstd' | 'bzip2' | 'xz', o: ParallelOptions = {}): Stage {
  return alg === 'gzip' || alg === 'zstd' ? parallelCompressStage(alg, o) : parallelProcessStage(alg, o);
}

/**
 * INLINE_BUDGET_MS: how long zstd blocks may be compressed on the calling thread before the pool is
 * started, when no pool was (a level 1; a level 0 starts it with the backup, actions/backup.ts).
 *
 * Why: zstd at level 1 takes 1-5 ms a block, and a level 1 that changed a few files has a few dozen
 * blocks, while each pool thread costs 35-45 ms of CPU to start and load zstd, taken from the scan and the
 * encryption on a 2-core machine, and a pool started near the end still has to finish loading before the
 * process can exit. Measured (1 GiB bench tree, level 1 after the bench's mutation: 57 MiB to compress,
 * 46-68 ms of it inline; zstd + encryption): two prestarted threads 0.43-0.54 s, no pool 0.36-0.38 s, a
 * pool started after 50 ms of inline work 0.43-0.45 s. So the budget is about what two threads cost. A
 * stream that turns out large still gets every core: past the budget the pool starts; in the CLI its
 * threads start at once and blocks go on being compressed here while they load, elsewhere (a long-lived
 * process: pool.ts allowPoolPrestart) they start with the first block sent, which waits for one. gzip
 * (~60 ms a block) and zstd above level 3 (transform/blocks.ts compressesInline) always go to the pool.
 */
const INLINE_BUDGET_MS = 150;

export function parallelCompressStage(alg: 'gzip' | 'zstd', o: ParallelOptions = {}): Stage {
  const level = compressionLevel(alg, o.level);
  const blockSize = o.blockSize ?? BLOCK_SIZE;
  // Fast zstd levels are compressed here while no thread of the shared pool is ready (o.pool: always the pool).
  const inline = !o.pool && compressesInline(alg, level);
  const budget = o.inlineBudgetMs ?? INLINE_BUDGET_MS;
  return async function* (input, signal) {
    let pool = o.pool ?? (inline ? startedSharedPool() : sharedPool());
    let inlineMs = 0;
    // The pool's promises, in stream order; at most `limit` of them (blocks are compressed here only while
    // none is out, and yielded at once).
    const pending: Array<Promise<Buffer>> = [];
    try {
      for await (const block of rechunk(blockSize)(input, signal)) {
        if (signal.aborted) throw signal.reason;
        if (inline && pending.length === 0 && !pool?.ready) {
          if (inlineMs >= budget) pool ??= prewarmSharedPool(alg);
          // Here before the budget, and while started threads load. A pool with no thread (not prestarted,
          // or a long-lived process's whose threads ended when idle) is given the block past the budget,
          // which starts one.
          if (inlineMs < budget || pool!.started > 0) {
            const t = performance.now();
            const out = compressBlock(alg, level, block);
            inlineMs += performance.now() - t;
            yield out;
            continue;
          }
        }
        pool ??= sharedPool();
        const p = pool.run({ op: alg, level, data: transferable(block) });
        p.catch(() => undefined); // awaited below, in order; this only keeps a later failure from being "unhandled"
        pending.push(p);
        const limit = Math.max(1, o.inflight ?? pool.threads * 2);
        while (pending.length >= limit) yield await pending.shift()!;
      }
      while (pending.length > 0) yield await pending.shift()!;
    } finally {
      pending.length = 0;
    }
  };
}

/**
 * PROCESS_BLOCK: bzip2 and xz have no in-process library here, so each block is compressed by its own
 * `bzip2`/`xz` process (as Freezer's tar -j/-J would, but one per core). Concatenated bzip2 and xz streams
 * are valid for `bzip2 -d`, `xz -d` and GNU tar. 8 MiB keeps the cost of starting a process (~2 ms)
 * under 1% of bzip2's time on the block, and the size cost of restarting the compressor well under 1%.
 */
const PROCESS_BLOCK = 8 * 1024 * 1024;

export function parallelProcessStage(alg: 'bzip2' | 'xz', o: ParallelOptions = {}): Stage {
  const level = compressionLevel(alg, o.level);
  const blockSize = o.blockSize ?? PROCESS_BLOCK;
  const args = alg === 'xz' ? ['-c', `-${level}`, '-T1'] : ['-c', `-${level}`];
  return async function* (input, signal) {
    const limit = o.inflight ?? Math.max(1, availableParallelism());
    const pending: Array<Promise<Buffer>> = [];
    for await (const block of rechunk(blockSize)(input, signal)) {
      const p = compressWithProcess(alg, args, block, signal);
      p.catch(() => undefined); // awaited below, in order
      pending.push(p);
      if (pending.length >= limit) yield await pending.shift()!;
    }
    while (pending.length > 0) yield await pending.shift()!;
  };
}

function compressWithProcess(cmd: string, args: string[], input: Buffer, signal: AbortSignal): Promise<Buffer> {
  return new Promise((resolveP, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], signal });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => { err += b.toString(); });
    child.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') reject(new UsageError(`compression ${cmd} needs the '${cmd}' program, which is not installed`));
      else reject(signal.aborted ? signal.reason : e);
    });
    child.on('close', (code) => {
      if (code === 0) resolveP(Buffer.concat(out));
      else if (!signal.aborted) reject(new Error(`${cmd} exited with status ${code}: ${err.trim().split('\n')[0]}`));
    });
    child.stdin.on('error', () => undefined); // a dying child reports through 'close'
    child.stdin.end(input);
  });
}
