import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { BoundedQueue } from '../../engine/pipeline/queue.js';
import { rechunk, runStages, Stage } from '../../engine/pipeline/stages.js';

async function collect(src: AsyncIterable<Buffer>): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for await (const b of src) out.push(b);
  return out;
}

async function* gen(sizes: number[]): AsyncIterable<Buffer> {
  let v = 0;
  for (const n of sizes) yield Buffer.alloc(n, v++ & 0xff);
}

test('BoundedQueue blocks the producer at depth', async () => {
  const q = new BoundedQueue<number>(2);
  let pushed = 0;
  const producer = (async () => {
    for (let i = 0; i < 5; i++) { await q.push(i); pushed++; }
    q.close();
  })();
  await new Promise((r) => setTimeout(r, 20));
  assert.is(pushed, 2, 'producer must wait while 2 items are queued');
  const got: number[] = [];
  for await (const x of q) got.push(x);
  await producer;
  assert.equal(got, [0, 1, 2, 3, 4]);
});

test('BoundedQueue.fail reaches both sides', async () => {
  const q = new BoundedQueue<number>(1);
  await q.push(1);
  const blocked = q.push(2);
  q.fail(new Error('boom'));
  await blocked.then(() => assert.unreachable('push should reject'), (e: Error) => assert.is(e.message, 'boom'));
  try {
    for await (const _ of q) assert.unreachable();
  } catch (e) {
    assert.is((e as Error).message, 'boom');
  }
});

test('rechunk cuts exact segments, last one short', async () => {
  const out = await collect(rechunk(10)(gen([3, 4, 5, 20, 1]), new AbortController().signal));
  assert.equal(out.map((b) => b.length), [10, 10, 10, 3]);
  const all = Buffer.concat(out);
  assert.equal(all, Buffer.concat(await collect(gen([3, 4, 5, 20, 1]))));
});

test('runStages passes data through stages in order', async () => {
  const double: Stage = async function* (input) { for await (const b of input) yield Buffer.concat([b, b]); };
  const out = await collect(runStages(gen([1, 2, 3]), [double, rechunk(4)]));
  assert.equal(Buffer.concat(out).length, 12);
  assert.equal(out.map((b) => b.length), [4, 4, 4]);
});

test('runStages: an error in one stage fails the consumer, and stops the source', async () => {
  let produced = 0;
  async function* endless(): AsyncIterable<Buffer> {
    for (;;) { produced++; yield Buffer.alloc(1024); }
  }
  const failing: Stage = async function* (input) {
    let n = 0;
    for await (const b of input) { if (++n === 5) throw new Error('stage broke'); yield b; }
  };
  try {
    await collect(runStages(endless(), [failing, rechunk(4096)]));
    assert.unreachable('should have thrown');
  } catch (e) {
    assert.is((e as Error).message, 'stage broke');
  }
  const before = produced;
  await new Promise((r) => setTimeout(r, 20));
  assert.ok(produced - before <= 2, 'source keeps running after failure');
  assert.ok(produced < 20, `source ran far ahead: ${produced}`);
});

test('runStages memory stays bounded: a slow consumer holds back the source', async () => {
  let produced = 0;
  async function* source(): AsyncIterable<Buffer> {
    for (let i = 0; i < 100; i++) { produced++; yield Buffer.alloc(1); }
  }
  const pass: Stage = async function* (input) { for await (const b of input) yield b; };
  const it = runStages(source(), [pass, pass], { depth: 2 })[Symbol.asyncIterator]();
  await it.next();
  await new Promise((r) => setTimeout(r, 20));
  assert.ok(produced <= 10, `produced ${produced} items ahead of a stopped consumer`);
  await it.return?.();
});

test.run();
