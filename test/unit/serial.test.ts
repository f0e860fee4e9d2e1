/**
 * serialStage (engine/pipeline/serial.ts): encryption, sealing and verification in a thread of their own
 * give the same bytes and records as the same stages on the main thread, errors keep their class and
 * message, and stopping early never hangs. serialSource: the thread reads a local object itself, with and
 * without O_DIRECT, verifies it, stops at tampering, keeps the storage's errors, and closes what it
 * opened when the consumer stops.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { randomBytes } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { serialStage } from '../../engine/pipeline/serial.js';
import { runStages, type Stage } from '../../engine/pipeline/stages.js';
import { decryptStage, encryptBuffer } from '../../engine/transform/encrypt.js';
import { compressStage } from '../../engine/transform/compress.js';
import { encodeHeader } from '../../engine/archive/tar/header.js';
import { IntegrityRecord, sealStage, verifyStage } from '../../engine/transform/integrity.js';
import { BadPasswordError, IntegrityError, NotFoundError } from '../../engine/errors.js';
import { mkdtempSync, readdirSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serialSource } from '../../engine/pipeline/serial.js';
import { LocalStorage } from '../../engine/storage/local/index.js';

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

const root = mkdtempSync(join(tmpdir(), 'floe-serial-'));
test.after(() => rmSync(root, { recursive: true, force: true }));

/** stored writes `data` as object `key` of a local container and returns its record (8 MiB segments). */
async function stored(store: LocalStorage, key: string, data: Buffer): Promise<IntegrityRecord> {
  const rec = emptyRecord();
  await store.put(key, runStages(pieces(data, 3 << 20), [sealStage('obj', KEY, 8 << 20, rec)]));
  return rec;
}

const openFds = () => readdirSync('/proc/self/fd').length;

/** failureOf drains `src` and returns what it threw (undefined if it ended). */
async function failureOf(src: AsyncIterable<Buffer>): Promise<unknown> {
  try {
    for await (const _ of src) { /* drain */ }
  } catch (err) {
    return err;
  }
  return undefined;
}

test('serialSource: the thread reads and verifies the object itself, O_DIRECT or not, for a slow consumer too', async () => {
  // 42 MiB and a bit: more than the thread may send ahead (16 MiB) plus a segment, and a short tail
  const data = Buffer.concat([randomBytes(21 << 20), Buffer.alloc(21 << 20, 'floe '), randomBytes(12345)]);
  for (const direct of [true, false]) {
    const store = new LocalStorage(join(root, `c-${direct}`), { direct });
    const rec = await stored(store, 'data', data);
    const src = await store.source('data');
    assert.equal(src, { kind: 'local', container: store.container, key: 'data', direct });
    const parts: Buffer[] = [];
    let n = 0;
    for await (const b of serialSource(src, [{ kind: 'verify', object: 'obj', key: KEY, record: rec }], { chunkSize: 4 << 20, signal: new AbortController().signal })) {
      assert.ok(b.length <= 4 << 20, 'chunks of at most chunkSize');
      parts.push(b);
      if (++n % 4 === 0) await new Promise((r) => setTimeout(r, 5)); // a consumer slower than the disk
    }
    assert.ok(Buffer.concat(parts).equals(data), `the object's bytes, in order (direct: ${direct})`);
  }
});

test('serialSource: the thread also decrypts and decompresses; onRead counts the bytes of the object', async () => {
  // a zstd stream of several frames (as floe writes it) and 30 MiB of plaintext: more than the window; a
  // tar stream's first header, as in a backup, so that the decryption knows its password is the right one
  const head = encodeHeader({ name: './a', mode: 0o644, uid: 0, gid: 0, size: 0, mtime: 1, type: '0', linkname: '', uname: '', gname: '', devmajor: 0, devminor: 0 });
  const plain = Buffer.concat([head, randomBytes((14 << 20) - 512), Buffer.alloc(16 << 20, 'floe restore ')]);
  const zst = Buffer.concat(await Promise.all([0, 1, 2].map(async (i) => {
    const parts: Buffer[] = [];
    for await (const b of runStages(pieces(plain.subarray(i * 10 << 20, (i + 1) * 10 << 20), 1 << 20), [compressStage('zstd')])) parts.push(b);
    return Buffer.concat(parts);
  })));
  const store = new LocalStorage(join(root, 'decode'));
  // a skippable frame at the end: read after the last output, and still counted
  const skippable = Buffer.concat([Buffer.from([0x50, 0x2a, 0x4d, 0x18, 0, 0, 0x60, 0]), Buffer.alloc(6 << 20)]);
  for (const [key, obj, specs] of [
    ['zstd', Buffer.concat([zst, skippable]), [{ kind: 'decompress', compression: 'zstd' }]],
    ['zstd-enc', encryptBuffer(PASSWORD, zst), [{ kind: 'decrypt', password: PASSWORD }, { kind: 'decompress', compression: 'zstd' }]],
    ['none-enc', encryptBuffer(PASSWORD, plain), [{ kind: 'decrypt', password: PASSWORD }]],
  ] as const) {
    const rec = await stored(store, key, obj);
    let read = 0;
    const parts: Buffer[] = [];
    const src = serialSource(await store.source(key), [{ kind: 'verify', object: 'obj', key: KEY, record: rec }, ...specs], {
      chunkSize: 4 << 20, signal: new AbortController().signal, onRead: (n) => { read += n; },
    });
    for await (const b of src) parts.push(b);
    assert.ok(Buffer.concat(parts).equals(plain), `${key}: the plaintext`);
    assert.is(read, obj.length, `${key}: the object's bytes were counted, not the output's`);
  }
  // a wrong password and a corrupted frame keep their classes across the thread
  const rec = await stored(store, 'enc-wrong', encryptBuffer(PASSWORD, zst));
  const wrong = serialSource(await store.source('enc-wrong'), [{ kind: 'verify', object: 'obj', key: KEY, record: rec },
    { kind: 'decrypt', password: Buffer.from('not the password') }, { kind: 'decompress', compression: 'zstd' }], { chunkSize: 4 << 20, signal: new AbortController().signal });
  const w = await failureOf(wrong);
  assert.ok(w instanceof BadPasswordError, String(w));
  const bad = Buffer.from(zst);
  bad[bad.length >> 1] ^= 0xff;
  const brec = await stored(store, 'zstd-bad', bad);
  const broken = serialSource(await store.source('zstd-bad'), [{ kind: 'verify', object: 'obj', key: KEY, record: brec },
    { kind: 'decompress', compression: 'zstd' }], { chunkSize: 4 << 20, signal: new AbortController().signal });
  const b = await failureOf(broken);
  assert.ok(b instanceof IntegrityError && /zstd/.test(b.message), String(b));
});

test('serialSource: tampering stops it at the bad segment; a missing object is NotFoundError', async () => {
  const store = new LocalStorage(join(root, 'tamper'));
  const data = randomBytes(20 << 20);
  const rec = await stored(store, 'data', data);
  const file = join(store.container, 'data');
  const bad = readFileSync(file);
  bad[(8 << 20) + 99] ^= 1;
  writeFileSync(file, bad);
  let passed = 0;
  try {
    for await (const b of serialSource(await store.source('data'), [{ kind: 'verify', object: 'obj', key: KEY, record: rec }], { chunkSize: 4 << 20, signal: new AbortController().signal })) passed += b.length;
    assert.unreachable('must fail');
  } catch (err) {
    assert.instance(err, IntegrityError);
    assert.match((err as Error).message, /segment 2 of 3/);
  }
  assert.is(passed, 8 << 20, 'only the first (good) segment passed');

  await store.source('nothing').then(() => assert.unreachable('must fail'), (err) => assert.instance(err, NotFoundError));
  // gone between source() and the read: the thread's error keeps the storage's code and exit code
  const src = await store.source('data');
  rmSync(file);
  try {
    for await (const _ of serialSource(src, [{ kind: 'verify', object: 'obj', key: KEY, record: rec }], { chunkSize: 4 << 20, signal: new AbortController().signal })) { /* none */ }
    assert.unreachable('must fail');
  } catch (err) {
    const e = err as NotFoundError;
    const expected = new NotFoundError('x');
    assert.is(e.code, expected.code);
    assert.is(e.exitCode, expected.exitCode);
    assert.match(e.message, /data/);
  }
});

test('serialSource: a consumer that stops early, or an abort, ends it and closes the object', async () => {
  const store = new LocalStorage(join(root, 'stop'));
  const data = randomBytes(40 << 20);
  const rec = await stored(store, 'data', data);
  const src = await store.source('data');
  const before = openFds();
  for await (const _ of serialSource(src, [{ kind: 'verify', object: 'obj', key: KEY, record: rec }], { chunkSize: 4 << 20, signal: new AbortController().signal })) break;
  const ac = new AbortController();
  try {
    for await (const _ of serialSource(src, [{ kind: 'verify', object: 'obj', key: KEY, record: rec }], { chunkSize: 4 << 20, signal: ac.signal })) ac.abort(new Error('stop now'));
    assert.unreachable('must fail');
  } catch (err) {
    assert.match((err as Error).message, /stop now/);
  }
  await new Promise((r) => setTimeout(r, 50));
  assert.is(openFds(), before, 'no descriptor left open');
});

test.run();
