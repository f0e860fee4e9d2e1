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
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import type { Piscina as PiscinaClass } from 'piscina';
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
  /**
   * Start threads now (up to PRESTART_MAX) and have each load what `preload` names, instead of starting
   * them when work comes: for a backup that will compress, so the threads load while the main thread scans.
   */
  prestart?: { preload?: 'gzip' | 'zstd' };
}

/**
 * WORKER_LOADED: the message a worker posts once its module has finished loading. Node 20 aborts the whole
 * process (a V8 fatal error, exit 134) when a worker is terminated while `require()` is instantiating an ES
 * module, which is how Piscina loads worker.js; a short job can end while a worker is still loading, so
 * `destroy` waits for the message of every worker running then (bounded by LOAD_WAIT_MS). The message
 * carries the worker's threadId: a worker Piscina started in place of a dead one is waited for too.
 */
export const WORKER_LOADED = 'floeWorkerLoaded';
/**
 * PRESTART_MAX: threads a prestarted pool starts before any work (Piscina starts the rest when blocks
 * queue). Each costs ~8-10 MB and its share of the cores the scan needs; a many-core host must not start
 * dozens for a level 1 that changes one file.
 */
const PRESTART_MAX = 2;
const LOAD_WAIT_MS = 10_000;

export class WorkerPool {
  readonly threads: number;
  #pool: PiscinaClass<WorkerTask, WorkerResult>;
  /** Only our own worker module announces itself; test fixtures do not. */
  #announces: boolean;
  /** threadIds of the workers that said they finished loading (a replaced worker's id is never reused). */
  readonly #loaded = new Set<number>();
  #onLoaded: (() => void) | undefined;
  /** One per task not settled yet: aborted when no thread is left to run it (see the 'error' listener). */
  readonly #queued = new Set<AbortController>();

  constructor(options: PoolOptions = {}) {
    const threads = options.threads ?? Math.max(1, availableParallelism());
    if (!Number.isInteger(threads) || threads < 1) throw new RangeError('options.threads must be a positive integer');
    this.threads = threads;
    const { Piscina } = loadPiscina();
    this.#pool = new Piscina<WorkerTask, WorkerResult>({
      filename: options.filename ?? new URL('./worker.js', import.meta.url).href,
      // Workers start when work arrives, not with the pool: a restore that decrypts one block at a time
      // keeps a single worker (each busy worker costs 30-60 MB of peak RSS in buffers it has not freed yet).
      // A prestarted pool (a backup that compresses every block) starts up to PRESTART_MAX at once.
      minThreads: options.prestart ? Math.min(threads, PRESTART_MAX) : 0,
      maxThreads: threads,
      workerData: options.prestart?.preload ? { preload: options.prestart.preload } : undefined,
      // callers bound what they submit; this is a safety net, not the backpressure mechanism
      maxQueue: threads * 16,
      idleTimeout: 30_000,
      // no per-task run/wait histograms: floe never reads them, and they cost on every task both sides
      recordTiming: false,
    });
    this.#announces = options.filename === undefined;
    // Piscina reports here what no running task is waiting for: a worker that died idle or while starting,
    // a result that came after destroy(). Unheard, the event crashed the process on the way out of a
    // backup that failed while tasks were in flight. A worker that fails while starting is not replaced,
    // and tasks queued for it would wait forever: with no thread left, they fail with this error.
    this.#pool.on('error', (err: unknown) => {
      if (this.#pool.threads.length > 0) return; // a thread is left: it takes the queued tasks
      for (const queued of this.#queued) queued.abort(err);
      this.#queued.clear();
    });
    this.#pool.on('message', (m: unknown) => {
      if (typeof m === 'object' && m !== null && WORKER_LOADED in m) {
        this.#loaded.add((m as { [WORKER_LOADED]: number })[WORKER_LOADED]);
        this.#onLoaded?.();
      }
    });
  }

  /** started: how many worker threads are running or starting now. */
  get started(): number {
    return this.#pool.threads.length;
  }

  /** completed: tasks the threads have finished. */
  get completed(): number {
    return this.#pool.completed;
  }

  /**
   * ready: some thread has loaded its module, so a task sent now does not wait for a thread to start (the
   * others may still be loading, or starting because blocks queue). A pool of another worker module
   * (tests) does not announce its threads: always ready.
   */
  get ready(): boolean {
    if (!this.#announces) return true;
    return this.#pool.threads.some((w) => this.#loaded.has(w.threadId));
  }

  /** run sends one task; `data` (if any) is transferred, so the caller gives it up. */
  async run(task: WorkerTask): Promise<Buffer> {
    const data = 'data' in task ? task.data : undefined;
    const transferList = data && isWhole(data) ? [data.buffer as ArrayBuffer] : undefined;
    let result: WorkerResult;
    const queued = new AbortController();
    this.#queued.add(queued);
    try {
      result = await this.#pool.run(task, { transferList, signal: queued.signal });
    } catch (err) {
      const cause = queued.signal.aborted ? queued.signal.reason as unknown : err;
      throw new WorkerError(`worker failed: ${(cause as Error)?.message ?? String(cause)}`, { cause });
    } finally {
      this.#queued.delete(queued);
    }
    if (!(result instanceof Uint8Array)) throw new WorkerError(`worker failed: ${result.error.code}: ${result.error.message}`);
    const out = result;
    return Buffer.from(out.buffer, out.byteOffset, out.byteLength);
  }

  async destroy(): Promise<void> {
    if (this.#announces) await this.#allLoaded();
    await this.#pool.destroy();
  }

  /** allLoaded resolves once every started worker has finished loading its module (or after LOAD_WAIT_MS). */
  async #allLoaded(): Promise<void> {
    const done = () => this.#pool.threads.every((w) => this.#loaded.has(w.threadId));
    if (done()) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(finish, LOAD_WAIT_MS);
      function finish(): void {
        clearTimeout(timer);
        resolve();
      }
      this.#onLoaded = () => {
        if (done()) finish();
      };
    });
    this.#onLoaded = undefined;
  }
}

/**
 * loadPiscina loads Piscina when the first pool is made: a backup without compression, `info` or
 * `--help` never needs it, and loading it cost ~15 ms of every start.
 */
function loadPiscina(): typeof import('piscina') {
  return createRequire(import.meta.url)('piscina') as typeof import('piscina');
}

/** transferable returns a view that owns its whole ArrayBuffer (copying only when it does not). */
export function transferable(b: Uint8Array): Uint8Array {
  return isWhole(b) ? b : ownCopy(b);
}

/** ownCopy copies `b` into a buffer of its own (whole, so transferable), not zero-filled first. */
export function ownCopy(b: Uint8Array): Buffer {
  const copy = Buffer.allocUnsafeSlow(b.byteLength);
  copy.set(b);
  return copy;
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

/** startedSharedPool is the process's pool if one was made (sharedPool, prewarmSharedPool), else undefined. */
export function startedSharedPool(): WorkerPool | undefined {
  return shared;
}

/**
 * prestartAllowed: whether prewarmSharedPool may start threads before work comes. A prestarted pool keeps
 * its threads (Piscina's minThreads) until closed: right for a command that closes it when it ends (the
 * CLI: allowPoolPrestart), not for a long-lived process that runs actions in-process (the scheduler),
 * which gets a pool whose threads start with work and end when idle.
 */
let prestartAllowed = false;

/** allowPoolPrestart: this process runs one command and closes the shared pool at its end (engine/cli/main.ts). */
export function allowPoolPrestart(): void {
  prestartAllowed = true;
}

/**
 * prewarmSharedPool makes the process's pool now, its threads started and loading `preload`'s module
 * (only where allowPoolPrestart was called; elsewhere a pool that starts threads with work). Callers: the
 * CLI before a gzip backup or a slow zstd level, a zstd backup at level 0 (actions/backup.ts), the zstd
 * stage past its inline budget (transform/parallel.ts). Without it the threads start when the first block
 * is ready, and a gzip level 1 that changes a few files waits ~50-70 ms for them after its scan.
 */
export function prewarmSharedPool(preload?: 'gzip' | 'zstd'): WorkerPool {
  shared ??= new WorkerPool(prestartAllowed ? { prestart: { preload } } : {});
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
