/**
 * The thread behind serial.ts: runs a chain of stateful stages (CFB encryption, segment sealing, segment
 * verification) over the buffers the main thread sends, in order, and sends their output back.
 *
 * Protocol (messages on parentPort):
 *   in:  { type: 'specs', specs, copyShared } the chain to run, first (the thread may be started before
 *                                it is known); copyShared: send shared memory back as copies
 *        { type: 'data', buf }   one input buffer, transferred (or a view of shared memory, passed)
 *        { type: 'end' }         no more input
 *   out: { type: 'out', buf }    one output buffer, in order, transferred when it owns its memory;
 *                                a view of shared memory is passed back as it is (copied with copyShared)
 *        { type: 'done', seal }  the chain finished; `seal`: the integrity record of a 'seal' spec
 *        { type: 'error', error: { name, code, message, exitCode } }
 * After 'done' or 'error' the thread ends by itself.
 */
import { parentPort } from 'node:worker_threads';
import { FloeError } from '../errors.js';
import { encryptStage } from '../transform/encrypt.js';
import { IntegrityRecord, sealStage, verifyStage } from '../transform/integrity.js';
import { released } from './gc.js';
import { transferable } from './pool.js';
import { BoundedQueue } from './queue.js';
import type { Stage } from './stages.js';
import type { SerialSpec } from './serial.js';

const port = parentPort!;
let startWith: (specs: SerialSpec[]) => void = () => undefined;
/** Send copies of shared-memory buffers back, not the buffers (serial.ts SerialOptions.copyShared). */
let copyShared = false;
const specsGiven = new Promise<SerialSpec[]>((resolve) => (startWith = resolve));
/** The main thread bounds what it sends (serial.ts WINDOW); this queue only has to hold it. */
const input = new BoundedQueue<Buffer>(1 << 20);
const controller = new AbortController();

port.on('message', (m: { type: 'specs'; specs: SerialSpec[]; copyShared?: boolean } | { type: 'data'; buf: Uint8Array } | { type: 'end' }) => {
  if (m.type === 'specs') {
    copyShared = m.copyShared ?? false;
    startWith(m.specs);
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

function build(spec: SerialSpec): Stage {
  switch (spec.kind) {
    case 'encrypt':
      return encryptStage(Buffer.from(spec.password), { backend: spec.backend, inPlace: true });
    case 'seal':
      seal = { alg: 'sha256', segment_size: spec.segmentSize, size: 0, segments: [] };
      return sealStage(spec.object, spec.key ? Buffer.from(spec.key) : undefined, spec.segmentSize, seal);
    case 'verify':
      return verifyStage(spec.object, spec.key ? Buffer.from(spec.key) : undefined, spec.record);
  }
}

function send(b: Buffer): void {
  if (b.buffer instanceof SharedArrayBuffer && !copyShared) {
    port.postMessage({ type: 'out', buf: b });
    return;
  }
  // A view of part of a larger buffer cannot be transferred without detaching the rest: copied then.
  const out = transferable(b);
  port.postMessage({ type: 'out', buf: out }, [out.buffer as ArrayBuffer]);
}

async function main(): Promise<void> {
  try {
    const specs = await specsGiven;
    let stream: AsyncIterable<Buffer> = input;
    for (const spec of specs) stream = build(spec)(stream, controller.signal);
    for await (const b of stream) if (b.length > 0) send(b);
    port.postMessage({ type: 'done', seal });
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
