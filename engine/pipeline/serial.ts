/**
 * serialStage: the sequential, stateful transforms of the data path (AES-CFB encryption, segment sealing on
 * backup; segment verification on restore) run in a thread of their own instead of on the main thread.
 *
 * Why: these cannot be split across the pool (CFB encryption chains block to block; a segment's tag is
 * one running state), and on the main thread they took 1-2.5 s per GiB from the archiver (tar headers,
 * file reads, extraction), which is itself the bottleneck of uncompressed and zstd backups. In a thread of
 * their own they overlap with it. Piscina does not fit: it cannot keep state for one stream on one worker.
 *
 * Contract: a Stage like any other. Buffers go to the thread transferred and come back transferred, in
 * order; the caller gives up each input buffer. A view of shared memory (a SlotPool's slot) is passed,
 * not transferred, and comes back as the same Buffer object (so its pool still knows it); with
 * copyShared it comes back as copies, and the slot goes back to its pool (see SerialOptions). Memory: at
 * most WINDOW bytes (plus, when verifying, one segment, which the verifier must hold before it may
 * release it) are between the two threads. The first error (bad tag, wrong password...) comes back as the
 * same FloeError class with the same message and exit code; a crashed thread is a WorkerError. Stopping
 * early (abort, consumer break) terminates the thread.
 */
import { Worker } from 'node:worker_threads';
import { BadPasswordError, ExitCodeValue, FloeError, IntegrityError } from '../errors.js';
import type { CryptoBackend } from '../transform/encrypt.js';
import type { IntegrityRecord } from '../transform/integrity.js';
import { WorkerError, transferable } from './pool.js';
import { giveBack } from './slots.js';
import type { Stage } from './stages.js';

export type SerialSpec =
  /** encryptStage: "Salted__" + salt, then AES-256-CFB (the password stays in memory, never in argv or logs). */
  | { kind: 'encrypt'; password: Uint8Array; backend?: CryptoBackend }
  /** sealStage: tags every `segmentSize` bytes; the record comes back in `results.seal`. */
  | { kind: 'seal'; object: string; key?: Uint8Array; segmentSize: number }
  /** verifyStage: checks each segment against `record` before letting its bytes go. */
  | { kind: 'verify'; object: string; key?: Uint8Array; record: IntegrityRecord };

export interface SerialResults {
  /** Filled (Object.assign) when the stream ends, for a chain with a 'seal' spec. */
  seal?: IntegrityRecord;
}

export interface SerialOptions {
  /**
   * The thread sends back copies of shared-memory inputs (SlotPool slots) instead of the slots, and each
   * slot goes back to its pool once all its bytes have come back: the slot's reader can fill it again at
   * once, and the copy costs this thread, not the caller's. A restore reads into slots this way; its
   * extraction keeps buffers for as long as a member lasts, which a slot must not be held for.
   * Only for chains that pass the bytes through unchanged in length and order (verify, seal): the slots
   * are given back by counting the bytes that come back. An encrypt spec (which adds a header and writes
   * slots in place) is refused.
   */
  copyShared?: boolean;
}

/**
 * WINDOW: bytes sent and not yet handed on. 4 MiB (a few archive chunks or compressed blocks) keeps both
 * threads busy; 16 MiB was no faster and held ~45 MB more peak RSS (1 GiB gzip, encrypted backup).
 */
const WINDOW = 4 * 1024 * 1024;

const WORKER_URL = new URL('./serial-worker.js', import.meta.url);

type Reply =
  | { type: 'out'; buf: Uint8Array }
  | { type: 'done'; seal?: IntegrityRecord }
  | { type: 'error'; error: { name: string; code: string; message: string; exitCode?: ExitCodeValue } };

/** serialStage runs `specs`, in order, in a thread of its own (see the top of this file). */
export function serialStage(specs: SerialSpec[], results: SerialResults = {}, options: SerialOptions = {}): Stage {
  const copyShared = options.copyShared ?? false;
  if (copyShared && specs.some((s) => s.kind === 'encrypt')) throw new RangeError('copyShared needs a chain that keeps the bytes as they are (no encrypt spec)');
  const verifying = specs.find((s): s is Extract<SerialSpec, { kind: 'verify' }> => s.kind === 'verify');
  const window = WINDOW + (verifying ? verifying.record.segment_size : 0);
  return async function* (input, signal) {
    const worker = takeWorker();
    worker.postMessage({ type: 'specs', specs, copyShared });
    const ready: Buffer[] = [];
    /** Shared-memory buffers sent, in order: the thread returns each (as a new view) in the same order. */
    const shared: { buf: Buffer; done: number }[] = [];
    /** copyShared: every buffer sent, in order, and how many of its bytes have come back (as copies). */
    const sent: { buf: Buffer | null; left: number }[] = [];
    const cameBack = (n: number) => {
      while (n > 0 && sent.length > 0) {
        const head = sent[0]!;
        const k = Math.min(n, head.left);
        head.left -= k;
        n -= k;
        if (head.left === 0) {
          sent.shift();
          if (head.buf) giveBack(head.buf);
        }
      }
    };
    let inflight = 0;
    let done = false;
    let failure: unknown;
    let wake: (() => void) | undefined;
    let room: (() => void) | undefined;
    const notify = () => {
      const w = wake;
      wake = undefined;
      w?.();
    };
    const freeRoom = () => {
      const r = room;
      room = undefined;
      r?.();
    };
    const fail = (err: unknown) => {
      failure ??= err;
      notify();
      freeRoom();
    };
    worker.on('message', (m: Reply) => {
      if (m.type === 'out') {
        if (copyShared) cameBack(m.buf.byteLength);
        ready.push(m.buf.buffer instanceof SharedArrayBuffer ? sameShared(shared, m.buf) : Buffer.from(m.buf.buffer, m.buf.byteOffset, m.buf.byteLength));
      }
      else if (m.type === 'done') {
        if (m.seal && results.seal) Object.assign(results.seal, m.seal);
        done = true;
      } else fail(rebuild(m.error));
      notify();
    });
    worker.on('error', (err) => fail(new WorkerError(`serial worker failed: ${err.message}`, { cause: err })));
    worker.on('exit', (code) => {
      if (!done) fail(new WorkerError(`serial worker exited with code ${code}`));
    });
    const onAbort = () => fail(signal.reason ?? new Error('aborted'));
    signal.addEventListener('abort', onAbort, { once: true });

    const feeder = (async () => {
      try {
        for await (const buf of input) {
          while (failure === undefined && inflight >= window) await new Promise<void>((r) => (room = r));
          if (failure !== undefined) return;
          if (buf.length === 0) continue;
          inflight += buf.length;
          if (copyShared) sent.push({ buf: buf.buffer instanceof SharedArrayBuffer ? buf : null, left: buf.length });
          if (buf.buffer instanceof SharedArrayBuffer) {
            if (!copyShared) shared.push({ buf, done: 0 });
            worker.postMessage({ type: 'data', buf });
            continue;
          }
          const b = transferable(buf);
          worker.postMessage({ type: 'data', buf: b }, [b.buffer as ArrayBuffer]);
        }
        if (failure === undefined) worker.postMessage({ type: 'end' });
      } catch (err) {
        fail(err);
      }
    })();

    try {
      for (;;) {
        const b = ready.shift();
        if (b) {
          inflight = Math.max(0, inflight - b.length);
          freeRoom();
          yield b;
          continue;
        }
        if (failure !== undefined) throw failure;
        if (done) break;
        await new Promise<void>((r) => (wake = r));
      }
      await feeder;
    } finally {
      signal.removeEventListener('abort', onAbort);
      if (!done) {
        // Not awaiting the feeder: it may be waiting on upstream, which fails only once this stage has.
        fail(new Error('serial stage stopped'));
        await worker.terminate();
      }
    }
  };
}

/**
 * sameShared returns the Buffer that was sent for the shared view `got` (the oldest one not yet
 * returned, as stages keep order), so that callers see their own object back. A piece of it (a verifier
 * splits a buffer at a segment boundary) comes back as a copy: correct bytes, and that slot is never
 * given back; the buffer is done with once its pieces have all come back.
 */
function sameShared(sent: { buf: Buffer; done: number }[], got: Uint8Array): Buffer {
  const head = sent[0];
  if (head && head.done === 0 && head.buf.byteOffset === got.byteOffset && head.buf.length === got.byteLength) {
    sent.shift();
    return head.buf;
  }
  if (head && head.buf.byteOffset + head.done === got.byteOffset) {
    head.done += got.byteLength;
    if (head.done >= head.buf.length) sent.shift();
  }
  return Buffer.from(got);
}

/** spare: a thread started by prewarmSerialWorker and not used yet; `dead` once it failed or exited. */
let spare: { worker: Worker; dead: boolean } | undefined;

/**
 * prewarmSerialWorker starts the next serial stage's thread now: loading its modules takes ~50 ms, which
 * a backup otherwise waits for when its first buffer is ready (the CLI calls this before it loads the
 * action). The thread does not keep the process alive until a stage takes it.
 */
export function prewarmSerialWorker(): void {
  if (spare && !spare.dead) return;
  const s = { worker: new Worker(WORKER_URL), dead: false };
  s.worker.unref();
  s.worker.once('error', () => { s.dead = true; });
  s.worker.once('exit', () => { s.dead = true; });
  spare = s;
}

/**
 * takeWorker adopts the spare thread if it is alive, else starts one. A spare that died in the instant
 * before (its 'exit' not yet delivered) fails the stage with a WorkerError when it arrives; no retry.
 */
function takeWorker(): Worker {
  const s = spare;
  spare = undefined;
  if (s && !s.dead) {
    s.worker.removeAllListeners();
    s.worker.ref();
    return s.worker;
  }
  return new Worker(WORKER_URL);
}

/** rebuild turns a worker's plain error back into the FloeError class callers and tests look for. */
function rebuild(e: { name: string; code: string; message: string; exitCode?: ExitCodeValue }): Error {
  if (e.name === 'IntegrityError') return new IntegrityError(e.message);
  if (e.name === 'BadPasswordError') return new BadPasswordError(e.message);
  if (e.exitCode !== undefined) return new FloeError(e.code, e.message, e.exitCode);
  return new WorkerError(`serial worker failed: ${e.code}: ${e.message}`);
}

