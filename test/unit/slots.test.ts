/**
 * Reused, shared, page-aligned chunk buffers (engine/pipeline/slots.ts) and the stages that pass them on:
 * the pool hands out disjoint slots and takes back only its own; local storage writes slots, mixed with
 * ordinary buffers, byte for byte and gives every one back (O_DIRECT in place when aligned, else copied);
 * the sealing thread returns the very Buffer objects it was given, sealed or encrypted in place; the tar
 * writer fills slots while the pool has free ones and ordinary buffers after, with the same bytes.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { promises as fsp } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SlotPool, giveBack, slotPoolOf } from '../../engine/pipeline/slots.js';
import { serialStage } from '../../engine/pipeline/serial.js';
import { runStages } from '../../engine/pipeline/stages.js';
import { DirectWriter } from '../../engine/storage/local/direct.js';
import { LocalStorage } from '../../engine/storage/local/index.js';
import { decryptStage } from '../../engine/transform/encrypt.js';
import { IntegrityRecord, sealStage, verifyStage } from '../../engine/transform/integrity.js';
import { createTarBackup } from '../../engine/archive/tar/writer.js';

const root = mkdtempSync(join(tmpdir(), 'floe-slots-'));
const KiB = 1024;
const MiB = 1024 * KiB;

function pool(slotSize: number, count: number): SlotPool {
  const p = SlotPool.create(slotSize, count);
  if (!p) throw new Error('no shared memory for the test pool');
  return p;
}

/** filled takes a slot and fills it (or its first `length` bytes) from `data` at `off`. */
function filled(p: SlotPool, data: Buffer, off: number, length = p.slotSize): Buffer {
  const s = p.take();
  if (!s) throw new Error('pool ran dry');
  data.copy(s, 0, off, off + length);
  return length === s.length ? s : s.subarray(0, length);
}

test('a pool hands out disjoint, page-aligned, shared slots and takes back only its own whole slots', () => {
  const p = pool(64 * KiB, 4);
  const slots = [p.take(), p.take(), p.take(), p.take()];
  assert.is(p.take(), null, 'all four are out');
  for (const s of slots) {
    assert.ok(s && s.buffer instanceof SharedArrayBuffer && s.length === 64 * KiB && s.byteOffset % 4096 === 0);
    assert.is(slotPoolOf(s!), p);
  }
  assert.equal(new Set(slots.map((s) => s!.byteOffset)).size, 4, 'disjoint');
  p.give(Buffer.alloc(64 * KiB)); // not a slot
  p.give(slots[1]!.subarray(100)); // inside a slot, not at its start
  assert.is(p.free, 0);
  giveBack(slots[2]!.subarray(0, 10)); // a shorter view at the start gives the slot back
  p.give(slots[2]!); // twice: ignored
  assert.is(p.free, 1);
  assert.is(p.take()!.byteOffset, slots[2]!.byteOffset, 'the slot given back is taken again');
  assert.is(slotPoolOf(Buffer.alloc(10)), undefined);
  assert.throws(() => SlotPool.create(1000, 2), /multiple of 4096/);
});

/** spy wraps a file handle and records, for each write, whether its buffer was a slot (written in place). */
function spy(fh: fsp.FileHandle, inPlace: boolean[]): fsp.FileHandle {
  return new Proxy(fh, {
    get(target, prop) {
      if (prop === 'write') {
        return (buf: Buffer, ...rest: unknown[]) => {
          inPlace.push(slotPoolOf(buf) !== undefined);
          return (target.write as (...a: unknown[]) => unknown)(buf, ...rest);
        };
      }
      const v = Reflect.get(target, prop) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

/**
 * mixed yields `data` as: whole slots, a partial slot, ordinary buffers of odd sizes (after which slots
 * no longer start on an aligned file offset and must be copied), then whole slots again.
 */
function* mixed(p: SlotPool, data: Buffer): Generator<Buffer> {
  let off = 0;
  for (let i = 0; i < 3; i++, off += p.slotSize) yield filled(p, data, off);
  yield filled(p, data, off, 12_288); // aligned length: still written in place
  off += 12_288;
  for (const n of [1, 4095, 70_000]) {
    yield Buffer.from(data.subarray(off, off + n));
    off += n;
  }
  while (off + p.slotSize <= data.length) {
    yield filled(p, data, off);
    off += p.slotSize;
  }
  yield filled(p, data, off, data.length - off);
}

test('slots written by O_DIRECT in place when aligned, copied otherwise; exact bytes; every slot given back', async () => {
  for (const slotSize of [64 * KiB, 2 * MiB]) {
    const p = pool(slotSize, 64);
    const data = randomBytes(slotSize * 12 + 7777);
    const file = join(root, `direct-${slotSize}`);
    const inPlace: boolean[] = [];
    const fh = await fsp.open(file, 'w');
    const w = new DirectWriter(spy(fh, inPlace), null);
    for (const b of mixed(p, data)) await w.write(b);
    await w.finish();
    await w.close();
    assert.ok(readFileSync(file).equals(data), `bytes (slots of ${slotSize})`);
    assert.is(p.free, 64, 'every slot given back');
    assert.is(inPlace.filter(Boolean).length, 4, 'the three whole slots and the aligned partial one went in place');
  }
});

test('put gives every slot back, with and without O_DIRECT, and on a failing source', async () => {
  for (const direct of [true, false]) {
    const p = pool(64 * KiB, 64);
    const s = new LocalStorage(join(root, `store-${direct}`), { direct });
    await s.ensureWritable();
    const data = randomBytes(64 * KiB * 20 + 3);
    await s.put('obj', (async function* () { yield* mixed(p, data); })());
    assert.ok(readFileSync(join(s.container, 'obj')).equals(data));
    assert.is(p.free, 64, `every slot given back (direct: ${direct})`);
    const boom = new Error('source broke');
    const failed = await s.put('bad', (async function* () {
      yield filled(p, data, 0);
      throw boom;
    })()).catch((e: unknown) => e);
    assert.is(failed, boom);
    assert.not.ok(await s.exists('bad'));
  }
});

test('the sealing thread returns the same slot objects, sealed or encrypted in place; ordinary buffers too', async () => {
  const p = pool(64 * KiB, 32);
  const data = randomBytes(64 * KiB * 10 + 999);
  data.set([0x1f, 0x8b, 0x08]); // a gzip magic: the decrypter checks for a known plaintext
  const password = Buffer.from('slots');
  for (const encrypt of [false, true]) {
    const sent: Buffer[] = [];
    const source = (async function* () {
      for (const b of mixed(p, data)) {
        sent.push(b);
        yield b;
      }
    })();
    const rec: IntegrityRecord = { alg: 'sha256', segment_size: 0, size: 0, segments: [] };
    const key = randomBytes(32);
    const stage = serialStage([
      ...(encrypt ? [{ kind: 'encrypt' as const, password }] : []),
      { kind: 'seal', object: 'obj', key, segmentSize: 256 * KiB },
    ], { seal: rec });
    const out: Buffer[] = [];
    for await (const b of runStages(source, [stage])) out.push(Buffer.from(b)); // copied before the slot is reused
    assert.ok(out.length >= sent.length);
    const stream = Buffer.concat(out);
    assert.is(rec.size, stream.length);
    // the tags hold, and the stream is the data (or decrypts to it)
    const parts: Buffer[] = [];
    const stages = [verifyStage('obj', key, rec), ...(encrypt ? [decryptStage(password)] : [])];
    for await (const b of runStages((async function* () { yield stream; })(), stages)) parts.push(b);
    assert.ok(Buffer.concat(parts).equals(data), `round trip (encrypt: ${encrypt})`);
    for (const b of sent) giveBack(b);
    assert.is(p.free, 32);
  }
});

test('slots keep their identity through the thread (so storage can give them back)', async () => {
  const p = pool(64 * KiB, 8);
  const data = randomBytes(64 * KiB * 4);
  const sent = [0, 1, 2, 3].map((i) => filled(p, data, i * 64 * KiB));
  const plainBytes = randomBytes(5000);
  const plain = Buffer.from(plainBytes); // transferred to the thread: detached here
  const rec: IntegrityRecord = { alg: 'sha256', segment_size: 0, size: 0, segments: [] };
  const stage = serialStage([{ kind: 'seal', object: 'obj', key: randomBytes(32), segmentSize: MiB }], { seal: rec });
  const out: Buffer[] = [];
  for await (const b of runStages((async function* () { yield sent[0]; yield sent[1]; yield plain; yield sent[2]; yield sent[3]; })(), [stage])) out.push(b);
  assert.is(out.length, 5);
  for (const [i, j] of [[0, 0], [1, 1], [3, 2], [4, 3]]) assert.ok(out[i] === sent[j], `slot ${j} is the same object`);
  assert.ok(out[2].equals(plainBytes) && slotPoolOf(out[2]) === undefined);
});

test('a verifier that splits a slot at a segment boundary: pieces come back as copies, later slots as themselves', async () => {
  const p = pool(64 * KiB, 8);
  const data = randomBytes(64 * KiB * 4);
  const key = randomBytes(32);
  const rec: IntegrityRecord = { alg: 'sha256', segment_size: 0, size: 0, segments: [] };
  for await (const _ of sealStage('obj', key, 96 * KiB, rec)((async function* () { yield data; })(), new AbortController().signal)) { /* tags */ }
  const sent = [0, 1, 2, 3].map((i) => filled(p, data, i * 64 * KiB));
  const out: Buffer[] = [];
  const stage = serialStage([{ kind: 'verify', object: 'obj', key, record: rec }]);
  for await (const b of runStages((async function* () { yield* sent; })(), [stage])) out.push(b);
  assert.ok(Buffer.concat(out).equals(data));
  // segments of 96 KiB end at 96 and 192 KiB: only slot 1 ([64, 128) KiB) is cut
  assert.is(out.length, 5);
  assert.ok(out[0] === sent[0], 'slot 0 is itself');
  assert.ok(out[3] === sent[2] && out[4] === sent[3], 'slots 2 and 3 are themselves, after the pieces of slot 1');
  assert.ok(out[1].length === 32 * KiB && out[2].length === 32 * KiB && slotPoolOf(out[1]) === undefined && slotPoolOf(out[2]) === undefined, 'slot 1 came back as two copies');
});

test('the tar writer fills slots while the pool has free ones, then ordinary buffers: the same archive', async () => {
  const src = join(root, 'tree');
  mkdirSync(join(src, 'd'), { recursive: true });
  for (let i = 0; i < 40; i++) writeFileSync(join(src, 'd', `f${i}`), randomBytes(1000 + i * 3000));
  writeFileSync(join(src, 'big'), randomBytes(3 * MiB + 5));
  const now = () => 1_700_000_000_000_000_000n;
  const read = async (slots: SlotPool | null) => {
    const b = createTarBackup({ root: src, exclude: [], dereference: 'none', now, slots, chunkSize: 64 * KiB });
    const parts: Buffer[] = [];
    const kinds: boolean[] = [];
    for await (const c of b.stream) {
      kinds.push(slotPoolOf(c) !== undefined);
      parts.push(Buffer.from(c)); // not given back: the pool runs dry
    }
    return { tar: Buffer.concat(parts), kinds };
  };
  await read(null); // reading sets the new files' atime (relatime), which the headers carry: settle it first
  const plain = await read(null);
  const p = pool(64 * KiB, 6);
  const pooled = await read(p);
  assert.ok(pooled.tar.equals(plain.tar), 'the same archive');
  assert.equal(pooled.kinds.slice(0, 6), [true, true, true, true, true, true]);
  assert.ok(pooled.kinds.slice(6).every((k) => !k), 'ordinary buffers once the pool is dry');
});

test('without shared memory (an address-space limit), create returns null', () => {
  const script = `
    import { SlotPool } from ${JSON.stringify(new URL('../../engine/pipeline/slots.js', import.meta.url).href)};
    let reserved = true;
    try { new WebAssembly.Memory({ initial: 32, maximum: 32, shared: true }); } catch { reserved = false; }
    console.log(SlotPool.create(2 * 1024 * 1024, 16) === null ? 'null' : 'pool', reserved ? 'reserved' : 'refused');
  `;
  const r = spawnSync('bash', ['-c', 'ulimit -v 3000000; exec node --input-type=module -e "$0"', script], { encoding: 'utf8' });
  assert.is(r.status, 0, r.stderr);
  const [made, reserved] = r.stdout.trim().split(' ');
  if (reserved === 'reserved') console.log('  note: this node reserved shared wasm memory under ulimit -v; the null path was not exercised');
  else assert.is(made, 'null');
});

test.after(() => rmSync(root, { recursive: true, force: true }));
test.run();
