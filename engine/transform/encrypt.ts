/**
 * OpenSSL-compatible encryption: exactly what `openssl enc -aes-256-cfb -pass file:P` writes and reads,
 * which is Freezer's tar-engine encryption (reference/freezer.md §3 "Encryption format").
 *
 * Format: "Salted__" + 8 random salt bytes, then the AES-256-CFB128 ciphertext of the whole stream as ONE
 * continuous CFB stream (never restarted per segment; no padding, so ciphertext length = plaintext length).
 * Key (32 bytes) and IV (16 bytes) come from EVP_BytesToKey(digest, password, salt, count 1):
 * D_1 = H(password || salt), D_i = H(D_{i-1} || password || salt), key||iv = D_1 || D_2 || ...
 * The digest is SHA-256 for OpenSSL >= 1.1.0 (what floe writes) and MD5 for OpenSSL <= 1.0.2; the reader
 * tries SHA-256 then MD5 and keeps the one whose first plaintext bytes look like data it knows (a
 * compression magic, a tar header, a GNU tar snapshot file). CFB has no MAC: tampering is caught by
 * integrity.ts, not here.
 *
 * The cipher is reached through `cfb(backend, ...)`: 'native' is node:crypto (OpenSSL), the default;
 * 'wasm' is the WASM kernel (the same bytes; its modules load on demand, see loadCryptoBackend).
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import { BadPasswordError, IntegrityError, UsageError, errnoMessage } from '../errors.js';
import type { Stage } from '../pipeline/stages.js';
import { detectCompression } from './magic.js';
import type { Kernel } from '../../wasm/index.js';
import { WorkerPool, transferable } from '../pipeline/pool.js';

/** CryptoBackend names the implementation of AES-256-CFB: OpenSSL through node:crypto (default) or the WASM kernel. */
export type CryptoBackend = 'native' | 'wasm';

export interface CryptoOptions {
  /** Decrypt in this worker pool, blocks in parallel (decryptStage only; CFB encryption is sequential). */
  pool?: WorkerPool;
  /** Implementation to use; default 'native'. */
  backend?: CryptoBackend;
  /** decryptStage with a pool: blocks out at once (default: two per thread). */
  inflight?: number;
  /**
   * encryptStage: write the ciphertext over each input buffer in shared memory (a reused slot, which must
   * come back as itself: pipeline/slots.ts) and yield that buffer; the caller gives its inputs up. Other
   * inputs are replaced by the cipher's output (node:crypto's is a buffer of its own; a small WASM output
   * may sit in Node's buffer pool, and the serial thread's send() copies such views): copying it back cost
   * a 2 MiB copy per block on the thread that bounds an encrypted backup. (Copying back once kept ~90 MB
   * less peak RSS; since glibc keeps freed heap (engine/node-flags.ts) both ways peak at 186-191 MB, and a
   * 1 GiB zstd+enc backup takes 2.62-2.66 s instead of 2.66-2.71 s.)
   */
  inPlace?: boolean;
}

const MAGIC = Buffer.from('Salted__', 'latin1');
const SALT_LEN = 8;
/** HEADER_LEN: "Salted__" + salt. */
const HEADER_LEN = MAGIC.length + SALT_LEN;
/**
 * PEEK: plaintext bytes looked at to tell SHA-256 from MD5 and a right password from a wrong one. 512 covers
 * a whole tar header (the "ustar" magic sits at offset 257); compression magics need 6.
 */
const PEEK = 512;
/** OpenSSL reads a pass file with BIO_gets(buf, 1024): at most 1023 bytes of the first line. */
const PASS_MAX = 1023;

/** readPassFile reads a password the way `openssl -pass file:PATH` does. */
export async function readPassFile(path: string): Promise<Buffer> {
  let raw: Buffer;
  try {
    raw = await fsp.readFile(path);
  } catch (err) {
    throw new BadPasswordError(`cannot read pass file ${path}: ${errnoMessage(err)}`, { cause: err });
  }
  const pw = passwordFromFile(raw);
  if (pw.length === 0) throw new BadPasswordError(`pass file ${path} holds an empty password`);
  return pw;
}

/**
 * passwordFromFile applies OpenSSL's rule (apps/lib/apps.c app_get_pass): the first 1023 bytes of the
 * first line, cut at the first '\n', then at the first NUL (the password is a C string). A '\r' before
 * the newline is KEPT, as OpenSSL 3.0 keeps it (checked here: a CRLF pass file encrypts with "pw\r"), so
 * that floe and Freezer/openssl derive the same key from the same file.
 */
export function passwordFromFile(raw: Buffer): Buffer {
  let line = raw.subarray(0, PASS_MAX);
  const nl = line.indexOf(0x0a);
  if (nl >= 0) line = line.subarray(0, nl);
  const nul = line.indexOf(0x00);
  if (nul >= 0) line = line.subarray(0, nul);
  return Buffer.from(line);
}

/** Digest used by EVP_BytesToKey: 'sha256' (OpenSSL >= 1.1.0) or 'md5' (<= 1.0.2). */
export type KdfDigest = 'sha256' | 'md5';

/** evpBytesToKey derives AES-256 key and IV as OpenSSL `enc` does without -pbkdf2 (count 1). */
export function evpBytesToKey(digest: KdfDigest, password: Buffer, salt: Buffer): { key: Buffer; iv: Buffer } {
  const parts: Buffer[] = [];
  let have = 0;
  let prev = Buffer.alloc(0);
  while (have < 48) {
    prev = createHash(digest).update(prev).update(password).update(salt).digest();
    parts.push(prev);
    have += prev.length;
  }
  const all = Buffer.concat(parts);
  return { key: all.subarray(0, 32), iv: all.subarray(32, 48) };
}

/** Cfb is a running AES-256-CFB128 stream in one direction: update() returns as many bytes as it is given. */
interface Cfb {
  update(data: Buffer): Buffer;
}

function cfb(backend: CryptoBackend | undefined, key: Buffer, iv: Buffer, decrypt: boolean): Cfb {
  if (backend === 'wasm') {
    // WASM T-table AES: portable, byte-identical, about a third of OpenSSL's speed and not constant-time
    // (bench:kernels); selectable, never the default.
    const c = wasmKernel().aesCfb(key, iv, decrypt ? 'decrypt' : 'encrypt');
    return { update: (data) => { const out = c.update(data); return Buffer.from(out.buffer, out.byteOffset, out.byteLength); } };
  }
  const c = decrypt ? createDecipheriv('aes-256-cfb', key, iv) : createCipheriv('aes-256-cfb', key, iv);
  return { update: (data) => c.update(data) };
}

/**
 * The WASM modules load only for the 'wasm' backend (7 modules no default run needs, in every thread that
 * encrypts). The stages load them themselves; a caller of encryptBuffer/decryptBuffer with backend 'wasm'
 * awaits loadCryptoBackend first.
 */
let kernelClass: typeof Kernel | undefined;
let kernel: Kernel | undefined;

/** loadCryptoBackend loads what `backend` needs (nothing for 'native'). */
export async function loadCryptoBackend(backend: CryptoBackend | undefined): Promise<void> {
  if (backend === 'wasm') kernelClass ??= (await import('../../wasm/index.js')).Kernel;
}

/** wasmKernel is this thread's instance of the WASM module, made on first use. */
function wasmKernel(): Kernel {
  if (!kernelClass) throw new Error("the 'wasm' crypto backend is not loaded (loadCryptoBackend)");
  kernel ??= kernelClass.create();
  return kernel;
}

function checkPassword(password: Buffer): void {
  if (!Buffer.isBuffer(password) || password.length === 0) throw new BadPasswordError('empty password');
}

/** encryptStage: "Salted__" + salt, then the whole stream through one AES-256-CFB context (SHA-256 KDF). */
export function encryptStage(password: Buffer, options: CryptoOptions = {}): Stage {
  checkPassword(password);
  return async function* (input, signal) {
    await loadCryptoBackend(options.backend);
    const salt = randomBytes(SALT_LEN);
    const { key, iv } = evpBytesToKey('sha256', password, salt);
    const c = cfb(options.backend, key, iv, false);
    yield Buffer.concat([MAGIC, salt]);
    for await (const buf of input) {
      if (signal.aborted) throw signal.reason;
      if (buf.length === 0) continue;
      const out = c.update(buf);
      if (options.inPlace && out.length === buf.length && buf.buffer instanceof SharedArrayBuffer) {
        out.copy(buf);
        yield buf;
      } else yield out;
    }
  };
}

/**
 * knownPlaintext is the default check: the decrypted head starts like something floe or Freezer encrypts
 * (gzip, bzip2, xz, zstd stream; a tar archive; a GNU tar snapshot file "GNU tar-").
 */
export function knownPlaintext(head: Buffer): boolean {
  if (detectCompression(head)) return true;
  if (head.length >= 8 && head.subarray(0, 8).toString('latin1') === 'GNU tar-') return true;
  return head.length >= 262 && head.subarray(257, 262).toString('latin1') === 'ustar';
}

/** parseHeader splits off "Salted__"+salt; errors name what is wrong with the data. */
function parseHeader(head: Buffer): Buffer {
  const n = Math.min(head.length, MAGIC.length);
  if (!head.subarray(0, n).equals(MAGIC.subarray(0, n))) {
    throw new IntegrityError('encrypted data expected, but the data is not encrypted (no "Salted__" header)');
  }
  if (head.length < HEADER_LEN) throw new IntegrityError('encrypted data is truncated (incomplete "Salted__" header)');
  return head.subarray(MAGIC.length, HEADER_LEN);
}

/**
 * pickKey finds the KDF digest under which `cipherHead` decrypts to something `check` accepts: SHA-256
 * first, then MD5. Neither: BadPasswordError. Empty ciphertext carries nothing to test: SHA-256.
 */
function pickKey(
  password: Buffer, salt: Buffer, cipherHead: Buffer, check: (h: Buffer) => boolean, backend?: CryptoBackend,
): { key: Buffer; iv: Buffer } {
  if (cipherHead.length === 0) return evpBytesToKey('sha256', password, salt);
  for (const digest of ['sha256', 'md5'] as const) {
    const k = evpBytesToKey(digest, password, salt);
    if (check(cfb(backend, k.key, k.iv, true).update(cipherHead))) return k;
  }
  throw new BadPasswordError('wrong password: the data does not decrypt');
}

/**
 * decryptStage reads "Salted__"+salt, peeks at the first PEEK bytes of ciphertext to choose the key
 * (see pickKey), then decrypts the stream from its start. Memory: the header and one peek, then streaming.
 */
export function decryptStage(password: Buffer, check: (plainHead: Buffer) => boolean = knownPlaintext, options: CryptoOptions = {}): Stage {
  checkPassword(password);
  return async function* (input, signal) {
    const it = input[Symbol.asyncIterator]();
    const pending: Buffer[] = [];
    let have = 0;
    let ended = false;
    try {
      await loadCryptoBackend(options.backend);
      // Gather header + peek (or everything, if shorter). Only this much is held before decrypting.
      while (have < HEADER_LEN + PEEK) {
        if (signal.aborted) throw signal.reason;
        const r = await it.next();
        if (r.done) { ended = true; break; }
        pending.push(r.value);
        have += r.value.length;
      }
      const head = Buffer.concat(pending, have);
      if (have === 0) throw new IntegrityError('encrypted data is empty (no "Salted__" header)');
      const salt = parseHeader(head);
      const body = head.subarray(HEADER_LEN);
      const { key, iv } = pickKey(password, salt, body.subarray(0, PEEK), check, options.backend);
      if (options.pool) {
        yield* parallelCfbDecrypt(key, iv, restOf(body, it, ended), options.pool, options.backend ?? 'native', signal, options.inflight);
        ended = true;
        return;
      }
      const c = cfb(options.backend, key, iv, true);
      if (body.length > 0) yield c.update(body);
      while (!ended) {
        if (signal.aborted) throw signal.reason;
        const r = await it.next();
        if (r.done) break;
        if (r.value.length > 0) yield c.update(r.value);
      }
      ended = true;
    } finally {
      if (!ended) await it.return?.();
    }
  };
}

/** encryptBuffer encrypts a small object (engine_metadata) in the same format as encryptStage. */
export function encryptBuffer(password: Buffer, plain: Buffer, options: CryptoOptions = {}): Buffer {
  checkPassword(password);
  const salt = randomBytes(SALT_LEN);
  const { key, iv } = evpBytesToKey('sha256', password, salt);
  return Buffer.concat([MAGIC, salt, cfb(options.backend, key, iv, false).update(plain)]);
}

/** decryptBuffer decrypts a small object written by encryptBuffer or `openssl enc -aes-256-cfb`. */
export function decryptBuffer(
  password: Buffer, data: Buffer, check: (plainHead: Buffer) => boolean = knownPlaintext, options: CryptoOptions = {},
): Buffer {
  checkPassword(password);
  if (data.length === 0) throw new IntegrityError('encrypted data is empty (no "Salted__" header)');
  const salt = parseHeader(data);
  const body = data.subarray(HEADER_LEN);
  const { key, iv } = pickKey(password, salt, body.subarray(0, PEEK), check, options.backend);
  return cfb(options.backend, key, iv, true).update(body);
}

/** isEncrypted tells whether data starts with OpenSSL's "Salted__" header. */
export function isEncrypted(head: Buffer): boolean {
  return head.length >= MAGIC.length && head.subarray(0, MAGIC.length).equals(MAGIC);
}

/**
 * Parallel CFB decryption: a piece of ciphertext that starts on a 16-byte boundary decrypts on its own,
 * with the 16 ciphertext bytes before it as IV, byte-identical to one sequential pass. Storage reads and
 * the verifier's pieces already start on such boundaries (segments and reads are multiples of 16 past the
 * 16-byte header), so pieces go to the workers as they come, without regrouping or copying; only a piece
 * that ends off a boundary leaves a remainder (under 16 bytes) to prepend to the next one.
 * MAX_PIECE bounds a task (a whole segment could arrive at once from another reader).
 */
const MAX_PIECE = 4 * 1024 * 1024;

async function* restOf(first: Buffer, it: AsyncIterator<Buffer>, done: boolean): AsyncIterable<Buffer> {
  if (first.length > 0) yield first;
  if (done) return;
  for (;;) {
    const r = await it.next();
    if (r.done) return;
    yield r.value;
  }
}

async function* parallelCfbDecrypt(
  key: Buffer, iv: Buffer, cipher: AsyncIterable<Buffer>, pool: WorkerPool, backend: CryptoBackend, signal: AbortSignal,
  inflight = pool.threads * 2,
): AsyncIterable<Buffer> {
  const limit = Math.max(1, inflight);
  const pending: Array<Promise<Buffer>> = [];
  let register = iv;
  let carry: Buffer | undefined;
  const submit = (piece: Buffer) => {
    const next = Buffer.from(piece.subarray(piece.length - 16)); // copied: `piece` is handed to the worker
    const p = pool.run({ op: 'cfb-decrypt', backend, key, iv: register, data: transferable(piece) });
    p.catch(() => undefined); // awaited below, in order
    pending.push(p);
    register = next;
  };
  for await (let buf of cipher) {
    if (signal.aborted) throw signal.reason;
    if (carry) {
      buf = Buffer.concat([carry, buf]);
      carry = undefined;
    }
    const aligned = buf.length - (buf.length % 16);
    if (aligned < buf.length) carry = Buffer.from(buf.subarray(aligned));
    for (let off = 0; off < aligned; off += MAX_PIECE) {
      submit(off === 0 && aligned === buf.length && buf.length <= MAX_PIECE ? buf : buf.subarray(off, Math.min(aligned, off + MAX_PIECE)));
      while (pending.length >= limit) yield await pending.shift()!;
    }
  }
  if (carry) submit(carry);
  while (pending.length > 0) yield await pending.shift()!;
}
