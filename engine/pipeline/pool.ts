/**
 * WorkerPool: the one door to worker threads (Piscina). Compression of independent blocks runs here now;
 * the WASM kernels (rolling checksums, content-defined chunking, AES) run through the same pool.
 *
 * Contract:
 * - `run` transfers the task's input buffer to the worker (the caller MUST NOT touch it afterwards) and
 *   resolves to the worker's output buffer, transferred back: no copy either way.
 * - Errors come back as plain `{code, message}` (see worker.ts) and are rebuilt as WorkerError here; a
 *   worker that dies mid-task rejects its task with WorkerError too. `run` never hangs on a dead worker.
 * - Callers bound their own in-flight tasks (`threads * 2` is what measured best here: one running and one
 *   queued per thread keeps both cores busy without hoarding memory).
 */
import { availableParallelism } from 'node:os';
import { Piscina } from 'piscina';
import { FloeError, ExitCode } from '../errors.js';
import type { WorkerResult, WorkerTask } from './worker.js';

export class WorkerError extends FloeError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('FLOE_ERR_WORKER', message, ExitCode.FAILURE, options);
  }
}

export interface PoolOptions {
  /** Worker threads; default: the cores this process may use. */
  threads?: number;
  /** The worker module (tests use fixtures that fail on purpose). */
  filename?: string;
}

export class WorkerPool {
  readonly threads: number;
  #pool: Piscina<WorkerTask, WorkerResult>;

  constructor(options: PoolOptions = {}) {
    const threads = options.threads ?? Math.max(1, availableParallelism());
    if (!Number.isInteger(threads) || threads < 1) throw new RangeError('options.threads must be a positive integer');
    this.threads = threads;
    this.#pool = new Piscina<WorkerTask, WorkerResult>({
      filename: options.filename ?? new URL('./worker.js', import.meta.url).href,
      minThreads: threads,
      maxThreads: threads,
      // callers bound what they submit; this is a safety net, not the backpressure mechanism
      maxQueue: threads * 16,
      idleTimeout: 30_000,
    });
  }

  /** run sends one task; `data` (if any) is transferred, so the caller gives it up. */
  async run(task: WorkerTask): Promise<Buffer> {
    const data = 'data' in task ? task.data : undefined;
    const transferList = data && isWhole(data) ? [data.buffer as ArrayBuffer] : undefined;
    let result: WorkerResult;
    try {
      result = await this.#pool.run(task, { transferList });
    } catch (err) {
      throw new WorkerError(`worker failed: ${(err as Error)?.message ?? String(err)}`, { cause: err });
    }
    if (!(result instanceof Uint8Array)) throw new WorkerError(`worker failed: ${result.error.code}: ${result.error.message}`);
    const out = result;
    return Buffer.from(out.buffer, out.byteOffset, out.byteLength);
  }

  async destroy(): Promise<void> {
    await this.#pool.destroy();
  }
}

/** transferable returns a view that owns its whole ArrayBuffer (copying only when it does not). */
export function transferable(b: Uint8Array): Uint8Array {
  return isWhole(b) ? b : new Uint8Array(b);
}

function isWhole(b: Uint8Array): boolean {
  return b.byteOffset === 0 && b.byteLength === b.buffer.byteLength && !(b.buffer instanceof SharedArrayBuffer);
}

let shared: WorkerPool | undefined;

/** sharedPool is the process's pool, made on first use. */
export function sharedPool(): WorkerPool {
  shared ??= new WorkerPool();
  return shared;
}

/** setSharedPool replaces the process's pool (tests inject failing workers). */
export function setSharedPool(pool: WorkerPool | undefined): void {
  shared = pool;
}

/** closeSharedPool stops the worker threads, if any were started. */
export async function closeSharedPool(): Promise<void> {
  const p = shared;
  shared = undefined;
  await p?.destroy();
}
