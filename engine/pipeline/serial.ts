/**
 * serialStage: the sequential, stateful transforms of the data path (AES-CFB encryption, segment sealing on
 * backup; segment verification on restore) run in a thread of their own instead of on the main thread.
 * serialSource: the same thread also reads the object it verifies (a restore from local storage), and can
 * decrypt and decompress it too, so that the main thread only extracts.
 *
 * Why: these cannot be split across the pool (CFB encryption chains block to block; a segment's tag is
 * one running state), and on the main thread they took 1-2.5 s per GiB from the archiver (tar headers,
 * file reads, extraction), which is itself the bottleneck of uncompressed and zstd backups. In a thread of
 * their own they overlap with it. Piscina does not fit: it cannot keep state for one stream on one worker.
 *
 * Contract: serialStage is a Stage like any other. Buffers go to the thread transferred and come back
 * transferred, in order; the caller gives up each input buffer. A view of shared memory (a SlotPool's
 * slot) is passed, not transferred, and comes back as the same Buffer object (so its pool still knows
 * it). Memory: at most WINDOW bytes (plus, when verifying, one segment, which the verifier must hold
 * before it may release it) are between the two threads. The first error (bad tag, wrong password...)
 * comes back as the same FloeError class with the same message and exit code; a crashed thread is a
 * WorkerError. Stopping early (abort, consumer break) terminates the thread.
 */
import { Worker } from 'node:worker_threads';
import { BadPasswordError, ExitCodeValue, FloeError, IntegrityError } from '../errors.js';
import type { CryptoBackend } from '../transform/encrypt.js';
import type { Compression } from '../transform/compress.js';
import type { IntegrityRecord } from '../transform/integrity.js';
import type { ObjectSource } from '../storage/driver.js';
import { WorkerError, transferable } from './pool.js';
import type { Stage } from './stages.js';

export type SerialSpec =
  /** encryptStage: "Salted__" + salt, then AES-256-CFB (the password stays in memory, never in argv or logs). */
  | { kind: 'encrypt'; password: Uint8Array; backend?: CryptoBackend }
  /** sealStage: tags every `segmentSize` bytes; the record comes back in `results.seal`. */
  | { kind: 'seal'; object: string; key?: Uint8Array; segmentSize: number }
  /** verifyStage: checks each segment against `record` before letting its bytes go. */
  | { kind: 'verify'; object: string; key?: Uint8Array; record: IntegrityRecord }
  /** decryptStage, here, one block after the other (a restore whose thread has time to spare). */
  | { kind: 'decrypt'; password: Uint8Array; backend?: CryptoBackend }
  /** decompressStage of `compression` (its code loads only in a thread that decompresses). */
  | { kind: 'decompress'; compression: Compression };

export interface SerialResults {
  /** Filled (Object.assign) when the stream ends, for a chain with a 'seal' spec. */
  seal?: IntegrityRecord;
}

/**
 * WINDOW: bytes sent and not yet handed on. 4 MiB (a few archive chunks or compressed blocks) keeps both
 * threads busy; 16 MiB was no faster and held ~45 MB more peak RSS (1 GiB gzip, encrypted backup).
 */
const WINDOW = 4 * 1024 * 1024;

const WORKER_URL = new URL('./serial-worker.js', import.meta.url);

type Reply =
  | { type: 'out'; buf: Uint8Array; read: number }
  | { type: 'done'; seal?: IntegrityRecord; read: number }
  | { type: 'error'; error: { name: string; code: string; message: string; exitCode?: ExitCodeValue } };

/** serialStage runs `specs`, in order, in a thread of its own (see the top of this file). */
export function serialStage(specs: SerialSpec[], results: SerialResults = {}): Stage {
  const verifying = specs.find((s): s is Extract<SerialSpec, { kind: 'verify' }> => s.kind === 'verify');
  const window = WINDOW + (verifying ? verifying.record.segment_size : 0);
  return (input, signal) => drive({ type: 'specs', specs }, results, signal, { input, window });
}

/**
 * serialSource reads the object `source` names in the thread itself and runs `specs` over its bytes,
 * which come back in order, in buffers of their own (at most `chunkSize` bytes each, unless a spec
 * decompresses). `onRead` is told the bytes of the object read, as they are.
 *
 * Why: a restore's extraction creates files with long runs of synchronous calls on the main thread, and
 * reads issued from the main thread's event loop waited for each run to end, so the disk and the
 * extraction took turns. Reading in this thread keeps the disk busy while the main thread works (measured
 * in engine/actions/restore.ts).
 * Memory: at most SOURCE_WINDOW bytes sent and not yet taken by the consumer, plus what the specs hold
 * (a verifier: one segment) and the reads in flight. Errors of the read come back as the storage's
 * (NotFoundError, StorageError: same message and exit code).
 */
export function serialSource(
  source: ObjectSource, specs: SerialSpec[], options: { chunkSize: number; signal: AbortSignal; onRead?: (bytes: number) => void },
): AsyncIterable<Buffer> {
  return drive({ type: 'specs', specs, source, chunkSize: options.chunkSize, window: SOURCE_WINDOW }, {}, options.signal, null, options.onRead);
}

/**
 * SOURCE_WINDOW: bytes a reading thread may send ahead of the consumer: two 8 MiB segments. 48 and 96 MiB
 * were no faster (1 GiB uncompressed restore: 1.23-1.37 s against 1.23-1.28 s) for 30-140 MB more peak RSS.
 */
const SOURCE_WINDOW = 16 * 1024 * 1024;

/** The first message to a serial thread (serial-worker.ts): a chain fed by messages, or one over a source. */
export type SerialStart =
  | { type: 'specs'; specs: SerialSpec[] }
  | { type: 'specs'; specs: SerialSpec[]; source: ObjectSource; chunkSize: number; window: number };

/**
 * drive runs one chain in a serial thread: feeds it `feed.input` (within `feed.window` bytes) or, with no
 * feed, lets it read its own source and sends credits for what the consumer takes; yields its output.
 */
async function* drive(
  start: SerialStart,
  results: SerialResults,
  signal: AbortSignal,
  feed: { input: AsyncIterable<Buffer>; window: number } | null,
  onRead?: (bytes: number) => void,
): AsyncGenerator<Buffer> {
  const worker = takeWorker();
  worker.postMessage(start);
  const ready: Buffer[] = [];
  /** Shared-memory buffers sent, in order: the thread returns each (as a new view) in the same order. */
  const shared: { buf: Buffer; done: number }[] = [];
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
      if (m.read) onRead?.(m.read);
      ready.push(m.buf.buffer instanceof SharedArrayBuffer ? sameShared(shared, m.buf) : Buffer.from(m.buf.buffer, m.buf.byteOffset, m.buf.byteLength));
    }
    else if (m.type === 'done') {
      if (m.read) onRead?.(m.read);
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

  const feeder = feed && (async () => {
    try {
      for await (const buf of feed.input) {
        while (failure === undefined && inflight >= feed.window) await new Promise<void>((r) => (room = r));
        if (failure !== undefined) return;
        if (buf.length === 0) continue;
        inflight += buf.length;
        if (buf.buffer instanceof SharedArrayBuffer) {
          shared.push({ buf, done: 0 });
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
        if (feed) {
          inflight = Math.max(0, inflight - b.length);
          freeRoom();
        } else worker.postMessage({ type: 'credit', bytes: b.length });
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

