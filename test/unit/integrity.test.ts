/**
 * Integrity tags: seal then verify under any chunking; a flipped bit in segment k names k; dropped, extra,
 * swapped and moved segments; wrong key; downgrade to unkeyed tags; bad bytes are never passed on.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createCipheriv, createHash, createHmac, randomBytes } from 'node:crypto';
import {
  IntegrityRecord, canonicalJson, deriveIntegrityKey, macMetadata, sealStage, verifyStage,
} from '../../engine/transform/integrity.js';
import { rechunk, runStages, type Stage } from '../../engine/pipeline/stages.js';
import { BadPasswordError, IntegrityError } from '../../engine/errors.js';

const SEG = 1000;
const data = randomBytes(10 * SEG - 123); // 10 segments, the last one short
const object = 'data/tar/host_name/1700000000/0_1700000000/data';
const key = deriveIntegrityKey(Buffer.from('pw'), Buffer.from('0123456789abcdef'));

async function* chunks(buf: Buffer, size: number): AsyncIterable<Buffer> {
  for (let i = 0; i < buf.length; i += size) yield buf.subarray(i, i + size);
}

async function collect(stage: Stage, input: AsyncIterable<Buffer>, got: Buffer[] = []): Promise<Buffer> {
  for await (const b of stage(input, new AbortController().signal)) got.push(b);
  return Buffer.concat(got);
}

async function rejects(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a rejection');
}

async function seal(buf: Buffer, k: Buffer | undefined, obj = object): Promise<IntegrityRecord> {
  const rec = {} as IntegrityRecord;
  const out = await collect(sealStage(obj, k, SEG, rec), chunks(buf, 777));
  assert.ok(out.equals(buf), 'seal passes data through unchanged');
  return rec;
}

test('seal records one 16-byte tag per segment, whatever the input chunking', async () => {
  for (const k of [key, undefined]) {
    const rec = await seal(data, k);
    assert.is(rec.alg, k ? 'aes256-gmac' : 'aes256-gmac-public');
    assert.is(rec.segment_size, SEG);
    assert.is(rec.size, data.length);
    assert.is(rec.segments.length, 10);
    assert.ok(rec.segments.every((s) => /^[0-9a-f]{32}$/.test(s)));
    const viaRechunk = {} as IntegrityRecord;
    const out: Buffer[] = [];
    for await (const b of runStages(chunks(data, 333), [rechunk(SEG), sealStage(object, k, SEG, viaRechunk)])) out.push(b);
    assert.equal(viaRechunk, rec, 'the same tags after rechunk');
  }
});

/** prefix: "floe segment v1\0" || u32be len(object) || object || u64be index. */
function prefix(obj: string, index: number): Buffer {
  const name = Buffer.from(obj);
  const len = Buffer.alloc(4);
  len.writeUInt32BE(name.length);
  const idx = Buffer.alloc(8);
  idx.writeBigUInt64BE(BigInt(index));
  return Buffer.concat([Buffer.from('floe segment v1\0'), len, name, idx]);
}

/** gmacRef: AES-256-GCM's tag over `segment` as additional data, nonce from the object and index. */
function gmacRef(k: Buffer, obj: string, index: number, segment: Buffer): string {
  const nonce = createHash('sha256').update(prefix(obj, index)).digest().subarray(0, 12);
  const g = createCipheriv('aes-256-gcm', k, nonce);
  g.setAAD(segment);
  g.final();
  return g.getAuthTag().toString('hex');
}

test('the tag is GMAC(K, nonce = SHA-256(domain || len || object || u64 index)[0..12], segment)', async () => {
  const rec = await seal(data, key);
  assert.is(rec.segments[3], gmacRef(key, object, 3, data.subarray(3 * SEG, 4 * SEG)));
  assert.is(rec.segments[9], gmacRef(key, object, 9, data.subarray(9 * SEG)));
  const pub = await seal(data, undefined);
  const publicKey = createHash('sha256').update('floe public integrity key v1').digest();
  assert.is(pub.segments[3], gmacRef(publicKey, object, 3, data.subarray(3 * SEG, 4 * SEG)));
});

test('records written before GMAC (hmac-sha256, sha256) still verify, and still catch damage', async () => {
  const old = (k: Buffer | undefined): IntegrityRecord => {
    const segments: string[] = [];
    for (let i = 0; i * SEG < data.length; i++) {
      const h = k ? createHmac('sha256', k) : createHash('sha256');
      segments.push(h.update(prefix(object, i)).update(data.subarray(i * SEG, (i + 1) * SEG)).digest().subarray(0, 16).toString('hex'));
    }
    return { alg: k ? 'hmac-sha256' : 'sha256', segment_size: SEG, size: data.length, segments };
  };
  for (const k of [key, undefined]) {
    const rec = old(k);
    assert.ok((await collect(verifyStage(object, k, rec), chunks(data, 700))).equals(data));
    const bad = Buffer.from(data);
    bad[5 * SEG + 1] ^= 1;
    const err = await rejects(collect(verifyStage(object, k, rec), chunks(bad, 700)));
    assert.is(err.message, `data of ${object} is corrupted or tampered with (segment 6 of 10)`);
  }
  // a keyed reader refuses the unkeyed records of either generation
  assert.throws(() => verifyStage(object, key, old(undefined)), (e: unknown) => e instanceof IntegrityError);
});

test('verify passes intact data through under any chunking', async () => {
  for (const k of [key, undefined]) {
    const rec = await seal(data, k);
    for (const size of [1, 999, 1000, 1001, 4096, data.length]) {
      const out = await collect(verifyStage(object, k, rec), chunks(data, size));
      assert.ok(out.equals(data), `chunks of ${size}`);
    }
  }
  const empty = await seal(Buffer.alloc(0), key);
  assert.is(empty.segments.length, 0);
  assert.is((await collect(verifyStage(object, key, empty), chunks(Buffer.alloc(0), 1))).length, 0);
});

test('a flipped bit in segment k is caught before any byte of segment k is passed on', async () => {
  const rec = await seal(data, key);
  for (const k of [0, 2, 9]) {
    const bad = Buffer.from(data);
    bad[k * SEG + 17] ^= 0x04;
    const got: Buffer[] = [];
    const err = await rejects(collect(verifyStage(object, key, rec), chunks(bad, 250), got));
    assert.instance(err, IntegrityError);
    assert.is(err.message, `data of ${object} is corrupted or tampered with (segment ${k + 1} of 10)`);
    const passed = Buffer.concat(got);
    assert.is(passed.length, k * SEG, 'only the good segments before k came out');
    assert.ok(passed.equals(data.subarray(0, k * SEG)));
  }
});

test('truncation: a dropped last segment, a cut inside a segment, nothing at all', async () => {
  const rec = await seal(data, key);
  let err = await rejects(collect(verifyStage(object, key, rec), chunks(data.subarray(0, 9 * SEG), 1000)));
  assert.instance(err, IntegrityError);
  assert.is(err.message, `data of ${object} is truncated: 8.8 KiB of 9.6 KiB`);
  err = await rejects(collect(verifyStage(object, key, rec), chunks(data.subarray(0, 4500), 1000)));
  assert.match(err.message, 'is truncated');
  err = await rejects(collect(verifyStage(object, key, rec), chunks(Buffer.alloc(0), 1)));
  assert.match(err.message, 'is truncated: 0 B of 9.6 KiB');
});

test('extra bytes, swapped segments, another object, another key, unkeyed tags: all refused', async () => {
  const rec = await seal(data, key);
  let err = await rejects(collect(verifyStage(object, key, rec), chunks(Buffer.concat([data, Buffer.from('x')]), 1000)));
  assert.instance(err, IntegrityError);
  assert.match(err.message, 'longer than the recorded');
  const swapped = Buffer.concat([data.subarray(SEG, 2 * SEG), data.subarray(0, SEG), data.subarray(2 * SEG)]);
  err = await rejects(collect(verifyStage(object, key, rec), chunks(swapped, 1000)));
  assert.match(err.message, '(segment 1 of 10)');
  const other = 'data/tar/host_name/1700000000/1_1700000100/data';
  err = await rejects(collect(verifyStage(other, key, rec), chunks(data, 1000)));
  assert.match(err.message, 'corrupted or tampered with (segment 1 of 10)');
  const key2 = deriveIntegrityKey(Buffer.from('other'), Buffer.from('0123456789abcdef'));
  err = await rejects(collect(verifyStage(object, key2, rec), chunks(data, 1000)));
  assert.instance(err, IntegrityError);
  // An attacker recomputing unkeyed tags for altered data: a keyed reader refuses unkeyed records.
  const forged = await seal(Buffer.alloc(data.length, 1), undefined);
  assert.throws(() => verifyStage(object, key, forged), (e: unknown) => e instanceof IntegrityError);
  // A keyed record without the password.
  assert.throws(() => verifyStage(object, undefined, rec), (e: unknown) => e instanceof BadPasswordError);
});

test('malformed records are IntegrityErrors', () => {
  const good: IntegrityRecord = { alg: 'sha256', segment_size: 10, size: 15, segments: ['0'.repeat(32), '1'.repeat(32)] };
  const bad: Array<Partial<IntegrityRecord> & Record<string, unknown>> = [
    { ...good, alg: 'md5' as never },
    { ...good, segment_size: 0 },
    { ...good, size: -1 },
    { ...good, segments: ['xyz'] },
    { ...good, size: 25 },
  ];
  verifyStage(object, undefined, good);
  for (const r of bad) assert.throws(() => verifyStage(object, undefined, r as IntegrityRecord), (e: unknown) => e instanceof IntegrityError);
});

test('deriveIntegrityKey is HKDF-SHA256(password, salt, "floe integrity v1")', () => {
  const pw = Buffer.from('pw');
  const salt = Buffer.from('0123456789abcdef');
  // RFC 5869 by hand: PRK = HMAC(salt, IKM); OKM = T(1) = HMAC(PRK, info || 0x01) (32 bytes = one block).
  const prk = createHmac('sha256', salt).update(pw).digest();
  const okm = createHmac('sha256', prk).update(Buffer.concat([Buffer.from('floe integrity v1'), Buffer.from([1])])).digest();
  assert.ok(deriveIntegrityKey(pw, salt).equals(okm));
  assert.is(deriveIntegrityKey(pw, salt).length, 32);
});

test('macMetadata: canonical (key order does not matter), any change shows, keyed differs from unkeyed', () => {
  const a = { engine_name: 'tar', compression: 'gzip', encryption: true, floe: { level: 1, t0: 5, list: [1, { b: 2, a: 1 }] } };
  const b = { floe: { list: [1, { a: 1, b: 2 }], t0: 5, level: 1 }, encryption: true, compression: 'gzip', engine_name: 'tar' };
  assert.is(canonicalJson(a), canonicalJson(b));
  assert.is(macMetadata(key, a), macMetadata(key, b));
  assert.is(macMetadata(key, a).length, 64);
  assert.is.not(macMetadata(key, a), macMetadata(undefined, a));
  assert.is.not(macMetadata(key, a), macMetadata(key, { ...a, compression: 'bzip2' }));
  assert.is(macMetadata(key, { x: 1, y: undefined }), macMetadata(key, { x: 1 }));
  // A parse of the serialized document gives the same tag (what a reader recomputes).
  assert.is(macMetadata(key, JSON.parse(JSON.stringify(a))), macMetadata(key, a));
});

test.run();
