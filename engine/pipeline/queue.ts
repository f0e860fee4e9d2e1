/**
 * BoundedQueue: the arrow between two pipeline stages.
 *
 * A producer `push`es items and is made to wait while `depth` items are already queued: a slow consumer
 * blocks the producer, so memory stays bounded by depth x item size whatever the data size (the same
 * backpressure restic gets from unbuffered channels). The consumer reads with `for await`. `close()` ends
 * the stream after the queued items; `fail(err)` ends both sides at once with that error.
 */
export class BoundedQueue<T> implements AsyncIterable<T> {
  readonly depth: number;
  #items: T[] = [];
  #closed = false;
  #error: unknown = undefined;
  #failed = false;
  /** Producers waiting for room. */
  #spaceWaiters: Array<() => void> = [];
  /** The consumer waiting for an item. */
  #itemWaiter: (() => void) | null = null;

  constructor(depth: number) {
    if (!Number.isInteger(depth) || depth < 1) throw new RangeError('depth must be a positive integer');
    this.depth = depth;
  }

  /** push waits until there is room, then queues `item`. It rejects if the queue failed or was closed. */
  async push(item: T): Promise<void> {
    while (!this.#failed && !this.#closed && this.#items.length >= this.depth) {
      await new Promise<void>((resolve) => this.#spaceWaiters.push(resolve));
    }
    if (this.#failed) throw this.#error;
    if (this.#closed) throw new Error('push on a closed queue');
    this.#items.push(item);
    this.#wakeConsumer();
  }

  /** close marks the end of the stream: the consumer gets the queued items, then finishes. */
  close(): void {
    this.#closed = true;
    this.#wakeConsumer();
  }

  /** fail ends the stream with `err` on both sides; queued items are dropped. The first failure wins. */
  fail(err: unknown): void {
    if (this.#failed) return;
    this.#failed = true;
    this.#error = err;
    this.#items.length = 0;
    this.#wakeConsumer();
    this.#wakeProducers();
  }

  get failed(): boolean {
    return this.#failed;
  }

  #wakeConsumer(): void {
    const w = this.#itemWaiter;
    this.#itemWaiter = null;
    w?.();
  }

  #wakeProducers(): void {
    const ws = this.#spaceWaiters;
    this.#spaceWaiters = [];
    for (const w of ws) w();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    for (;;) {
      if (this.#failed) throw this.#error;
      if (this.#items.length > 0) {
        const item = this.#items.shift() as T;
        this.#wakeProducers();
        yield item;
        continue;
      }
      if (this.#closed) return;
      await new Promise<void>((resolve) => { this.#itemWaiter = resolve; });
    }
  }
}
