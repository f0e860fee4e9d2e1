/**
 * serialStage (engine/pipeline/serial.ts): encryption, sealing and verification in a thread of their own
 * give the same bytes and records as the same stages on the main thread, errors keep their class and
 * message, and stopping early never hangs.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { randomBytes } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { serialStage } from '../../engine/pipeline/serial.js';
import { runStages, type Stage } from '../../engine/pipeline/stages.js';
import { decryptStage } from '../../engine/transform/encrypt.js';
import { IntegrityRecord, sealStage, verifyStage } from '../../engine/transform/integrity.js';
import { BadPasswordError, IntegrityError } from '../../engine/errors.js';

const KEY = randomBytes(32);
const PASSWORD = Buffer.from('serial stage password');
const SEGMENT = 1 << 20;
// compressible and random parts, so a decryption with a wrong key is noticed (gzip header check)
const PLAIN = gzipSync(Buffer.concat([randomBytes(3 << 20), Buffer.alloc(2 << 20, 'floe ')]));

async function* pieces(b: Buffer, size: number): AsyncIterable<Buffer> {
  for (let off = 0; off < b.length; off += size) yield Buffer.from(b.subarray(off, off + size)); // owned copies: stages may take them
}

async function collect(stages: Stage[], input: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const b of runStages(input, stages)) parts.push(b);
  return Buffer.concat(parts);
}

function emptyRecord(): IntegrityRecord {
  return { alg: 'sha256', segment_size: 0, size: 0, segments: [] };
}

test('seal off-thread: same bytes and the same record as on the main thread', async () => {
  const here = emptyRecord();
  const there = emptyRecord();
  const a = await collect([sealStage('obj', KEY, SEGMENT, here)], pieces(PLAIN, 300_000));
  const b = await collect([serialStage([{ kind: 'seal', object: 'obj', key: KEY, segmentSize: SEGMENT }], { seal: there })], pieces(PLAIN, 300_000));
  assert.ok(a.equals(PLAIN) && b.equals(PLAIN));
  assert.equal(there, here);
  assert.is(there.segments.length, Math.ceil(PLAIN.length / SEGMENT));
});

test('encrypt + seal off-thread, then verify off-thread and decrypt: the plaintext back', async () => {
  const rec = emptyRecord();
  const cipher = await collect([serialStage([
    { kind: 'encrypt', password: PASSWORD },
    { kind: 'seal', object: 'obj', key: KEY, segmentSize: SEGMENT },
  ], { seal: rec })], pieces(PLAIN, 1 << 20));
  assert.is(cipher.subarray(0, 8).toString('latin1'), 'Salted__');
  assert.is(rec.size, cipher.length);
  const back = await collect([
    serialStage([{ kind: 'verify', object: 'obj', key: KEY, record: rec }]),
    decryptStage(PASSWORD),
  ], pieces(cipher, 700_000));
  assert.ok(back.equals(PLAIN));
  // the main-thread verifier accepts the off-thread tags too
  const again = await collect([verifyStage('obj', KEY, rec)], pieces(cipher, 1 << 20));
  assert.ok(again.equals(cipher));
});

test('a flipped bit: IntegrityError from the thread, nothing of the bad segment passed on', async () => {
  const rec = emptyRecord();
  await collect([serialStage([{ kind: 'seal', object: 'obj', key: KEY, segmentSize: SEGMENT }], { seal: rec })], pieces(PLAIN, 1 << 20));
  const bad = Buffer.from(PLAIN);
  bad[SEGMENT + 5] ^= 1;
  let passed = 0;
  try {
    for await (const b of runStages(pieces(bad, 1 << 20), [serialStage([{ kind: 'verify', object: 'obj', key: KEY, record: rec }])])) passed += b.length;
    assert.unreachable('must fail');
  } catch (err) {
    assert.instance(err, IntegrityError);
    assert.match((err as Error).message, /segment 2 of/);
  }
  assert.is(passed, SEGMENT, 'only the first (good) segment may pass');
});

test('a keyed record without the key: BadPasswordError keeps its class', async () => {
  const rec = emptyRecord();
  await collect([sealStage('obj', KEY, SEGMENT, rec)], pieces(PLAIN, 1 << 20));
  try {
    await collect([serialStage([{ kind: 'verify', object: 'obj', record: rec }])], pieces(PLAIN, 1 << 20));
    assert.unreachable('must fail');
  } catch (err) {
    assert.instance(err, BadPasswordError);
  }
});

test('a consumer that stops early, and an upstream error, end without hanging', async () => {
  const stage = serialStage([{ kind: 'seal', object: 'obj', segmentSize: SEGMENT }]);
  for await (const _ of runStages(pieces(PLAIN, 1 << 16), [stage])) break;
  async function* failing(): AsyncIterable<Buffer> {
    yield randomBytes(1000);
    throw new Error('upstream broke');
  }
  try {
    await collect([serialStage([{ kind: 'seal', object: 'obj', segmentSize: SEGMENT }])], failing());
    assert.unreachable('must fail');
  } catch (err) {
    assert.match((err as Error).message, /upstream broke/);
  }
});

test.run();
