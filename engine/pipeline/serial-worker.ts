/**
 * The thread behind serial.ts: runs a chain of stateful stages (CFB encryption, segment sealing, segment
 * verification; on restore also decryption and decompression) over the buffers the main thread sends, or
 * over an object it reads itself, in order, and sends their output back.
 *
 * Protocol (messages on parentPort):
 *   in:  { type: 'specs', specs } the chain to run, first (the thread may be started before it is known)
 *        { type: 'specs', specs, source, chunkSize, window } the chain to run over the object `source`,
 *                                which this thread reads itself (serial.ts serialSource); then no 'data'
 *                                comes, and at most `window` bytes are sent ahead of the credits
 *        { type: 'data', buf }   one input buffer, transferred (or a view of shared memory, passed)
 *        { type: 'end' }         no more input
 *        { type: 'credit', bytes } the consumer took that many bytes of the output (source mode)
 *   out: { type: 'out', buf, read } one output buffer, in order, transferred when it owns its memory;
 *                                a view of shared memory is passed back as it is; `read`: bytes of the
 *                                object read since the last message (source mode; its output may be
 *                                larger: decompressed), else 0
 *        { type: 'done', seal, read } the chain finished; `seal`: the integrity record of a 'seal' spec
 *        { type: 'error', error: { name, code, message, exitCode } }
 * After 'done' or 'error' the thread ends by itself.
 */
import { parentPort } from 'node:worker_threads';
import { FloeError } from '../errors.js';
import { decryptStage, encryptStage } from '../transform/encrypt.js';
import { IntegrityRecord, sealStage, verifyStage } from '../transform/integrity.js';
import { released } from './gc.js';
import { transferable } from './pool.js';
import { BoundedQueue } from './queue.js';
import { counted, type Stage } from './stages.js';
import type { SerialSpec, SerialStart as Start } from './serial.js';

const port = parentPort!;
let startWith: (start: Start) => void = () => undefined;
const specsGiven = new Promise<Start>((resolve) => (startWith = resolve));
/** Source mode: bytes sent and not yet credited, and the wait for credit. */
let uncredited = 0;
let onCredit: (() => void) | undefined;
/** The main thread bounds what it sends (serial.ts WINDOW); this queue only has to hold it. */
const input = new BoundedQueue<Buffer>(1 << 20);
const controller = new AbortController();

port.on('message', (m: Start | { type: 'data'; buf: Uint8Array } | { type: 'end' } | { type: 'credit'; bytes: number }) => {
  if (m.type === 'specs') {
    startWith(m);
    return;
  }
  if (m.type === 'credit') {
    uncredited -= m.bytes;
    const w = onCredit;
    onCredit = undefined;
    w?.();
    return;
  }
  if (m.type === 'end') {
    input.close();
    return;
  }
  if (!(m.buf.buffer instanceof SharedArrayBuffer)) released(m.buf.byteLength); // a slot is not garbage
  void input.push(Buffer.from(m.buf.buffer, m.buf.byteOffset, m.buf.byteLength)).catch(() => undefined);
});

let seal: IntegrityRecord | undefined;

async function build(spec: SerialSpec): Promise<Stage> {
  switch (spec.kind) {
    case 'encrypt':
      return encryptStage(Buffer.from(spec.password), { backend: spec.backend, inPlace: true });
    case 'seal':
      seal = { alg: 'sha256', segment_size: spec.segmentSize, size: 0, segments: [] };
      return sealStage(spec.object, spec.key ? Buffer.from(spec.key) : undefined, spec.segmentSize, seal);
    case 'verify':
      return verifyStage(spec.object, spec.key ? Buffer.from(spec.key) : undefined, spec.record);
    case 'decrypt':
      return decryptStage(Buffer.from(spec.password), undefined, { backend: spec.backend });
    case 'decompress':
      // loaded only here: a thread that encrypts or verifies does not load zlib and zstd (~3 ms)
      return (await import('../transform/compress.js')).decompressStage(spec.compression);
  }
}

function send(b: Buffer, read: number): void {
  if (b.buffer instanceof SharedArrayBuffer) {
    port.postMessage({ type: 'out', buf: b, read });
    return;
  }
  // A view of part of a larger buffer cannot be transferred without detaching the rest: copied then.
  const out = transferable(b);
  port.postMessage({ type: 'out', buf: out, read }, [out.buffer as ArrayBuffer]);
}

async function main(): Promise<void> {
  try {
    const start = await specsGiven;
    const source = 'source' in start ? start : undefined;
    let read = 0;
    let reported = 0;
    let stream: AsyncIterable<Buffer> = source
      ? counted((await import('../storage/registry.js')).readObjectSource(source.source, { chunkSize: source.chunkSize, signal: controller.signal }), (n) => { read += n; })
      : input;
    for (const spec of start.specs) stream = (await build(spec))(stream, controller.signal);
    for await (const b of stream) {
      const n = b.length; // 0 once sent: its memory is transferred
      if (n === 0) continue;
      send(b, read - reported); // read stays 0 without a source
      reported = read;
      if (!source) continue;
      released(n); // sent away: its wrapper is garbage
      uncredited += n;
      while (uncredited >= source.window) await new Promise<void>((r) => (onCredit = r));
    }
    // what was read after the last output (a skippable frame, the end of the last segment) counts too
    port.postMessage({ type: 'done', seal, read: read - reported });
  } catch (err) {
    const e = err as Partial<FloeError> & Error;
    port.postMessage({
      type: 'error',
      error: { name: e?.name ?? 'Error', code: e?.code ?? 'FLOE_ERR_WORKER', message: e?.message ?? String(err), exitCode: e?.exitCode },
    });
  }
  port.close();
}

void main();
