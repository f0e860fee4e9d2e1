/**
 * MultiStorage: several storages as one, as Freezer's MultipleStorage (reference/freezer.md §1.4).
 *
 * Writes fan out: every driver receives the same segments in parallel, each through its own bounded queue
 * (so memory is bounded by drivers x depth x segment, and the slowest driver paces the backup). If one
 * driver fails, all fail: the others are aborted and put() rejects with the first error, so no storage
 * ends up with a backup the others lack (its metadata is never written).
 * Reads come from one driver: the first, in the order given, that has the object. Listings are the union
 * of all drivers' listings, so a chain on any storage is seen (Freezer gathers level-0 chains from all).
 */
import { BoundedQueue } from '../pipeline/queue.js';
import { DEFAULT_DEPTH } from '../pipeline/stages.js';
import { NotFoundError } from '../errors.js';
import type { ObjectSource, StorageDriver } from './driver.js';

export class MultiStorage implements StorageDriver {
  readonly kind = 'multi';
  readonly drivers: readonly StorageDriver[];
  readonly #depth: number;

  /** `drivers`: at least one; `depth`: segments queued per driver (default: the pipeline's). */
  constructor(drivers: StorageDriver[], options: { depth?: number } = {}) {
    if (!Array.isArray(drivers) || drivers.length === 0) throw new RangeError('drivers must list at least one storage');
    this.drivers = [...drivers];
    this.#depth = options.depth ?? DEFAULT_DEPTH;
  }

  /** container: the containers of all drivers, comma-separated (for messages). */
  get container(): string {
    return this.drivers.map((d) => `${d.kind}:${d.container}`).join(',');
  }

  async ensureWritable(): Promise<void> {
    await allOrFirstError(this.drivers.map((d) => d.ensureWritable()));
  }

  async put(key: string, source: AsyncIterable<Buffer>, options: { signal?: AbortSignal } = {}): Promise<{ size: number }> {
    if (this.drivers.length === 1) return this.drivers[0].put(key, source, options);
    const controller = new AbortController();
    const outer = options.signal;
    const onAbort = () => controller.abort(outer?.reason);
    if (outer?.aborted) controller.abort(outer.reason);
    else outer?.addEventListener('abort', onAbort, { once: true });
    const queues = this.drivers.map(() => new BoundedQueue<Buffer>(this.#depth));
    let firstError: unknown;
    const fail = (err: unknown) => {
      firstError ??= err;
      for (const q of queues) q.fail(err);
      if (!controller.signal.aborted) controller.abort(err);
    };
    const puts = this.drivers.map((d, i) => d.put(key, queues[i], { signal: controller.signal }).catch((err) => { fail(err); throw err; }));
    const settled = Promise.allSettled(puts); // attached now: a driver may fail while the source is still read
    const feeding = (async () => {
      try {
        for await (const buf of source) {
          if (controller.signal.aborted) throw controller.signal.reason;
          await Promise.all(queues.map((q) => q.push(buf)));
        }
        for (const q of queues) q.close();
      } catch (err) {
        fail(err);
      }
    })();
    try {
      await feeding;
      const results = await settled;
      if (firstError !== undefined) throw firstError;
      const failed = results.find((r) => r.status === 'rejected');
      if (failed) throw (failed as PromiseRejectedResult).reason;
      return { size: (results[0] as PromiseFulfilledResult<{ size: number }>).value.size };
    } finally {
      outer?.removeEventListener('abort', onAbort);
    }
  }

  async putSmall(key: string, data: Buffer): Promise<void> {
    await allOrFirstError(this.drivers.map((d) => d.putSmall(key, data)));
  }

  get(key: string, options?: { chunkSize?: number; signal?: AbortSignal }): AsyncIterable<Buffer> {
    const pick = () => this.#holder(key);
    return {
      async *[Symbol.asyncIterator]() {
        yield* (await pick()).get(key, options);
      },
    };
  }

  async getSmall(key: string): Promise<Buffer> {
    return (await this.#holder(key)).getSmall(key);
  }

  async source(key: string): Promise<ObjectSource | null> {
    const d = await this.#holder(key);
    return d.source ? d.source(key) : null;
  }

  async exists(key: string): Promise<boolean> {
    for (const d of this.drivers) if (await d.exists(key)) return true;
    return false;
  }

  async size(key: string): Promise<number> {
    return (await this.#holder(key)).size(key);
  }

  async list(prefix: string): Promise<string[]> {
    const lists = await Promise.all(this.drivers.map((d) => d.list(prefix)));
    return [...new Set(lists.flat())].sort();
  }

  async remove(key: string): Promise<void> {
    await allOrFirstError(this.drivers.map((d) => d.remove(key)));
  }

  /** holder is the first driver that has `key`; none: NotFoundError. */
  async #holder(key: string): Promise<StorageDriver> {
    for (const d of this.drivers) if (await d.exists(key)) return d;
    throw new NotFoundError(`object ${key} not found in any storage`);
  }
}

/** allOrFirstError waits for every promise (none is left running) and rethrows the first failure. */
async function allOrFirstError(ps: Promise<unknown>[]): Promise<void> {
  const rs = await Promise.allSettled(ps);
  const bad = rs.find((r) => r.status === 'rejected');
  if (bad) throw (bad as PromiseRejectedResult).reason;
}
