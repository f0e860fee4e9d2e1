/**
 * Clock: the scheduler's only source of time and timers, so tests move time instead of waiting for it.
 *
 * Every time in the scheduler is epoch milliseconds from `clock.now()`; Freezer's documents carry epoch
 * seconds (`time_started`, `time_ended`), converted with {@link seconds}. `systemClock` is the real one;
 * `FakeClock` runs its timers in time order when a test calls `advance(ms)`.
 */

/** Timer is a pending callback that can be cancelled. */
export interface Timer {
  cancel(): void;
}

export interface Clock {
  /** now is the current time in epoch milliseconds. */
  now(): number;
  /** setTimer runs `fn` once after `ms` milliseconds (0 if negative). */
  setTimer(ms: number, fn: () => void): Timer;
  /** sleep resolves after `ms`; rejects with the signal's reason when it is aborted first. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

/** seconds converts epoch milliseconds to Freezer's whole epoch seconds. */
export function seconds(ms: number): number {
  return Math.floor(ms / 1000);
}

/**
 * MAX_TIMER_MS: Node's timers overflow above 2^31-1 ms (about 24.8 days) and fire at once; longer waits
 * are cut into pieces (a yearly cron job is legal).
 */
const MAX_TIMER_MS = 2 ** 31 - 1;

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimer(ms, fn) {
    let handle: NodeJS.Timeout;
    const due = Date.now() + Math.max(0, ms);
    const arm = () => {
      const left = due - Date.now();
      handle = setTimeout(left > MAX_TIMER_MS ? arm : fn, Math.min(Math.max(0, left), MAX_TIMER_MS));
    };
    arm();
    return { cancel: () => clearTimeout(handle) };
  },
  sleep(ms, signal) {
    return sleepWith(this, ms, signal);
  },
};

/** sleepWith implements Clock.sleep on top of setTimer. */
export function sleepWith(clock: Pick<Clock, 'setTimer'>, ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      timer.cancel();
      reject(signal!.reason);
    };
    const timer = clock.setTimer(ms, () => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    });
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

interface FakeTimer {
  due: number;
  seq: number;
  fn: () => void;
  cancelled: boolean;
}

/**
 * FakeClock: time moves only when `advance` or `jump` is called. Timers due on the way fire in (due, creation)
 * order, each at its own due time, with pending promise callbacks run in between, so code that awaits and
 * re-arms a timer sees the same sequence as with real time.
 */
export class FakeClock implements Clock {
  #now: number;
  #seq = 0;
  #timers: FakeTimer[] = [];

  constructor(start = Date.UTC(2026, 0, 5, 12, 0, 0)) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  setTimer(ms: number, fn: () => void): Timer {
    const t: FakeTimer = { due: this.#now + Math.max(0, ms), seq: this.#seq++, fn, cancelled: false };
    this.#timers.push(t);
    return { cancel: () => { t.cancelled = true; } };
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return sleepWith(this, ms, signal);
  }

  /** pending is the number of live timers. */
  get pending(): number {
    return this.#timers.filter((t) => !t.cancelled).length;
  }

  /**
   * jump moves time forward by `ms` at once, as a suspended machine sees it: timers that fell due are
   * late and fire (once each) at the next `advance`.
   */
  jump(ms: number): void {
    this.#now += ms;
  }

  /** advance moves time forward by `ms`, firing every timer that falls due on the way. */
  async advance(ms: number): Promise<void> {
    const end = this.#now + ms;
    await flush();
    for (;;) {
      this.#timers = this.#timers.filter((t) => !t.cancelled);
      const next = this.#timers.filter((t) => t.due <= end).sort((a, b) => a.due - b.due || a.seq - b.seq)[0];
      if (!next) break;
      this.#now = Math.max(this.#now, next.due);
      next.cancelled = true;
      next.fn();
      await flush();
    }
    this.#now = end;
    await flush();
  }
}

/** flush lets pending promise callbacks (and the I/O they start on real files) run. */
async function flush(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise<void>((r) => setImmediate(r));
}
