/**
 * The pool's worker: runs byte-heavy tasks off the main thread (compression now; the WASM kernels join
 * through the same door). One task = one independent block: a gzip member, a zstd frame.
 *
 * Contract with pool.ts: a task's input buffer arrives transferred (the main thread gave it up), the
 * output goes back transferred. Errors never cross as Error objects (structured clone drops their class
 * and code): a failure returns `{ error: { code, message } }`, rebuilt on the main thread.
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { isMainThread, parentPort, threadId, workerData } from 'node:worker_threads';
import type * as Crypto from 'node:crypto';
import { WORKER_LOADED, transferable } from './pool.js';
import { compressBlock, loadBlockCompressor } from '../transform/blocks.js';
import { released } from './gc.js';
import type { Kernel } from '../../wasm/index.js';
import type { DeltaTask } from '../archive/rsync/kernels.js';

export type WorkerTask =
  | { op: 'gzip'; level: number; data: Uint8Array }
  | { op: 'zstd'; level: number; data: Uint8Array }
  | { op: 'cfb-decrypt'; backend: 'native' | 'wasm'; key: Uint8Array; iv: Uint8Array; data: Uint8Array }
  /** rsync engine: weak + strong sums of the blocks of `data` (engine/archive/rsync/kernels.ts). */
  | { op: 'rsync-signature'; blockSize: number; fineSize: number; fineSeed: Uint8Array; data: Uint8Array }
  /** rsync engine: confirmed block matches in one window of a new file (engine/archive/rsync/kernels.ts). */
  | ({ op: 'rsync-delta' } & DeltaTask);

/** A task's result: the output bytes (transferred), or a failure as plain data. */
export type WorkerResult = Uint8Array | { error: { code: string; message: string } };

/*
 * What a task needs loads with its first task, not with the worker: a worker is started when work comes
 * (and the backup of a few changed files waits for it), and a zstd backup needs neither zlib nor
 * node:crypto. Measured: a new pool answered its first two zstd tasks in 59-63 ms before, 37-41 ms now.
 */
const require = createRequire(import.meta.url);
let cryptoModule: typeof Crypto | undefined;
const crypto = () => (cryptoModule ??= require('node:crypto') as typeof Crypto);

/**
 * move marks a result view for transfer, as Piscina's move() does, with Piscina's own marker (common.js,
 * which Piscina's worker script has loaded already). Importing move from 'piscina' would load Piscina's
 * whole main module (11 more modules) in every worker. The version is pinned in package.json.
 */
let markMovable: ((value: object) => void) | undefined;
const kTransferable = Symbol.for('Piscina.transferable');
const kValue = Symbol.for('Piscina.valueOf');
function move(view: Uint8Array): object {
  markMovable ??= (require(join(dirname(require.resolve('piscina')), 'common.js')) as { markMovable: (value: object) => void }).markMovable;
  const movable = { [kTransferable]: view.buffer, [kValue]: view };
  markMovable(movable);
  return movable;
}

/**
 * The WASM kernels and the rsync code load on first use, not with the worker: compression and native
 * decryption (most tasks) need neither, and a worker that is ready sooner matters on small backups.
 */
let kernel: Promise<Kernel> | undefined;
function wasmKernel(): Promise<Kernel> {
  kernel ??= import('../../wasm/index.js').then((m) => m.Kernel.create());
  return kernel;
}
const rsyncKernels = () => import('../archive/rsync/kernels.js');

/** cfbDecrypt decrypts one block of a CFB stream, given the ciphertext block before it as IV. */
async function cfbDecrypt(t: { backend: 'native' | 'wasm'; key: Uint8Array; iv: Uint8Array; data: Uint8Array }): Promise<Buffer> {
  if (t.backend === 'wasm') {
    const c = (await wasmKernel()).aesCfb(t.key, t.iv, 'decrypt');
    try {
      // in place: the input block was transferred to this thread and is not needed afterwards
      const out = c.update(t.data, t.data);
      return Buffer.from(out.buffer, out.byteOffset, out.byteLength);
    } finally {
      c.dispose();
    }
  }
  const d = crypto().createDecipheriv('aes-256-cfb', t.key, t.iv);
  return d.update(t.data);
}

export default async function run(task: WorkerTask): Promise<WorkerResult> {
  // the previous task's buffers (its input, zlib's scratch) are dead by now; zstd's scratch is kept
  if ('data' in task) released(task.data.byteLength);
  try {
    switch (task.op) {
      case 'gzip':
        return move(transferable(compressBlock('gzip', task.level, task.data))) as Uint8Array;
      case 'cfb-decrypt':
        return move(transferable(await cfbDecrypt(task))) as Uint8Array;
      case 'rsync-signature': {
        const [k, r] = await Promise.all([wasmKernel(), rsyncKernels()]);
        return move(r.signatureOf(k, task.data, task.blockSize, task)) as Uint8Array;
      }
      case 'rsync-delta': {
        const [k, r] = await Promise.all([wasmKernel(), rsyncKernels()]);
        const d = r.deltaWindow(k, task);
        return move(new Uint8Array(d.buffer, d.byteOffset, d.byteLength)) as Uint8Array;
      }
      case 'zstd':
        return move(compressBlock('zstd', task.level, task.data)) as Uint8Array;
    }
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    return { error: { code: e.code ?? 'FLOE_ERR_WORKER', message: e.message ?? String(err) } };
  }
  return { error: { code: 'FLOE_ERR_WORKER', message: `unknown task ${(task as { op: string }).op}` } };
}

// A prestarted pool (pool.ts, prewarmSharedPool) names the module its first tasks will need: load it now,
// while nothing waits for this thread. A failure here is left to the first task to report: a worker that
// threw while loading would be replaced by Piscina (it keeps minThreads alive), again and again.
const preload = (workerData as { preload?: unknown } | undefined)?.preload;
try {
  if (preload === 'zstd' || preload === 'gzip') loadBlockCompressor(preload);
} catch { /* reported by the first task that needs it */ }

// Tells the pool that this worker has finished loading (pool.ts), once the require() that loads this module
// has returned: Piscina loads it with require() (inside a promise job), and on Node 20 that call still
// instantiates the module's CommonJS facade after the last statement here has run. A pool destroyed in
// between (it waits for this message) aborted the process (exit 134, CreateRequiredModuleFacade) in about
// 1 of 12 runs of the pool tests. A microtask runs once that job has returned; not a later turn of the
// event loop, which a Piscina worker blocks (Atomics.wait) until its first task.
if (!isMainThread) queueMicrotask(() => parentPort?.postMessage({ [WORKER_LOADED]: threadId }));
