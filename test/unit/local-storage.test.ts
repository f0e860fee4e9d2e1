/**
 * LocalStorage (put/get/putSmall/list/remove, key confinement, system errors), MultiStorage fan-out, the
 * registry, and the Freezer layout: keys, listing, orphans, Python-identical metadata JSON, and a real
 * freezer-agent backup read back through floe's storage, decryption and decompression.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalStorage } from '../../engine/storage/local/index.js';
import { MultiStorage } from '../../engine/storage/multi.js';
import { createStorage } from '../../engine/storage/registry.js';
import {
  BackupId, dataKey, engineMetadataKey, formatMetadata, listBackups, listOrphans, metadataKey,
} from '../../engine/storage/layout.js';
import type { StorageDriver } from '../../engine/storage/driver.js';
import { NotFoundError, StorageError, UsageError } from '../../engine/errors.js';
import { decryptStage, readPassFile } from '../../engine/transform/encrypt.js';
import { decompressStage } from '../../engine/transform/compress.js';
import { runStages } from '../../engine/pipeline/stages.js';

const root = mkdtempSync(join(tmpdir(), 'floe-local-'));
let n = 0;
const fresh = () => new LocalStorage(join(root, `c${n++}`));

async function* chunks(buf: Buffer, size: number): AsyncIterable<Buffer> {
  for (let i = 0; i < buf.length; i += size) yield buf.subarray(i, i + size);
}

async function all(it: AsyncIterable<Buffer>): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for await (const b of it) out.push(b);
  return out;
}

async function rejects(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a rejection');
}

test('put streams a file, get reads it back in exact chunkSize pieces', async () => {
  const s = fresh();
  await s.ensureWritable();
  const data = randomBytes(250_000);
  const { size } = await s.put('data/tar/h_n/1/0_1/data', chunks(data, 30_000));
  assert.is(size, data.length);
  assert.ok(readFileSync(join(s.container, 'data/tar/h_n/1/0_1/data')).equals(data));
  const parts = await all(s.get('data/tar/h_n/1/0_1/data', { chunkSize: 100_000 }));
  assert.equal(parts.map((p) => p.length), [100_000, 100_000, 50_000]);
  assert.ok(Buffer.concat(parts).equals(data));
  assert.is(await s.size('data/tar/h_n/1/0_1/data'), data.length);
  const empty = await s.put('e', chunks(Buffer.alloc(0), 1));
  assert.is(empty.size, 0);
  assert.equal(await all(s.get('e')), []);
  assert.is((await all(s.get('data/tar/h_n/1/0_1/data'))).length, 1, 'default chunk: 32 MiB');
});

test('putSmall is atomic and leaves no temp file; getSmall, exists', async () => {
  const s = fresh();
  await s.putSmall('metadata/tar/h_n/1/0_1/metadata', Buffer.from('{"a": 1}'));
  await s.putSmall('metadata/tar/h_n/1/0_1/metadata', Buffer.from('{"a": 2}'));
  assert.is((await s.getSmall('metadata/tar/h_n/1/0_1/metadata')).toString(), '{"a": 2}');
  assert.equal(readdirSync(join(s.container, 'metadata/tar/h_n/1/0_1')), ['metadata']);
  assert.ok(await s.exists('metadata/tar/h_n/1/0_1/metadata'));
  assert.ok(await s.exists('metadata/tar'));
  assert.not.ok(await s.exists('metadata/tar/nope'));
});

test('list is sorted, absent is empty; remove is rm -rf and tolerates absence', async () => {
  const s = fresh();
  for (const k of ['d/10', 'd/9', 'd/b', 'd/a/x']) await s.putSmall(k, Buffer.from('x'));
  assert.equal(await s.list('d'), ['10', '9', 'a', 'b']);
  assert.equal(await s.list('d/'), ['10', '9', 'a', 'b']);
  assert.equal(await s.list('nothing/here'), []);
  assert.equal(await s.list(''), ['d']);
  await s.remove('d/a');
  assert.equal(await s.list('d'), ['10', '9', 'b']);
  await s.remove('d/a');
  await s.remove('d');
  assert.equal(await s.list(''), []);
});

test('missing objects are NotFoundError', async () => {
  const s = fresh();
  assert.instance(await rejects(all(s.get('no/such'))), NotFoundError);
  assert.instance(await rejects(s.getSmall('no/such')), NotFoundError);
  assert.instance(await rejects(s.size('no/such')), NotFoundError);
});

test('keys never leave the container', async () => {
  const s = fresh();
  for (const k of ['../x', 'a/../../x', '/etc/passwd', 'a//b', './a', 'a\0b', '']) {
    assert.instance(await rejects(s.putSmall(k, Buffer.from('x'))), UsageError, JSON.stringify(k));
  }
  assert.instance(await rejects(s.list('..')), UsageError);
  assert.instance(await rejects(s.remove('a/..')), UsageError);
  assert.throws(() => new LocalStorage('relative/dir'), (e: unknown) => e instanceof UsageError);
});

test('system errors: not writable, no space left', async () => {
  const file = join(root, 'a-file');
  writeFileSync(file, 'x');
  let err = await rejects(new LocalStorage(join(file, 'sub')).ensureWritable());
  assert.instance(err, StorageError);
  assert.is(err.message, `container ${join(file, 'sub')} is not writable: not a directory`);
  err = await rejects(new LocalStorage('/sys/floe-test-container').ensureWritable());
  assert.instance(err, StorageError);
  assert.match(err.message, /^container \/sys\/floe-test-container is not writable: (permission denied|read-only file system)$/);
  // /dev/full fails every write with ENOSPC: point an object at it.
  const s = fresh();
  await s.ensureWritable();
  symlinkSync('/dev/full', join(s.container, 'full'));
  err = await rejects(s.put('full', chunks(randomBytes(100_000), 10_000)));
  assert.instance(err, StorageError);
  assert.is(err.message, 'cannot write full: no space left on device');
});

test('errors from the source pass through put unchanged; abort stops it', async () => {
  const s = fresh();
  const boom = new Error('source broke');
  async function* bad(): AsyncIterable<Buffer> {
    yield Buffer.from('x');
    throw boom;
  }
  assert.is(await rejects(s.put('k', bad())), boom);
  assert.not.ok(await s.exists('k'), 'a failed put leaves nothing');
  const ac = new AbortController();
  const reason = new Error('stop');
  async function* slow(): AsyncIterable<Buffer> {
    yield Buffer.from('x');
    ac.abort(reason);
    yield Buffer.from('y');
  }
  assert.is(await rejects(s.put('k', slow(), { signal: ac.signal })), reason);
});

/** failing wraps a driver so that put fails after `after` chunks. */
function failing(d: StorageDriver, after: number): StorageDriver {
  return Object.assign(Object.create(d) as StorageDriver, {
    put: (key: string, source: AsyncIterable<Buffer>, o?: { signal?: AbortSignal }) => d.put(key, (async function* () {
      let i = 0;
      for await (const b of source) {
        if (i++ === after) throw new StorageError('injected failure');
        yield b;
      }
    })(), o),
  });
}

test('MultiStorage fans out the same bytes; one failure fails all', async () => {
  const a = fresh();
  const b = fresh();
  const m = new MultiStorage([a, b]);
  await m.ensureWritable();
  const data = randomBytes(300_000);
  assert.is((await m.put('x/data', chunks(data, 10_000))).size, data.length);
  assert.ok((await a.getSmall('x/data')).equals(data));
  assert.ok((await b.getSmall('x/data')).equals(data));
  await m.putSmall('x/meta', Buffer.from('m'));
  assert.ok(await a.exists('x/meta') && await b.exists('x/meta'));

  const bad = new MultiStorage([a, failing(b, 3)]);
  const err = await rejects(bad.put('y/data', chunks(data, 10_000)));
  assert.is(err.message, 'injected failure');
  assert.not.ok(await a.exists('y/data'), 'the healthy storage was aborted too');
  assert.not.ok(await b.exists('y/data'));

  // Reads: from the first storage that has the object; listings are the union.
  await b.putSmall('only-b/obj', Buffer.from('b'));
  assert.is((await m.getSmall('only-b/obj')).toString(), 'b');
  assert.is(Buffer.concat(await all(m.get('only-b/obj'))).toString(), 'b');
  assert.equal(await m.list(''), ['only-b', 'x', 'y']); // y: the directory the failed put created
  assert.ok(await m.exists('only-b/obj'));
  assert.instance(await rejects(m.getSmall('nowhere')), NotFoundError);
  await m.remove('x');
  assert.not.ok(await a.exists('x') || await b.exists('x'));
});

test('registry: local, and a clear error for the others', () => {
  const s = createStorage('local', join(root, 'reg'), {});
  assert.is(s.kind, 'local');
  assert.is(s.container, join(root, 'reg'));
  let err: unknown;
  try {
    createStorage('swift', 'c', {});
  } catch (e) {
    err = e;
  }
  assert.instance(err, UsageError);
  assert.is((err as Error).message, "storage 'swift' is not supported yet (supported: local)");
});

const id = (t0: number, level: number, t: number): BackupId => ({ engine: 'tar', hbn: 'host_name', t0, level, t });

test('layout keys are Freezer\'s', () => {
  const b = id(1795707029, 1, 1795707039);
  assert.is(dataKey(b), 'data/tar/host_name/1795707029/1_1795707039/data');
  assert.is(engineMetadataKey(b), 'data/tar/host_name/1795707029/1_1795707039/engine_metadata');
  assert.is(metadataKey(b), 'metadata/tar/host_name/1795707029/1_1795707039/metadata');
});

test('listBackups: only backups with a metadata file, numeric names, sorted; listOrphans', async () => {
  const s = fresh();
  const put = (k: string) => s.putSmall(k, Buffer.from('{}'));
  for (const b of [id(300, 0, 300), id(100, 1, 200), id(100, 0, 100), id(100, 2, 250)]) {
    await put(metadataKey(b));
    await put(dataKey(b));
  }
  await put(dataKey(id(300, 1, 400))); // failed run: data, no metadata
  await put('metadata/tar/host_name/100/3_300/other'); // dir without metadata file
  await put('metadata/tar/host_name/notanumber/0_1/metadata');
  await put('metadata/tar/host_name/100/x_1/metadata');
  await put('metadata/tar/other_name/100/0_100/metadata');
  const got = await listBackups(s, 'tar', 'host_name');
  assert.equal(got.map((b) => `${b.t0}/${b.level}_${b.t}`), ['100/0_100', '100/1_200', '100/2_250', '300/0_300']);
  assert.equal(got[0], id(100, 0, 100));
  assert.equal(await listOrphans(s, 'tar', 'host_name'), ['data/tar/host_name/300/1_400']);
  assert.equal(await listBackups(s, 'tar', 'nobody'), []);
});

test('formatMetadata writes exactly what Python json.dumps writes', () => {
  const doc = {
    engine_name: 'tar', compression: 'gzip', encryption: false,
    text: 'é\u2028\x7f\x01"\\ 😀 /\n\t', nums: [1, 2.5, 1e-7, 0.1, -3, 1e22, 123456789012.5, 1.5e300, 0.0001],
    empty: {}, list: [], nothing: null, yes: true, nested: { a: [1, { b: 'c' }] },
  };
  const py = spawnSync('python3', ['-c', 'import json,sys; print(json.dumps(json.loads(sys.stdin.read())), end="")'], {
    input: JSON.stringify(doc),
  });
  assert.is(py.status, 0, py.stderr?.toString());
  assert.is(formatMetadata(doc), py.stdout.toString());
  assert.is(formatMetadata({ engine_name: 'tar', compression: 'gzip', encryption: true }),
    '{"engine_name": "tar", "compression": "gzip", "encryption": true}');
  assert.is(formatMetadata({ a: undefined, b: 1 }), '{"b": 1}');
});

test('a real freezer-agent backup is read through floe (layout, metadata, decryption, gzip, tar)', async () => {
  if (spawnSync('sh', ['-c', 'command -v freezer-agent']).status !== 0) {
    console.log('  (freezer-agent not installed: skipped)');
    return;
  }
  const base = join(root, 'freezer');
  mkdirSync(join(base, 'src', 'sub'), { recursive: true });
  writeFileSync(join(base, 'src', 'a.txt'), 'hello from freezer\n');
  writeFileSync(join(base, 'src', 'sub', 'b.bin'), randomBytes(20_000));
  writeFileSync(join(base, 'pass'), 'secret pw\n');
  execFileSync('timeout', ['120', 'freezer-agent', '--action', 'backup', '--path-to-backup', join(base, 'src'),
    '--backup-name', 'fz', '--storage', 'local', '--container', join(base, 'store'), '--hostname', 'node1',
    '--encrypt-pass-file', join(base, 'pass'), '--log-file', join(base, 'log')], {
    env: { ...process.env, OS_AUTH_URL: 'http://127.0.0.1:1/v3' }, stdio: 'ignore', cwd: base,
  });
  const s = new LocalStorage(join(base, 'store'));
  const backups = await listBackups(s, 'tar', 'node1_fz');
  assert.is(backups.length, 1);
  const b = backups[0];
  assert.is(b.level, 0);
  assert.is(b.t, b.t0);
  const raw = (await s.getSmall(metadataKey(b))).toString();
  assert.is(formatMetadata(JSON.parse(raw)), raw, 'floe writes the metadata file byte for byte as Freezer');
  const pw = await readPassFile(join(base, 'pass'));
  const plain = Buffer.concat(await all(runStages(s.get(dataKey(b), { chunkSize: 100 }), [decryptStage(pw), decompressStage('gzip')])));
  writeFileSync(join(base, 'out.tar'), plain);
  const listing = execFileSync('tar', ['-tf', join(base, 'out.tar')]).toString();
  assert.match(listing, './sub/b.bin');
  assert.is((await s.getSmall(engineMetadataKey(b))).subarray(0, 8).toString(), 'GNU tar-');
  assert.equal(await listOrphans(s, 'tar', 'node1_fz'), []);
});

test.after(() => rmSync(root, { recursive: true, force: true }));
test.run();
