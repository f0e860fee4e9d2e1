/**
 * O_DIRECT object writes and reads (engine/storage/local/direct.ts): every size comes back byte for byte,
 * with and without O_DIRECT, in chunks of at most chunkSize; a write the kernel refuses (EINVAL) goes on
 * through a buffered descriptor, a refused first read falls back to buffered reads; a failing write fails
 * the put and leaves nothing; where open() refuses O_DIRECT the put writes buffered.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { promises as fsp } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DirectWriter, openDirect, readDirect } from '../../engine/storage/local/direct.js';
import { LocalStorage } from '../../engine/storage/local/index.js';
import { StorageError } from '../../engine/errors.js';
import { withTmpfs } from '../helpers/tmpfs.js';

const root = mkdtempSync(join(tmpdir(), 'floe-direct-'));
const MiB = 1024 * 1024;
let n = 0;

/** pieces cuts `buf` into chunks of varying sizes (1 byte to 3 MiB), as pipeline stages hand them over. */
async function* pieces(buf: Buffer, seed: number): AsyncIterable<Buffer> {
  const sizes = [1, 511, 4096, 65_537, 3 * MiB, 2 * MiB, 700_001];
  let i = seed;
  for (let off = 0; off < buf.length; i++) {
    const len = sizes[i % sizes.length];
    yield buf.subarray(off, off + len);
    off += len;
  }
}

/** errorOf runs `f` and returns what it threw (undefined if it did not). */
async function errorOf(f: () => Promise<unknown>): Promise<unknown> {
  try {
    await f();
  } catch (e) {
    return e;
  }
  return undefined;
}

const SIZES = [0, 1, 4095, 4096, 4097, 2 * MiB - 1, 2 * MiB, 2 * MiB + 1, 8 * MiB, 8 * MiB + 4097, 19 * MiB + 12_345];

for (const direct of [true, false]) {
  test(`put ${direct ? 'with' : 'without'} O_DIRECT stores every size exactly`, async () => {
    const s = new LocalStorage(join(root, `c${n++}`), { direct });
    await s.ensureWritable();
    for (const [i, size] of SIZES.entries()) {
      const data = randomBytes(size);
      const { size: stored } = await s.put(`obj-${size}`, pieces(data, i));
      assert.is(stored, size);
      const file = join(s.container, `obj-${size}`);
      assert.is(statSync(file).size, size, `file size for ${size}`);
      assert.ok(readFileSync(file).equals(data), `bytes of a ${size}-byte object`);
      for (const chunkSize of [1000, 4 * MiB, 3 * MiB + 1]) {
        if (size > 3 * MiB && chunkSize === 1000) continue; // 3,000+ pieces: slow, and the small-size cases cover it
        const got: Buffer[] = [];
        for await (const b of s.get(`obj-${size}`, { chunkSize })) got.push(b);
        assert.ok(got.every((b) => b.length > 0 && b.length <= chunkSize), `chunks of at most ${chunkSize}`);
        assert.ok(Buffer.concat(got).equals(data), `get of a ${size}-byte object in ${chunkSize}-byte chunks`);
      }
    }
    assert.equal(readdirSync(s.container).sort(), SIZES.map((x) => `obj-${x}`).sort(), 'no temporary files left');
  });
}

test('O_DIRECT is available on the test file system (else puts silently write buffered)', async () => {
  const w = await openDirect(join(root, 'probe'));
  if (!w) {
    console.log(`  note: ${root} refuses O_DIRECT; the buffered path is the one tested`);
    return;
  }
  await w.write(Buffer.alloc(5000, 1));
  await w.finish();
  await w.close();
  assert.is(statSync(join(root, 'probe')).size, 5000);
});

test('open refusing O_DIRECT (a device behind the key) falls back to ordinary writes', async () => {
  assert.is(await openDirect('/dev/null'), null);
});

/** flaky wraps a real buffered handle; its first `failures` writes fail with `code` (as O_DIRECT's EINVAL would). */
function flaky(fh: fsp.FileHandle, code: string, failures: number): fsp.FileHandle {
  let left = failures;
  return new Proxy(fh, {
    get(target, prop) {
      if (prop === 'write') {
        return (...args: Parameters<fsp.FileHandle['write']>) => {
          if (left > 0) {
            left--;
            return Promise.reject(Object.assign(new Error(`${code}: write`), { code, syscall: 'write' }));
          }
          return (target.write as (...a: unknown[]) => unknown)(...args);
        };
      }
      const v = Reflect.get(target, prop) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

test('a direct write refused with EINVAL goes on through a buffered descriptor', async () => {
  const file = join(root, 'einval');
  const fh = await fsp.open(file, 'w');
  const w = new DirectWriter(flaky(fh, 'EINVAL', 3), await fsp.open(file, 'r+'));
  const data = randomBytes(13 * MiB + 77);
  for await (const b of pieces(data, 3)) await w.write(b);
  await w.finish();
  await w.close();
  assert.ok(readFileSync(file).equals(data));
});

test('a reader that stops early leaves no read in flight; the next get still works', async () => {
  const s = new LocalStorage(join(root, `c${n++}`));
  await s.ensureWritable();
  const data = randomBytes(11 * MiB + 5);
  await s.put('k', pieces(data, 0));
  for await (const b of s.get('k', { chunkSize: MiB })) {
    assert.ok(b.equals(data.subarray(0, MiB)));
    break;
  }
  const got: Buffer[] = [];
  for await (const b of s.get('k')) got.push(b);
  assert.ok(Buffer.concat(got).equals(data));
  const missing = await errorOf(async () => {
    for await (const _ of s.get('nope')) { /* nothing */ }
  });
  assert.is((missing as Error | undefined)?.constructor.name, 'NotFoundError');
});

test('a first direct read refused with EINVAL yields nothing and reports it, for a buffered retry', async () => {
  const file = join(root, 'einval-read');
  await fsp.writeFile(file, randomBytes(100_000));
  const fh = await fsp.open(file, 'r');
  const refusing = new Proxy(fh, {
    get(target, prop) {
      if (prop === 'read') return () => Promise.reject(Object.assign(new Error('EINVAL: read'), { code: 'EINVAL', syscall: 'read' }));
      const v = Reflect.get(target, prop) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
  const it = readDirect(refusing, MiB);
  const r = await it.next();
  assert.equal(r, { done: true, value: false });
  await fh.close();
});

test('EINVAL with no buffered descriptor to fall back on fails the write', async () => {
  const file = join(root, 'einval-noplain');
  const fh = await fsp.open(file, 'w');
  const w = new DirectWriter(flaky(fh, 'EINVAL', 1), null);
  const err = await errorOf(async () => {
    await w.write(randomBytes(3 * MiB));
    await w.finish();
  });
  await w.close();
  assert.is((err as NodeJS.ErrnoException)?.code, 'EINVAL');
});

test('without memory for the stages (an address-space limit), puts and gets go through the page cache', () => {
  // A child with `ulimit -v` cannot reserve a WebAssembly.Memory; the object must still be stored and read.
  const script = `
    import { LocalStorage } from ${JSON.stringify(new URL('../../engine/storage/local/index.js', import.meta.url).href)};
    const s = new LocalStorage(process.argv[1]);
    await s.ensureWritable();
    const data = Buffer.alloc(5_000_000, 7);
    await s.put('obj', (async function* () { yield data; })());
    const got = [];
    for await (const b of s.get('obj')) got.push(b);
    if (!Buffer.concat(got).equals(data)) throw new Error('bytes differ');
    let reserved = true;
    try { new WebAssembly.Memory({ initial: 128, maximum: 128 }); } catch { reserved = false; }
    console.log(reserved ? 'reserved' : 'refused');
  `;
  const dir = join(root, `c${n++}`);
  const r = spawnSync('bash', ['-c', 'ulimit -v 3000000; exec node --input-type=module -e "$0" "$1"', script, dir], { encoding: 'utf8' });
  assert.is(r.status, 0, r.stderr);
  if (r.stdout.trim() === 'reserved') console.log('  note: this node reserved wasm memory under ulimit -v; the fallback was not exercised');
  assert.is(statSync(join(dir, 'obj')).size, 5_000_000);
});

test('a failing direct write fails finish, and put leaves no object', async () => {
  const file = join(root, 'eio');
  const fh = await fsp.open(file, 'w');
  const w = new DirectWriter(flaky(fh, 'EIO', 1), null);
  const err = await errorOf(async () => {
    for await (const b of pieces(randomBytes(5 * MiB), 0)) await w.write(b);
    await w.finish();
  });
  await w.close();
  assert.is((err as NodeJS.ErrnoException)?.code, 'EIO');

  // Through put: a source that fails after several stages are in flight leaves nothing behind.
  const s = new LocalStorage(join(root, `c${n++}`));
  await s.ensureWritable();
  const boom = new Error('source broke');
  async function* bad(): AsyncIterable<Buffer> {
    yield* pieces(randomBytes(9 * MiB), 1);
    throw boom;
  }
  assert.is(await errorOf(() => s.put('k', bad())), boom);
  assert.not.ok(await s.exists('k'));
});

test('no space left on a direct write is a StorageError and removes the object', async () => {
  const mnt = join(root, 'small');
  await fsp.mkdir(mnt);
  await withTmpfs(mnt, { what: 'no space left', size: '3m' }, async () => {
    const s = new LocalStorage(mnt);
    const err = await errorOf(() => s.put('big', pieces(randomBytes(8 * MiB), 2)));
    assert.instance(err, StorageError);
    assert.is((err as Error).message, 'cannot write big: no space left on device');
    assert.not.ok(await s.exists('big'));
  });
});

test.after(() => rmSync(root, { recursive: true, force: true }));

test.run();
