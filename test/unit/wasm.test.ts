/**
 * WASM kernels against their plain-TypeScript references (wasm/reference.ts), both module variants
 * (SIMD and scalar): inputs of awkward sizes (0, 1, block-1, block, block+1, several MiB across the
 * facade's 1 MiB windows), streaming across arbitrary buffer splits, AES-256-CFB against NIST SP 800-38A,
 * node:crypto and the real `openssl enc`, and the error contract (typed errors, worker transfer).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { createCipheriv, createDecipheriv } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import {
  FINE_LEN, FixedSegmenter, Kernel, KernelError, fineCount, KernelErrorCode, fromTransferable, gearTable, loadKernelModule,
  toTransferable, type WeakMatches,
} from '../../wasm/index.js';
import {
  AesCfbRef, CdcRef, blockSignatureRef, encryptBlockRef, expandKey256Ref, fineSumsRef, rollingChecksumsRef,
  scanRef, weakSumRef, xxh64Ref,
} from '../../wasm/reference.js';
import { KernelInstance } from '../../wasm/instance.js';
import { IntegrityError } from '../../engine/errors.js';

/** bytes: deterministic pseudo-random data (xorshift32), so failures reproduce. */
function bytes(n: number, seed = 1): Buffer {
  const out = Buffer.allocUnsafe(n);
  let s = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    out[i] = s & 0xff;
  }
  return out;
}

/** splits cuts buf into pieces of pseudo-random sizes in [0, max] (empty pieces included). */
function splits(buf: Uint8Array, max: number, seed = 7): Uint8Array[] {
  const r = bytes(buf.length + 16, seed);
  const out: Uint8Array[] = [];
  let at = 0;
  for (let i = 0; at < buf.length; i++) {
    const len = ((r[i % r.length] << 8) | r[(i + 1) % r.length]) % (max + 1);
    out.push(buf.subarray(at, at + len));
    at += len;
  }
  return out;
}

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

/**
 * same compares two long sequences and reports the first difference: uvu's assert.equal would diff
 * megabytes of output, which takes minutes, when a kernel is wrong.
 */
function same(got: ArrayLike<number>, want: ArrayLike<number>, what = ''): void {
  const n = Math.min(got.length, want.length);
  let i = 0;
  while (i < n && got[i] === want[i]) i++;
  if (i === n && got.length === want.length) return;
  assert.unreachable(`${what}: lengths ${got.length}/${want.length}, first difference at ${i}: ` +
    `got ${got[i]}, want ${want[i]}`);
}
const kernels = { simd: Kernel.create({ simd: true }), scalar: Kernel.create({ simd: false }) };
const MiB = 1 << 20;

test('both module variants load, and report their variant', () => {
  assert.is(kernels.simd.simd, true);
  assert.is(kernels.scalar.simd, false);
});

for (const [name, k] of Object.entries(kernels)) {
  test(`${name}: weak sum and rolling checksums match the reference at awkward sizes`, () => {
    for (const n of [1, 7, 16, 700, 4096]) {
      for (const len of [0, 1, n - 1, n, n + 1, n + 8, n + 9, 3 * n + 7]) {
        const buf = bytes(len, n + len);
        assert.is(k.weakSum(buf), weakSumRef(buf), `weakSum n=${n} len=${len}`);
        same(k.rollingChecksums(buf, n), rollingChecksumsRef(buf, n), `rolling n=${n} len=${len}`);
      }
    }
    const ff = Buffer.alloc(10_000, 0xff); // maximal bytes: exercises every wrap-around mod 2^16
    same(k.rollingChecksums(ff, 4096), rollingChecksumsRef(ff, 4096));
  });

  test(`${name}: rolling checksums over several MiB cross the 1 MiB windows correctly`, () => {
    const buf = bytes(3 * MiB + 13, 3);
    for (const n of [4096, 1_500_000]) same(k.rollingChecksums(buf, n), rollingChecksumsRef(buf, n), `n=${n}`);
  });

  test(`${name}: block signature matches the reference (short last block)`, () => {
    for (const len of [0, 1, 4095, 4096, 4097, 2 * MiB + 5]) {
      const buf = bytes(len, len);
      same(k.blockSignature(buf, 4096), blockSignatureRef(buf, 4096), `len=${len}`);
    }
  });

  test(`${name}: XXH64 equals xxHash's (known values) and its reference at every tail length`, () => {
    // values printed by the real `xxhsum -H1` (xxHash 0.8)
    assert.is(k.xxh64(new Uint8Array(0)), 0xef46db3751d8e999n);
    assert.is(k.xxh64(Buffer.from('abc')), 0x44bc2cf5ad770999n);
    assert.is(xxh64Ref(new Uint8Array(0)), 0xef46db3751d8e999n);
    assert.is(xxh64Ref(Buffer.from('abc')), 0x44bc2cf5ad770999n);
    for (let len = 0; len <= 100; len++) {
      const buf = bytes(len, len + 1);
      for (const seed of [0n, 1n, 0xfedcba9876543210n]) assert.is(k.xxh64(buf, seed), xxh64Ref(buf, seed), `len=${len} seed=${seed}`);
    }
    const big = bytes(MiB + 3, 5);
    assert.is(k.xxh64(big, 7n), xxh64Ref(big, 7n));
  });

  test(`${name}: fine sums match the reference on every grid, from any sub-block start`, () => {
    const seed = hex('0123456789abcdef');
    const seedN = 0xefcdab8967452301n; // the same 8 bytes read little-endian
    for (const [n, f] of [[4096, 512], [4100, 512], [700, 700], [1000, 333], [64, 1]] as const) {
      for (const len of [0, 1, f - 1, f, f + 1, n - 1, n, n + 1, 3 * n + f + 5]) {
        const buf = bytes(len, n + len);
        same(k.fineSums(buf, n, f, seed), fineSumsRef(buf, n, f, seedN), `n=${n} f=${f} len=${len}`);
        assert.is(fineCount(len, n, f) * FINE_LEN, fineSumsRef(buf, n, f, seedN).length, `count n=${n} f=${f} len=${len}`);
      }
    }
    // A run that starts inside a block: equal to the whole-file sums from that sub-block on.
    const n = 32768;
    const f = 512;
    const buf = bytes(2 * MiB + 777, 9); // crosses the facade's 1 MiB calls, short last block
    const all = k.fineSums(buf, n, f, seed);
    same(all, fineSumsRef(buf, n, f, seedN), 'whole');
    for (const start of [0, f, 5 * f, n - f, n, 3 * n + 7 * f]) {
      const part = k.fineSums(buf.subarray(start, start + 100_000), n, f, seed, start % n);
      const from = (Math.floor(start / n) * Math.ceil(n / f) + (start % n) / f) * FINE_LEN;
      same(part.subarray(0, part.length - FINE_LEN), all.subarray(from, from + part.length - FINE_LEN), `start=${start}`);
      assert.is(part.length / FINE_LEN, fineCount(100_000, n, f, start % n));
    }
    assert.throws(() => k.fineSums(buf, n, f, seed, 100), (e: unknown) => e instanceof KernelError && e.code === KernelErrorCode.INPUT);
    assert.throws(() => k.fineSums(buf, n, f, seed.subarray(0, 4)), (e: unknown) => e instanceof KernelError && e.code === KernelErrorCode.INPUT);
  });

  test(`${name}: scan reports every weak match, as the reference does`, () => {
    const n = 512;
    const old = bytes(600_000, 11);
    const weaks = blockSignatureRef(old, n);
    // New data: old with an insertion, a deletion and a rewritten region, so matches shift.
    const neu = Buffer.concat([old.subarray(0, 100_000), bytes(333, 12), old.subarray(100_000, 300_000),
      old.subarray(301_000, 500_000), bytes(50_000, 13), old.subarray(550_000)]);
    const table = k.signatureTable(weaks, n);
    const got = table.scan(neu);
    const want = scanRef(neu, n, weaks);
    assert.is(got.base, 0);
    same(Array.from(got.offsets), want.offsets);
    same(Array.from(got.blocks), want.blocks);
    assert.ok(want.offsets.length > 900, 'the fixture has many matches');
    table.dispose();
  });

  test(`${name}: scan of repeated blocks reports the first block and chains the others`, () => {
    const n = 64;
    const old = Buffer.concat([Buffer.alloc(n * 3), bytes(n, 5), Buffer.alloc(n)]);
    const table = k.signatureTable(blockSignatureRef(old, n), n);
    assert.equal(Array.from(table.nextSameWeak), [1, 2, 4, -1, -1]);
    const got = table.scan(Buffer.alloc(n + 3));
    assert.equal(Array.from(got.offsets), [0, 1, 2, 3]);
    assert.equal(Array.from(got.blocks), [0, 0, 0, 0]);
    table.dispose();
  });

  test(`${name}: streaming scan over arbitrary splits equals the one-shot scan`, () => {
    const n = 300;
    const old = bytes(200_000, 21);
    const weaks = blockSignatureRef(old, n);
    const neu = Buffer.concat([bytes(77, 22), old, bytes(1000, 23), old.subarray(5000, 90_000)]);
    const table = k.signatureTable(weaks, n);
    const want = scanRef(neu, n, weaks);
    for (const max of [1, 299, 301, 5000, 3 * MiB]) {
      const scanner = table.scanner();
      const offsets: number[] = [];
      const blocks: number[] = [];
      for (const piece of splits(neu, max, max)) {
        const m: WeakMatches = scanner.push(piece);
        m.offsets.forEach((o, i) => { offsets.push(m.base + o); blocks.push(m.blocks[i]); });
      }
      same(offsets, want.offsets, `max piece ${max}`);
      same(blocks, want.blocks, `max piece ${max}`);
    }
    table.dispose();
  });

  test(`${name}: scan over several MiB with a large table`, () => {
    const n = 2048;
    const old = bytes(4 * MiB, 31);
    const weaks = blockSignatureRef(old, n);
    const neu = Buffer.concat([old.subarray(1234, 2 * MiB), bytes(4321, 32), old.subarray(2 * MiB + 999)]);
    const table = k.signatureTable(weaks, n);
    const got = table.scan(neu);
    const want = scanRef(neu, n, weaks);
    same(Array.from(got.offsets), want.offsets);
    same(Array.from(got.blocks), want.blocks);
    table.dispose();
  });

  const key = bytes(32, 41);
  const cdcOptions = { minSize: 2048, avgSize: 8192, maxSize: 65536 };

  test(`${name}: FastCDC cuts equal the reference, and are the same for any split`, () => {
    const gear = gearTable(key);
    const data = Buffer.concat([bytes(5 * MiB + 17, 42), Buffer.alloc(300_000), bytes(70_000, 43)]);
    const want = new CdcRef(gear, cdcOptions).push(data);
    const seg = k.cdc({ key }, cdcOptions);
    same(Array.from(seg.push(data)), want);
    const ends = want.map((e, i) => e - (i ? want[i - 1] : 0));
    assert.ok(ends.every((len) => len >= 2048 && len <= 65536), 'chunk sizes within [min, max]');
    assert.ok(ends.includes(65536), 'zeros are cut at maxSize');
    const mean = ends.reduce((a, b) => a + b, 0) / ends.length;
    assert.ok(mean > 4096 && mean < 20_000, `mean chunk ${mean} near avgSize`);
    for (const max of [1, 100, 2047, 70_000, 2 * MiB]) {
      // Tiny pieces cost a call each: feed them a 200 kB prefix (cuts depend only on earlier bytes).
      const input = max < 1000 ? data.subarray(0, 200_000) : data;
      const expect = want.filter((c) => c <= input.length);
      seg.reset();
      const cuts: number[] = [];
      let at = 0;
      for (const piece of splits(input, max, max + 1)) {
        seg.push(piece).forEach((c) => cuts.push(at + c));
        at += piece.length;
      }
      same(cuts, expect, `max piece ${max}`);
      assert.is(seg.pending, input.length - expect[expect.length - 1]);
    }
    seg.dispose();
  });

  test(`${name}: FastCDC is content-defined (an insertion moves only nearby cuts) and keyed`, () => {
    const data = bytes(2 * MiB, 44);
    const a = k.cdc({ key }, cdcOptions);
    const cutsA = new Set(Array.from(a.push(data)));
    a.reset();
    const shifted = Array.from(a.push(Buffer.concat([bytes(100, 45), data]))).map((c) => c - 100);
    const kept = shifted.filter((c) => cutsA.has(c)).length;
    assert.ok(kept > cutsA.size * 0.95, `${kept} of ${cutsA.size} cuts survive an insertion`);
    const b = k.cdc({ key: bytes(32, 46) }, cdcOptions);
    const cutsB = Array.from(b.push(data));
    assert.ok(cutsB.filter((c) => cutsA.has(c)).length < cutsA.size * 0.2, 'another key cuts elsewhere');
    a.dispose();
    b.dispose();
  });

  test(`${name}: AES-256-CFB128 matches NIST SP 800-38A F.3.17/F.3.18 and FIPS-197 C.3`, () => {
    const key = hex('603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4');
    const iv = hex('000102030405060708090a0b0c0d0e0f');
    const pt = hex(`6bc1bee22e409f96e93d7e117393172a ae2d8a571e03ac9c9eb76fac45af8e51
                    30c81c46a35ce411e5fbc1191a0a52ef f69f2445df4f9b17ad2b417be66c3710`);
    const ct = hex(`dc7e84bfda79164b7ecd8486985d3860 39ffed143b28b1c832113c6331e5407b
                    df10132415e54b92a13ed0a8267ae2f9 75a385741ab9cef82031623d55b1e471`);
    assert.equal(Buffer.from(k.aesCfb(key, iv, 'encrypt').update(pt)), ct);
    assert.equal(Buffer.from(k.aesCfb(key, iv, 'decrypt').update(ct)), pt);
    // One block of CFB over zeros is E(IV): the FIPS-197 AES-256 example.
    const fipsKey = hex('000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f');
    const block = k.aesCfb(fipsKey, hex('00112233445566778899aabbccddeeff'), 'encrypt').update(Buffer.alloc(16));
    assert.equal(Buffer.from(block), hex('8ea2b7ca516745bfeafc49904b496089'));
  });

  test(`${name}: AES-256-CFB equals node:crypto and the reference, streamed over any split`, () => {
    const key = bytes(32, 51);
    const iv = bytes(16, 52);
    for (const len of [0, 1, 15, 16, 17, 4095, MiB + 5, 3 * MiB + 3]) {
      const pt = bytes(len, 53 + len);
      const c = createCipheriv('aes-256-cfb', key, iv);
      const want = Buffer.concat([c.update(pt), c.final()]);
      same(Buffer.from(k.aesCfb(key, iv, 'encrypt').update(pt)), want, `encrypt len=${len}`);
      same(Buffer.from(k.aesCfb(key, iv, 'decrypt').update(want)), pt, `decrypt len=${len}`);
      if (len <= 70_000) same(Buffer.from(new AesCfbRef(key, iv, 'encrypt').update(pt)), want, `ref len=${len}`);
    }
    const pt = bytes(2 * MiB + 7, 54);
    const d = createDecipheriv('aes-256-cfb', key, iv);
    const ct = Buffer.concat([createCipheriv('aes-256-cfb', key, iv).update(pt)]);
    same(Buffer.concat([d.update(ct), d.final()]), pt);
    for (const max of [1, 15, 17, 1000, MiB + 1]) {
      const len = max < 1000 ? 100_003 : pt.length; // tiny pieces cost a call each
      const enc = k.aesCfb(key, iv, 'encrypt');
      const dec = k.aesCfb(key, iv, 'decrypt');
      const encOut = splits(pt.subarray(0, len), max, max).map((p) => Buffer.from(enc.update(p)));
      same(Buffer.concat(encOut), ct.subarray(0, len), `encrypt, pieces up to ${max}`);
      const decOut = splits(ct.subarray(0, len), max, max + 3).map((p) => Buffer.from(dec.update(p)));
      same(Buffer.concat(decOut), pt.subarray(0, len), `decrypt, pieces up to ${max}`);
      assert.is(enc.position, len % 16);
      enc.dispose();
      dec.dispose();
    }
    const inPlace = Buffer.from(pt.subarray(0, 100_003));
    k.aesCfb(key, iv, 'encrypt').update(inPlace, inPlace);
    same(inPlace, ct.subarray(0, 100_003));
  });

  test(`${name}: CFB segments decrypt independently from the previous ciphertext block`, () => {
    const key = bytes(32, 61);
    const iv = bytes(16, 62);
    const pt = bytes(1_000_000, 63);
    const ct = Buffer.from(k.aesCfb(key, iv, 'encrypt').update(pt));
    const at = 16 * 20_000;
    const tail = k.aesCfb(key, ct.subarray(at - 16, at), 'decrypt').update(ct.subarray(at));
    same(Buffer.from(tail), pt.subarray(at));
  });
}

test('the byte-oriented AES reference matches FIPS-197 C.3', () => {
  const rk = expandKey256Ref(hex('000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f'));
  const block = hex('00112233445566778899aabbccddeeff');
  encryptBlockRef(rk, block);
  assert.equal(block, hex('8ea2b7ca516745bfeafc49904b496089'));
});

test('AES-256-CFB equals the real `openssl enc -aes-256-cfb -K -iv`, both ways', () => {
  const key = bytes(32, 71);
  const iv = bytes(16, 72);
  const pt = bytes(300_001, 73);
  const args = ['enc', '-aes-256-cfb', '-K', key.toString('hex'), '-iv', iv.toString('hex')];
  const enc = spawnSync('openssl', args, { input: pt, maxBuffer: 64 * MiB });
  if (enc.error) throw enc.error;
  assert.is(enc.status, 0, String(enc.stderr));
  const k = kernels.simd;
  same(Buffer.from(k.aesCfb(key, iv, 'encrypt').update(pt)), enc.stdout);
  const ours = Buffer.from(k.aesCfb(key, iv, 'encrypt').update(pt));
  const dec = spawnSync('openssl', [...args, '-d'], { input: ours, maxBuffer: 64 * MiB });
  assert.is(dec.status, 0, String(dec.stderr));
  same(dec.stdout, pt);
});

test('FixedSegmenter cuts every size bytes across any split', () => {
  const data = bytes(100_000, 81);
  for (const max of [1, 999, 1000, 1001, 100_000]) {
    const seg = new FixedSegmenter(1000);
    const cuts: number[] = [];
    let at = 0;
    for (const piece of splits(data, max, max)) {
      seg.push(piece).forEach((c) => cuts.push(at + c));
      at += piece.length;
    }
    same(cuts, Array.from({ length: 100 }, (_, i) => (i + 1) * 1000), `max piece ${max}`);
    assert.is(seg.pending, 0);
  }
});

test('gear tables are 2048 bytes, deterministic per key, and need a 16-byte key', () => {
  const a = gearTable(bytes(32, 1));
  assert.is(a.length, 2048);
  assert.equal(gearTable(bytes(32, 1)), a);
  assert.not.equal(gearTable(bytes(32, 2)), a);
  assert.throws(() => gearTable(bytes(15, 1)), (e: unknown) => e instanceof KernelError && e.code === KernelErrorCode.INPUT);
});

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    assert.instance(err, KernelError);
    return (err as KernelError).code;
  }
  return undefined;
}

test('bad input, disposal, memory limits and a missing module raise typed KernelErrors', () => {
  const k = Kernel.create();
  assert.is(codeOf(() => k.rollingChecksums(bytes(10), 0)), KernelErrorCode.INPUT);
  assert.is(codeOf(() => k.signatureTable(new Uint32Array(4), 1.5)), KernelErrorCode.INPUT);
  assert.is(codeOf(() => k.aesCfb(bytes(16), bytes(16), 'encrypt')), KernelErrorCode.INPUT);
  assert.is(codeOf(() => k.aesCfb(bytes(32), bytes(8), 'encrypt')), KernelErrorCode.INPUT);
  assert.is(codeOf(() => k.cdc({ key: bytes(32) }, { minSize: 8192, avgSize: 4096, maxSize: 65536 })), KernelErrorCode.INPUT);
  const table = k.signatureTable(new Uint32Array([1, 2, 3]), 16);
  table.dispose();
  assert.is(codeOf(() => table.scan(bytes(100))), KernelErrorCode.DISPOSED);
  const cfb = k.aesCfb(bytes(32), bytes(16), 'encrypt');
  k.dispose();
  assert.is(codeOf(() => cfb.update(bytes(10))), KernelErrorCode.DISPOSED);
  assert.is(codeOf(() => k.weakSum(bytes(10))), KernelErrorCode.DISPOSED);
  const small = Kernel.create({ maxMemoryBytes: 2 * MiB });
  assert.is(codeOf(() => small.rollingChecksums(bytes(3 * MiB), 16)), KernelErrorCode.MEMORY);
  assert.is(codeOf(() => Kernel.create({ wasmDir: '/nonexistent' })), KernelErrorCode.LOAD);
});

test('a trap becomes KernelError(TRAP) and the instance refuses further calls', () => {
  const i = KernelInstance.create();
  assert.is(codeOf(() => i.call('weakSum', (x) => x.weakSum(0x7fff0000, 1 << 20))), KernelErrorCode.TRAP);
  assert.is(codeOf(() => i.call('weakSum', (x) => x.weakSum(0, 16))), KernelErrorCode.TRAP);
});

test('long-lived objects reuse freed memory: the instance does not grow across create/dispose', () => {
  const k = Kernel.create();
  const weaks = blockSignatureRef(bytes(10_000 * 64, 3), 64);
  const cycle = () => {
    const t = k.signatureTable(weaks, 64);
    const c = k.cdc({ key: bytes(32) }, { minSize: 64, avgSize: 256, maxSize: 1024 });
    const a = k.aesCfb(bytes(32), bytes(16), 'encrypt');
    t.scan(bytes(50_000));
    a.dispose();
    t.dispose();
    c.dispose();
  };
  cycle();
  const size = k.memoryBytes;
  for (let i = 0; i < 50; i++) cycle();
  assert.is(k.memoryBytes, size);
  k.dispose();
});

test('errors cross a worker boundary as {code, message} and come back typed', () => {
  const kernelErr = new KernelError(KernelErrorCode.TRAP, 'scan: memory access out of bounds');
  const back = fromTransferable(structuredClone(toTransferable(kernelErr)));
  assert.instance(back, KernelError);
  assert.is((back as KernelError).code, KernelErrorCode.TRAP);
  assert.is(back.message, kernelErr.message);
  const integrity = fromTransferable(structuredClone(toTransferable(new IntegrityError('bad segment 3'))));
  assert.instance(integrity, IntegrityError);
  const sys = Object.assign(new Error('write failed'), { code: 'ENOSPC' });
  const sysBack = fromTransferable(structuredClone(toTransferable(sys))) as NodeJS.ErrnoException;
  assert.is(sysBack.code, 'ENOSPC');
  assert.is(toTransferable('boom').code, 'FLOE_ERR_INTERNAL');
});

test('a worker thread instantiates its own Kernel from a module compiled once and posted', async () => {
  const module = loadKernelModule(true);
  const url = new URL('../../wasm/index.js', import.meta.url).href;
  const code = `
    const { parentPort, workerData } = require('node:worker_threads');
    import(workerData.url).then((m) => {
      const k = m.Kernel.create({ module: workerData.module });
      const sums = k.rollingChecksums(new Uint8Array(workerData.data), 64);
      let err;
      try { k.aesCfb(new Uint8Array(3), new Uint8Array(16), 'encrypt'); } catch (e) { err = m.toTransferable(e); }
      parentPort.postMessage({ sums, err });
    });`;
  const data = bytes(5000, 91);
  const worker = new Worker(code, { eval: true, workerData: { url, module, data: new Uint8Array(data) } });
  const msg = await new Promise<{ sums: Uint32Array; err: { code: string; message: string } }>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  await worker.terminate();
  same(msg.sums, rollingChecksumsRef(data, 64));
  assert.is(fromTransferable(msg.err).constructor, KernelError);
  assert.is(msg.err.code, KernelErrorCode.INPUT);
});

test.run();
