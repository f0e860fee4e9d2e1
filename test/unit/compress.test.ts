/**
 * Compression stages against the real CLIs: gzip, bzip2, xz, zstd read what floe writes and floe reads what
 * they write (GNU tar archives included); concatenated members/frames; corrupt and truncated input; a
 * missing binary; abort and backpressure.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Compression, compressStage, compressionLevel, decompressStage, detectCompression } from '../../engine/transform/compress.js';
import { IntegrityError, UsageError } from '../../engine/errors.js';
import type { Stage } from '../../engine/pipeline/stages.js';

const dir = mkdtempSync(join(tmpdir(), 'floe-compress-'));
const ALGS: Exclude<Compression, 'none'>[] = ['gzip', 'bzip2', 'xz', 'zstd'];
const CLI: Record<Exclude<Compression, 'none'>, string> = { gzip: 'gzip', bzip2: 'bzip2', xz: 'xz', zstd: 'zstd' };

/** sample: ~1.3 MiB of mixed compressible text and random bytes. */
const sample = Buffer.concat([
  Buffer.from('floe backup line\n'.repeat(40000)),
  randomBytes(300 * 1024),
  Buffer.from('tail'.repeat(50000)),
]);

async function* chunks(buf: Buffer, size: number): AsyncIterable<Buffer> {
  for (let i = 0; i < buf.length; i += size) yield buf.subarray(i, i + size);
}

async function run(stage: Stage, input: AsyncIterable<Buffer>, signal = new AbortController().signal): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const b of stage(input, signal)) out.push(b);
  return Buffer.concat(out);
}

async function rejects(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a rejection');
}

test('round trip, every algorithm, odd chunking', async () => {
  for (const alg of ['none', ...ALGS] as Compression[]) {
    const packed = await run(compressStage(alg), chunks(sample, 77777));
    if (alg !== 'none') assert.ok(packed.length < sample.length, `${alg} compresses`);
    assert.is(detectCompression(packed), alg === 'none' ? undefined : alg);
    const back = await run(decompressStage(alg), chunks(packed, 4096));
    assert.ok(back.equals(sample), `${alg} round trip`);
  }
});

test('the CLIs read what floe writes (default and explicit levels)', async () => {
  for (const alg of ALGS) {
    for (const level of [undefined, 1]) {
      const packed = await run(compressStage(alg, { level }), chunks(sample, 100000));
      const f = join(dir, `out.${alg}`);
      writeFileSync(f, packed);
      const plain = execFileSync(CLI[alg], ['-dc', f], { maxBuffer: 64 << 20 });
      assert.ok(plain.equals(sample), `${CLI[alg]} -dc reads floe ${alg} level ${level}`);
    }
  }
});

test('floe reads what the CLIs write, including concatenated streams', async () => {
  for (const alg of ALGS) {
    const a = join(dir, 'a.bin');
    const b = join(dir, 'b.bin');
    writeFileSync(a, sample.subarray(0, 500000));
    writeFileSync(b, sample.subarray(500000));
    const packed = Buffer.concat([execFileSync(CLI[alg], ['-c', a]), execFileSync(CLI[alg], ['-c', b])]);
    const back = await run(decompressStage(alg), chunks(packed, 65536));
    assert.ok(back.equals(sample), `floe reads concatenated ${alg}`);
  }
});

test('GNU tar archives: tar reads floe output, floe reads tar -z/-j/-J output', async () => {
  const src = join(dir, 'tree');
  execFileSync('mkdir', ['-p', join(src, 'sub')]);
  writeFileSync(join(src, 'sub', 'f.txt'), sample.subarray(0, 200000));
  writeFileSync(join(src, 'g.bin'), randomBytes(5000));
  const plainTar = execFileSync('tar', ['-cf', '-', '-C', src, '.'], { maxBuffer: 64 << 20 });
  const flags: Record<string, string> = { gzip: '-z', bzip2: '-j', xz: '-J', zstd: '--zstd' };
  for (const alg of ALGS) {
    const packed = await run(compressStage(alg), chunks(plainTar, 10240));
    const f = join(dir, `t.tar.${alg}`);
    writeFileSync(f, packed);
    const listed = execFileSync('tar', [flags[alg], '-tf', f]).toString();
    assert.match(listed, './sub/f.txt', `tar ${flags[alg]} lists floe's archive`);
    const byTar = execFileSync('tar', [flags[alg], '-cf', '-', '-C', src, '.'], { maxBuffer: 64 << 20 });
    const back = await run(decompressStage(alg), chunks(byTar, 32768));
    assert.is(back.subarray(257, 262).toString('latin1'), 'ustar', `floe reads tar ${flags[alg]}`);
    const t = join(dir, 'back.tar');
    writeFileSync(t, back);
    assert.match(execFileSync('tar', ['-tf', t]).toString(), './g.bin');
  }
});

test('zstd: several frames whose output ends exactly on the 256 KiB output buffer (bench regression)', async () => {
  // Frames of exactly 1 MiB of output each: at every frame end the output buffer is full, so the next
  // native call sees no input at a frame boundary. That must not read as "truncated".
  const frames: Buffer[] = [];
  const plain: Buffer[] = [];
  for (let i = 0; i < 3; i++) {
    const p = randomBytes(1 << 20);
    plain.push(p);
    frames.push(execFileSync('zstd', ['-c', '-q'], { input: p, maxBuffer: 1 << 24 }));
  }
  const all = Buffer.concat(frames);
  for (const cs of [all.length, 65536, 1000]) {
    async function* src() { for (let i = 0; i < all.length; i += cs) yield all.subarray(i, i + cs); }
    const out: Buffer[] = [];
    for await (const b of decompressStage('zstd')(src(), new AbortController().signal)) out.push(b);
    assert.ok(Buffer.concat(out).equals(Buffer.concat(plain)), `chunk ${cs}`);
  }
});

test('detectCompression', () => {
  assert.is(detectCompression(Buffer.from([0x1f, 0x8b, 0x08, 0])), 'gzip');
  assert.is(detectCompression(Buffer.from('BZh91AY')), 'bzip2');
  assert.is(detectCompression(Buffer.from('BZhx')), undefined);
  assert.is(detectCompression(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00])), 'xz');
  assert.is(detectCompression(Buffer.from([0x28, 0xb5, 0x2f, 0xfd])), 'zstd');
  assert.is(detectCompression(Buffer.from('ustar')), undefined);
  assert.is(detectCompression(Buffer.alloc(0)), undefined);
});

test('truncated input is an IntegrityError with a one-line message', async () => {
  for (const alg of ALGS) {
    const packed = await run(compressStage(alg), chunks(sample, 1 << 20));
    const cut = packed.subarray(0, Math.floor(packed.length / 2));
    const err = await rejects(run(decompressStage(alg), chunks(cut, 8192)));
    assert.instance(err, IntegrityError, `${alg}: ${err.message}`);
    assert.ok(err.message.startsWith(`corrupted data: ${alg}: `), err.message);
    assert.not.match(err.message, '\n');
  }
});

test('corrupted input is an IntegrityError', async () => {
  for (const alg of ALGS) {
    const packed = Buffer.from(await run(compressStage(alg), chunks(sample, 1 << 20)));
    // Inside the compressed body (past headers), where every algorithm checks a CRC or the structure.
    for (let i = 200; i < packed.length - 100; i += 997) packed[i] ^= 0x55;
    const err = await rejects(run(decompressStage(alg), chunks(packed, 8192)));
    assert.instance(err, IntegrityError, `${alg}: ${err.message}`);
    assert.ok(err.message.startsWith(`corrupted data: ${alg}: `), err.message);
    assert.not.match(err.message, '\n');
  }
  const err = await rejects(run(decompressStage('bzip2'), chunks(Buffer.from('not bzip2 at all'), 4)));
  assert.is(err.message, 'corrupted data: bzip2: (stdin) is not a bzip2 file.');
  const err2 = await rejects(run(decompressStage('xz'), chunks(Buffer.from('not xz'), 4)));
  assert.is(err2.message, 'corrupted data: xz: File format not recognized');
});

test('errors from upstream pass through unchanged', async () => {
  const boom = new Error('upstream broke');
  async function* bad(): AsyncIterable<Buffer> {
    yield sample.subarray(0, 100000);
    throw boom;
  }
  for (const alg of ['none', ...ALGS] as Compression[]) {
    const err = await rejects(run(compressStage(alg), bad()));
    assert.is(err, boom, alg);
  }
});

test('a missing binary is a clear UsageError', async () => {
  const saved = process.env.PATH;
  process.env.PATH = join(dir, 'no-such-bin');
  try {
    const err = await rejects(run(compressStage('bzip2'), chunks(sample, 100000)));
    assert.instance(err, UsageError);
    assert.match(err.message, "needs the 'bzip2' program");
    const err2 = await rejects(run(decompressStage('xz'), chunks(sample, 100000)));
    assert.match(err2.message, "needs the 'xz' program");
  } finally {
    process.env.PATH = saved;
  }
});

test('bad levels are refused', () => {
  assert.throws(() => compressStage('gzip', { level: 10 }), /from 1 to 9/);
  assert.throws(() => compressStage('zstd', { level: 0.5 }), /zstd must be an integer/);
});

/** endless yields random 1 MiB chunks forever, counting them. */
function endless(counter: { n: number }): AsyncIterable<Buffer> {
  return (async function* () {
    for (;;) {
      counter.n++;
      yield randomBytes(1 << 20);
    }
  })();
}

test('backpressure: a stalled consumer stops the producer; abort ends the stage and its process', async () => {
  for (const alg of ALGS) {
    const counter = { n: 0 };
    const ac = new AbortController();
    const it = compressStage(alg, { level: 1 })(endless(counter), ac.signal)[Symbol.asyncIterator]();
    await it.next();
    // Wait (up to ~5 s on a busy machine) for the producer to stop: two equal readings 250 ms apart.
    let before = -1;
    for (let i = 0; i < 20 && counter.n !== before; i++) {
      before = counter.n;
      await new Promise((r) => setTimeout(r, 250));
    }
    assert.is(counter.n, before, `${alg}: producer stalls`);
    assert.ok(counter.n < 40, `${alg}: bounded (${counter.n} MiB read ahead)`);
    const reason = new Error('stop now');
    ac.abort(reason);
    const err = await rejects((async () => { for (;;) { const r = await it.next(); if (r.done) break; } })());
    assert.is(err, reason, `${alg} ends with the abort reason`);
  }
});

test('early consumer exit kills the child process', async () => {
  const counter = { n: 0 };
  for await (const _ of compressStage('xz', { level: 0 })(endless(counter), new AbortController().signal)) break;
  // The feeder may pull one more chunk before it sees the process gone; after that, nothing.
  await new Promise((r) => setTimeout(r, 200));
  const n = counter.n;
  await new Promise((r) => setTimeout(r, 200));
  assert.is(counter.n, n);
  const ps = spawnSync('sh', ['-c', `ps -o pid=,args= --ppid ${process.pid}`]).stdout.toString();
  assert.not.match(ps, /xz -c/);
});

test('empty input', async () => {
  for (const alg of ALGS) {
    const packed = await run(compressStage(alg), chunks(Buffer.alloc(0), 1));
    assert.ok(packed.length > 0, `${alg} writes a valid empty stream`);
    const back = await run(decompressStage(alg), chunks(packed, 3));
    assert.is(back.length, 0);
    const f = join(dir, `empty.${alg}`);
    writeFileSync(f, packed);
    assert.is(execFileSync(CLI[alg], ['-dc', f]).length, 0);
  }
  assert.ok(readFileSync(join(dir, 'empty.gzip')).length > 0);
});

test.after(() => rmSync(dir, { recursive: true, force: true }));
test('compression levels: defaults, ranges, and the level reaches the output', async () => {
  assert.is(compressionLevel('gzip', undefined), 6);
  assert.is(compressionLevel('zstd', undefined), 1);
  assert.is(compressionLevel('zstd', 19), 19);
  for (const [alg, bad] of [['zstd', 0], ['zstd', 20], ['gzip', 10], ['xz', -1], ['bzip2', 1.5]] as const) {
    assert.throws(() => compressionLevel(alg, bad), (e: unknown) => e instanceof UsageError && /must be an integer from/.test((e as Error).message));
  }
  // words drawn at random from a small vocabulary: text where a stronger level finds more to share
  const words = ['backup', 'restore', 'segment', 'level', 'chain', 'tar', 'floe', 'gzip', 'zstd', 'metadata', 'storage', 'worker'];
  const r = randomBytes(200_000);
  const text = Buffer.from(Array.from(r, (b, i) => words[b % words.length] + (i % 13 === 0 ? `=${b * i}\n` : ' ')).join(''));
  const sizeAt = async (level: number) => (await run(compressStage('zstd', { level }), chunks(text, 65536))).length;
  assert.ok((await sizeAt(19)) < (await sizeAt(1)), 'level 19 must store less than level 1');
});

test.run();
