/**
 * OpenSSL compatibility, both ways, with the real `openssl enc -aes-256-cfb -pass file:` (SHA-256 and MD5
 * key derivation), pass-file semantics, wrong passwords, unencrypted and truncated input.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  decryptBuffer, decryptStage, encryptBuffer, encryptStage, evpBytesToKey, knownPlaintext, loadCryptoBackend, passwordFromFile, readPassFile,
} from '../../engine/transform/encrypt.js';
import { BadPasswordError, IntegrityError, UsageError } from '../../engine/errors.js';
import type { Stage } from '../../engine/pipeline/stages.js';

const dir = mkdtempSync(join(tmpdir(), 'floe-encrypt-'));
const passFile = join(dir, 'pass');
writeFileSync(passFile, 'correct horse battery staple\nsecond line ignored\n');
const password = Buffer.from('correct horse battery staple');

/** A gzip stream (what Freezer encrypts), ~1 MiB. */
const gz = gzipSync(Buffer.concat([randomBytes(600 * 1024), Buffer.alloc(400 * 1024, 7)]), { level: 1 });

async function* chunks(buf: Buffer, size: number): AsyncIterable<Buffer> {
  for (let i = 0; i < buf.length; i += size) yield buf.subarray(i, i + size);
}

async function run(stage: Stage, input: AsyncIterable<Buffer>): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const b of stage(input, new AbortController().signal)) out.push(b);
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

function openssl(args: string[], input?: Buffer): Buffer {
  return execFileSync('openssl', args, { input, maxBuffer: 64 << 20, stdio: ['pipe', 'pipe', 'ignore'] });
}

test('EVP_BytesToKey matches openssl -P for SHA-256 and MD5', () => {
  const salt = Buffer.from('0011223344556677', 'hex');
  for (const md of ['sha256', 'md5'] as const) {
    const out = openssl(['enc', '-aes-256-cfb', '-P', '-md', md, '-S', salt.toString('hex'), '-pass', `file:${passFile}`]).toString();
    const key = /key\s*=\s*([0-9A-F]+)/.exec(out)![1];
    const iv = /iv\s*=\s*([0-9A-F]+)/.exec(out)![1];
    const k = evpBytesToKey(md, password, salt);
    assert.is(k.key.toString('hex').toUpperCase(), key, md);
    assert.is(k.iv.toString('hex').toUpperCase(), iv, md);
  }
});

test('openssl decrypts what floe encrypts (one continuous CFB stream across odd chunks)', async () => {
  const enc = await run(encryptStage(password), chunks(gz, 12345));
  assert.is(enc.subarray(0, 8).toString('latin1'), 'Salted__');
  assert.is(enc.length, gz.length + 16);
  const f = join(dir, 'floe.enc');
  writeFileSync(f, enc);
  const plain = openssl(['enc', '-d', '-aes-256-cfb', '-pass', `file:${passFile}`, '-in', f]);
  assert.ok(plain.equals(gz));
});

test('floe decrypts what openssl encrypts: SHA-256 (OpenSSL >= 1.1) and MD5 (<= 1.0.2)', async () => {
  for (const md of ['sha256', 'md5']) {
    const enc = openssl(['enc', '-aes-256-cfb', '-md', md, '-pass', `file:${passFile}`], gz);
    for (const size of [100, 4099, 65536]) {
      const plain = await run(decryptStage(password), chunks(enc, size));
      assert.ok(plain.equals(gz), `${md} in ${size}-byte chunks`);
    }
    const small = gz.subarray(0, 3000);
    const encSmall = openssl(['enc', '-aes-256-cfb', '-md', md, '-pass', `file:${passFile}`], small);
    assert.ok((await run(decryptStage(password), chunks(encSmall, 1))).equals(small), `${md} byte by byte`);
    assert.ok(decryptBuffer(password, enc).equals(gz), `${md} buffer`);
  }
});

test('small objects: encryptBuffer/decryptBuffer interoperate with openssl', () => {
  const snap = Buffer.from('GNU tar-1.34-2\n1700000000\x00123\x00');
  const enc = encryptBuffer(password, snap);
  const f = join(dir, 'em.enc');
  writeFileSync(f, enc);
  assert.ok(openssl(['enc', '-d', '-aes-256-cfb', '-pass', `file:${passFile}`, '-in', f]).equals(snap));
  assert.ok(decryptBuffer(password, openssl(['enc', '-aes-256-cfb', '-md', 'md5', '-pass', `file:${passFile}`], snap)).equals(snap));
  const json = Buffer.from('{"a": 1}');
  assert.throws(() => decryptBuffer(password, encryptBuffer(password, json)), (e: unknown) => e instanceof BadPasswordError);
  assert.ok(decryptBuffer(password, encryptBuffer(password, json), (h) => h[0] === 0x7b).equals(json));
});

test('an uncompressed tar stream is recognised (ustar at 257)', async () => {
  const tarFile = join(dir, 'x.tar');
  writeFileSync(join(dir, 'member.txt'), 'hello');
  execFileSync('tar', ['-cf', tarFile, '-C', dir, 'member.txt']);
  const tar = readFileSync(tarFile);
  assert.ok(knownPlaintext(tar));
  const enc = openssl(['enc', '-aes-256-cfb', '-pass', `file:${passFile}`], tar);
  assert.ok((await run(decryptStage(password), chunks(enc, 100))).equals(tar));
});

test('wrong password: BadPasswordError', async () => {
  const enc = openssl(['enc', '-aes-256-cfb', '-pass', `file:${passFile}`], gz);
  const err = await rejects(run(decryptStage(Buffer.from('wrong')), chunks(enc, 4096)));
  assert.instance(err, BadPasswordError);
  assert.is(err.message, 'wrong password: the data does not decrypt');
});

test('not encrypted, truncated header, empty: IntegrityError', async () => {
  let err = await rejects(run(decryptStage(password), chunks(gz, 4096)));
  assert.instance(err, IntegrityError);
  assert.match(err.message, 'not encrypted');
  err = await rejects(run(decryptStage(password), chunks(Buffer.from('Salted__abc'), 3)));
  assert.instance(err, IntegrityError);
  assert.match(err.message, 'truncated');
  err = await rejects(run(decryptStage(password), chunks(Buffer.alloc(0), 1)));
  assert.instance(err, IntegrityError);
  assert.throws(() => decryptBuffer(password, Buffer.from('Salt')), (e: unknown) => e instanceof IntegrityError);
});

test('empty plaintext: header only, as openssl writes it', async () => {
  const enc = await run(encryptStage(password), chunks(Buffer.alloc(0), 1));
  assert.is(enc.length, 16);
  const f = join(dir, 'empty.enc');
  writeFileSync(f, enc);
  assert.is(openssl(['enc', '-d', '-aes-256-cfb', '-pass', `file:${passFile}`, '-in', f]).length, 0);
  assert.is((await run(decryptStage(password), chunks(enc, 5))).length, 0);
  const byOpenssl = openssl(['enc', '-aes-256-cfb', '-pass', `file:${passFile}`], Buffer.alloc(0));
  assert.is((await run(decryptStage(password), chunks(byOpenssl, 16))).length, 0);
});

test('readPassFile: openssl -pass file: semantics', async () => {
  const cases: Array<[string, Buffer, string]> = [
    ['plain', Buffer.from('secret'), 'secret'],
    ['newline', Buffer.from('secret\nnext\n'), 'secret'],
    ['crlf keeps \\r like openssl', Buffer.from('secret\r\n'), 'secret\r'],
    ['nul ends it', Buffer.from('sec\0ret\n'), 'sec'],
    ['1023 bytes max', Buffer.alloc(2000, 0x61), 'a'.repeat(1023)],
  ];
  for (const [name, content, want] of cases) {
    const f = join(dir, `pw-${name.replace(/\W/g, '')}`);
    writeFileSync(f, content);
    assert.is((await readPassFile(f)).toString('latin1'), want, name);
    assert.is(passwordFromFile(content).toString('latin1'), want, name);
  }
  // The CRLF password really is what openssl uses: floe encrypts with it, openssl decrypts with the file.
  const crlf = join(dir, 'crlf');
  writeFileSync(crlf, 'pw\r\n');
  const enc = await run(encryptStage(await readPassFile(crlf)), chunks(gz, 65536));
  writeFileSync(join(dir, 'crlf.enc'), enc);
  assert.ok(openssl(['enc', '-d', '-aes-256-cfb', '-pass', `file:${crlf}`, '-in', join(dir, 'crlf.enc')]).equals(gz));

  const missing = join(dir, 'nope');
  const err = await rejects(readPassFile(missing));
  assert.instance(err, BadPasswordError);
  assert.is(err.message, `cannot read pass file ${missing}: no such file or directory`);
  for (const empty of ['', '\n', '\0x']) {
    const f = join(dir, 'pw-empty');
    writeFileSync(f, empty);
    assert.instance(await rejects(readPassFile(f)), BadPasswordError);
  }
});

test('wasm backend: byte-compatible with openssl and with the native backend, both ways', async () => {
  const wasmEnc = await run(encryptStage(password, { backend: 'wasm' }), chunks(gz, 65537));
  assert.ok(openssl(['enc', '-d', '-aes-256-cfb', '-pass', `file:${passFile}`], wasmEnc).equals(gz), 'openssl reads wasm output');
  assert.ok((await run(decryptStage(password), chunks(wasmEnc, 4096))).equals(gz), 'native reads wasm output');
  const nativeEnc = openssl(['enc', '-aes-256-cfb', '-md', 'md5', '-pass', `file:${passFile}`], gz);
  assert.ok((await run(decryptStage(password, undefined, { backend: 'wasm' }), chunks(nativeEnc, 1000))).equals(gz), 'wasm reads openssl (md5) output');
  const small = randomBytes(3000);
  await loadCryptoBackend('wasm'); // the stages above loaded it; a direct caller must
  const b = encryptBuffer(password, small, { backend: 'wasm' });
  assert.ok(decryptBuffer(password, b, () => true).equals(small));
  assert.instance(await rejects(run(decryptStage(Buffer.from('wrong'), undefined, { backend: 'wasm' }), chunks(nativeEnc, 1000))), BadPasswordError);
});

test('decryptStage reads only a bounded head before streaming', async () => {
  const enc = openssl(['enc', '-aes-256-cfb', '-pass', `file:${passFile}`], gz);
  let pulled = 0;
  async function* counted(): AsyncIterable<Buffer> {
    for (let i = 0; i < enc.length; i += 64) {
      pulled += Math.min(64, enc.length - i);
      yield enc.subarray(i, i + 64);
    }
  }
  const it = decryptStage(password)(counted(), new AbortController().signal)[Symbol.asyncIterator]();
  const first = await it.next();
  assert.ok(!first.done);
  assert.ok(pulled <= 16 + 512 + 64, `pulled ${pulled} bytes before the first output`);
  await it.return?.();
});

test.after(() => rmSync(dir, { recursive: true, force: true }));
test.run();
