/**
 * Stages and their runner.
 *
 * A Stage turns one stream of buffers into another (compress, encrypt, segment, verify...). `runStages`
 * runs every stage as its own loop, joined by BoundedQueues of `depth` items, so the stages overlap (the
 * compressor works while the archiver reads the next files) and memory stays bounded. The first error in
 * any stage fails every queue and aborts the shared signal, so no stage waits forever (errgroup-style).
 */
import { BoundedQueue } from './queue.js';

/** Stage transforms a stream. It MUST stop early when `signal` is aborted and MUST NOT buffer unboundedly. */
export type Stage<I = Buffer, O = Buffer> = (input: AsyncIterable<I>, signal: AbortSignal) => AsyncIterable<O>;

export interface RunOptions {
  /** Items queued between two stages. Small: each item can be a whole segment. */
  depth?: number;
  /** Aborting it stops every stage. */
  signal?: AbortSignal;
}

/** DEFAULT_DEPTH: two items per arrow, as Freezer's RichQueue(maxsize=2): overlap without hoarding. */
export const DEFAULT_DEPTH = 2;

/**
 * runStages connects `source` through `stages` and returns the output of the last stage as an async
 * iterable. Consuming the result drives the whole chain; if the consumer stops early (break or throw),
 * every stage is aborted.
 */
export function runStages(
  source: AsyncIterable<Buffer>,
  stages: Stage[],
  options: RunOptions = {},
): AsyncIterable<Buffer> {
  const depth = options.depth ?? DEFAULT_DEPTH;
  const controller = new AbortController();
  const outer = options.signal;
  const onAbort = () => controller.abort(outer?.reason);
  if (outer) {
    if (outer.aborted) controller.abort(outer.reason);
    else outer.addEventListener('abort', onAbort, { once: true });
  }
  const signal = controller.signal;
  const queues: BoundedQueue<Buffer>[] = [];
  const failAll = (err: unknown) => {
    for (const q of queues) q.fail(err);
    if (!signal.aborted) controller.abort(err);
  };
  signal.addEventListener('abort', () => {
    for (const q of queues) q.fail(signal.reason ?? new Error('aborted'));
  }, { once: true });

  let upstream: AsyncIterable<Buffer> = source;
  for (const stage of stages) {
    const q = new BoundedQueue<Buffer>(depth);
    queues.push(q);
    const input = upstream;
    void (async () => {
      try {
        for await (const out of stage(input, signal)) {
          await q.push(out);
        }
        q.close();
      } catch (err) {
        failAll(err);
      }
    })();
    upstream = q;
  }
  const last = upstream;
  return {
    async *[Symbol.asyncIterator]() {
      let done = false;
      try {
        for await (const item of last) yield item;
        done = true;
      } finally {
        outer?.removeEventListener('abort', onAbort);
        if (!done && !signal.aborted) failAll(new Error('pipeline consumer stopped'));
      }
    },
  };
}

/**
 * giveUp stops the producer behind an iterator its consumer will not read further. return() alone does
 * nothing to an async generator that has not started (its finally is never entered), and a pipeline's
 * output (runStages) is such a generator, whose stages and threads then run until they fill their queues
 * and wait for ever. So an iterator never pulled from is pulled once (its own failure ignored), then
 * returned.
 */
export async function giveUp(it: AsyncIterator<unknown>, pulled: boolean): Promise<void> {
  if (!pulled) {
    try {
      const first = await it.next();
      if (first.done) return;
    } catch {
      return; // it ended by failing: nothing is left running
    }
  }
  await it.return?.();
}

/**
 * rechunk is the fixed-size segmenter: it regroups a stream into buffers of exactly `size` bytes (the last
 * one may be shorter). Memory: at most one segment plus one input buffer.
 */
export function rechunk(size: number): Stage {
  if (!Number.isInteger(size) || size < 1) throw new RangeError('segment size must be a positive integer');
  return async function* (input, signal) {
    let parts: Buffer[] = [];
    let have = 0;
    for await (let buf of input) {
      if (signal.aborted) throw signal.reason;
      while (buf.length > 0) {
        const take = Math.min(size - have, buf.length);
        parts.push(take === buf.length ? buf : buf.subarray(0, take));
        have += take;
        buf = buf.subarray(take);
        if (have === size) {
          yield parts.length === 1 ? parts[0] : Buffer.concat(parts, have);
          parts = [];
          have = 0;
        }
      }
    }
    if (have > 0) yield parts.length === 1 ? parts[0] : Buffer.concat(parts, have);
  };
}

/** counted passes a stream through, telling `onBytes` the size of each buffer (progress on the data path). */
export async function* counted(src: AsyncIterable<Buffer>, onBytes: (n: number) => void): AsyncIterable<Buffer> {
  for await (const b of src) {
    onBytes(b.length);
    yield b;
  }
}
