/**
 * Compression stages: gzip, bzip2, xz, zstd and none, each a plain Stage (Buffer stream in, Buffer stream out).
 *
 * Model: the backup stream is compressed as ONE stream per algorithm, exactly what `tar -z|-j|-J` (and
 * Freezer) write, so GNU tar, gzip, bzip2, xz and zstd read floe's output and floe reads theirs.
 * - gzip runs in node:zlib (level 6 = gzip's and `tar -z`'s default); gunzip reads concatenated members.
 * - bzip2 and xz run the system binaries (`-c` / `-dc`) as child processes, streamed with backpressure:
 *   the same programs Freezer and GNU tar use, and none of our dependencies carries them.
 * - zstd runs libzstd through zstd-napi's native context, driven directly so that output is produced only
 *   as fast as the consumer pulls it (level 3 = the zstd CLI's default; frames carry a content checksum).
 * - none is the identity.
 * Corrupt or truncated input becomes an IntegrityError ("corrupted data: gzip: ..."); errors coming from
 * upstream stages pass through untouched. Every stage stops on its AbortSignal and kills its child process.
 *
 * Seam for parallel compression (issue 3): nothing outside this file assumes how a stage runs. A pool-backed
 * stage can compress independent segments as concatenated gzip members / zstd frames / bzip2 and xz
 * streams (all valid concatenated streams for the decompressors here and for the CLIs) and return the same
 * Stage type.
 */
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { Readable, pipeline, type Transform } from 'node:stream';
import * as zlib from 'node:zlib';
import type * as ZstdBinding from 'zstd-napi/binding.js';
import { IntegrityError, UsageError } from '../errors.js';
import type { Stage } from '../pipeline/stages.js';

export type Compression = 'gzip' | 'bzip2' | 'xz' | 'zstd' | 'none';

/** COMPRESSIONS lists the algorithms, in the order the CLI documents them. */
export const COMPRESSIONS: readonly Compression[] = ['gzip', 'bzip2', 'xz', 'zstd', 'none'];

/**
 * Default levels: gzip, bzip2 and xz as their CLIs without a flag, so output matches `tar -z/-j/-J` (and
 * Freezer's). zstd at 1, not the CLI's 3: zstd is floe's fast choice, and level 1 is what the fast peers
 * use (`zstd -1`); measured on the 1 GiB bench tree, level 3 stores 6% less but compresses 1.5x slower.
 * `--compression-level` picks another.
 */
const DEFAULT_LEVEL: Record<Exclude<Compression, 'none'>, number> = { gzip: 6, bzip2: 9, xz: 6, zstd: 1 };
const LEVEL_RANGE: Record<Exclude<Compression, 'none'>, [number, number]> = {
  gzip: [1, 9], bzip2: [1, 9], xz: [0, 9], zstd: [1, 19],
};

/**
 * OUT_CHUNK: size of the buffers the compressors yield. 256 KiB keeps per-item overhead (promises, queue
 * hops) negligible while staying far below a segment; the segmenter regroups anyway.
 */
const OUT_CHUNK = 256 * 1024;

/** isCompression tells whether `s` names a supported algorithm. */
export function isCompression(s: string): s is Compression {
  return (COMPRESSIONS as readonly string[]).includes(s);
}

export { detectCompression } from './magic.js';

/** compressStage returns the Stage compressing with `alg` (level: the algorithm's own scale). */
export function compressStage(alg: Compression, options: { level?: number } = {}): Stage {
  if (alg === 'none') return identity;
  const level = compressionLevel(alg, options.level);
  switch (alg) {
    case 'gzip': return (input, signal) => viaTransform(input, signal, zlib.createGzip({ level, chunkSize: OUT_CHUNK }), 'gzip');
    case 'bzip2': return (input, signal) => viaProcess(input, signal, 'bzip2', ['-c', `-${level}`]);
    case 'xz': return (input, signal) => viaProcess(input, signal, 'xz', ['-c', `-${level}`, '-T1']);
    case 'zstd': return (input, signal) => zstdCompress(input, signal, level);
  }
  throw new UsageError(`unknown compression '${String(alg)}'`);
}

/** decompressStage returns the Stage decompressing `alg`; it reads concatenated streams/members/frames. */
export function decompressStage(alg: Compression): Stage {
  switch (alg) {
    case 'none': return identity;
    case 'gzip': return (input, signal) => viaTransform(input, signal, zlib.createGunzip({ chunkSize: OUT_CHUNK }), 'gzip');
    case 'bzip2': return (input, signal) => viaProcess(input, signal, 'bzip2', ['-dc']);
    case 'xz': return (input, signal) => viaProcess(input, signal, 'xz', ['-dc']);
    case 'zstd': return (input, signal) => zstdDecompress(input, signal);
  }
  throw new UsageError(`unknown compression '${String(alg)}'`);
}

/** compressionLevel returns `level` checked against `alg`'s scale (UsageError), or the default level. */
export function compressionLevel(alg: Exclude<Compression, 'none'>, level: number | undefined): number {
  if (level === undefined) return DEFAULT_LEVEL[alg];
  const [lo, hi] = LEVEL_RANGE[alg];
  if (!Number.isInteger(level) || level < lo || level > hi) {
    throw new UsageError(`compression level for ${alg} must be an integer from ${lo} to ${hi}, not ${level}`);
  }
  return level;
}

const identity: Stage = async function* (input, signal) {
  for await (const buf of input) {
    if (signal.aborted) throw signal.reason;
    yield buf;
  }
};

/**
 * viaTransform runs a Node Transform (zlib) as a Stage. stream.pipeline gives backpressure both ways and
 * tears everything down on error or early exit; only zlib's own errors (code Z_*) are rewritten.
 */
async function* viaTransform(input: AsyncIterable<Buffer>, signal: AbortSignal, t: Transform, name: string): AsyncIterable<Buffer> {
  if (signal.aborted) throw signal.reason;
  const onAbort = () => t.destroy(signal.reason);
  signal.addEventListener('abort', onAbort, { once: true });
  const out = pipeline(Readable.from(input, { objectMode: false, highWaterMark: 1 }), t, () => { /* errors surface on iteration */ });
  try {
    for await (const chunk of out as AsyncIterable<Buffer>) yield chunk;
  } catch (err) {
    throw dataError(name, err);
  } finally {
    signal.removeEventListener('abort', onAbort);
    if (!out.destroyed) out.destroy();
  }
}

/** dataError rewrites a zlib failure as an IntegrityError; anything else passes unchanged. */
function dataError(name: string, err: unknown): unknown {
  const e = err as NodeJS.ErrnoException;
  if (typeof e?.code === 'string' && e.code.startsWith('Z_')) {
    const what = e.code === 'Z_BUF_ERROR' ? 'unexpected end of data (truncated)' : e.message;
    return new IntegrityError(`corrupted data: ${name}: ${what}`, { cause: err });
  }
  return err;
}

/** STDERR_KEEP: bytes of a child's stderr kept for the error message (its last words are what matter). */
const STDERR_KEEP = 4096;

/**
 * viaProcess runs `prog args` as a Stage: input is written to its stdin (waiting for 'drain', so a slow
 * program slows the producer), its stdout is yielded as read. A non-zero exit is an error: for `-d` runs
 * an IntegrityError ("corrupted data: bzip2: ..."), else an Error with the program's message.
 * The child is killed if the signal aborts or the consumer stops early.
 */
async function* viaProcess(input: AsyncIterable<Buffer>, signal: AbortSignal, prog: string, args: string[]): AsyncIterable<Buffer> {
  if (signal.aborted) throw signal.reason;
  const child = spawn(prog, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (s: string) => { stderr = (stderr + s).slice(-STDERR_KEEP); });
  const exited = new Promise<{ code: number | null; sig: NodeJS.Signals | null; spawnErr?: Error }>((resolve) => {
    child.once('error', (err) => resolve({ code: null, sig: null, spawnErr: err }));
    child.once('close', (code, sig) => resolve({ code, sig }));
  });
  const kill = () => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL'); };
  signal.addEventListener('abort', kill, { once: true });
  let inputErr: unknown;
  const feeding = feed(input, child.stdin, signal).catch((err) => { inputErr = err; kill(); });
  /** outcome explains how the run ended, in order of precedence: abort, upstream error, the program. */
  const outcome = async (readErr?: unknown): Promise<unknown> => {
    const r = await exited;
    if (signal.aborted) return signal.reason;
    if (inputErr !== undefined) return inputErr;
    if (r.spawnErr) return spawnError(prog, r.spawnErr);
    if (r.code !== 0) return processError(prog, args, r.code, r.sig, stderr);
    await feeding; // exit 0: the program read all of stdin, so this settles at once
    return inputErr ?? readErr;
  };
  try {
    try {
      for await (const chunk of child.stdout as AsyncIterable<Buffer>) yield chunk;
    } catch (err) {
      throw await outcome(err);
    }
    const err = await outcome();
    if (err !== undefined) throw err;
  } finally {
    signal.removeEventListener('abort', kill);
    kill();
  }
}

/** feed writes `input` to `stdin` with backpressure and ends it. EPIPE (the child quit) is left to the exit code. */
async function feed(input: AsyncIterable<Buffer>, stdin: NodeJS.WritableStream & { destroyed: boolean }, signal: AbortSignal): Promise<void> {
  let broken = false;
  stdin.on('error', () => { broken = true; });
  for await (const buf of input) {
    if (signal.aborted) throw signal.reason;
    if (broken || stdin.destroyed) return;
    if (!stdin.write(buf)) {
      await new Promise<void>((resolve) => {
        const done = () => { stdin.off('drain', done); stdin.off('close', done); stdin.off('error', done); resolve(); };
        stdin.on('drain', done); stdin.on('close', done); stdin.on('error', done);
      });
    }
  }
  if (!broken && !stdin.destroyed) stdin.end();
}

function spawnError(prog: string, err: Error): Error {
  if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
    return new UsageError(`${prog} compression needs the '${prog}' program, which is not installed (not found in PATH)`);
  }
  return new UsageError(`cannot run ${prog}: ${err.message}`);
}

/** processError picks the program's own first complaint ("bzip2: Data integrity error ...") for the message. */
function processError(prog: string, args: string[], code: number | null, sig: NodeJS.Signals | null, stderr: string): Error {
  const line = stderr.split('\n').map((l) => l.trim()).find((l) => l.startsWith(`${prog}:`) && !/Inappropriate ioctl/.test(l))
    ?? stderr.split('\n').map((l) => l.trim()).find((l) => l.length > 0);
  const why = line ? line.replace(/^[a-z0-9]+:\s*/, '').replace(/^\(stdin\):\s*/, '').replace(/;$/, '')
    : sig ? `killed by ${sig}` : `exit code ${code}`;
  if (args.includes('-dc')) return new IntegrityError(`corrupted data: ${prog}: ${why}`);
  return new Error(`${prog} failed: ${why}`);
}

// ---- zstd --------------------------------------------------------------------------------------------------

type Binding = typeof ZstdBinding;
let bindingCache: Binding | undefined;
/** zstd loads zstd-napi's native binding lazily, so gzip-only runs never load the addon. */
function zstd(): Binding {
  bindingCache ??= createRequire(import.meta.url)('zstd-napi/binding') as Binding;
  return bindingCache;
}

/** zstdCompress drives a CCtx directly: one frame for the whole stream, content checksum on. */
async function* zstdCompress(input: AsyncIterable<Buffer>, signal: AbortSignal, level: number): AsyncIterable<Buffer> {
  const b = zstd();
  const cctx = new b.CCtx();
  cctx.setParameter(b.CParameter.compressionLevel, level);
  cctx.setParameter(b.CParameter.checksumFlag, 1);
  const out = new OutBuffer();
  for await (const chunk of input) {
    if (signal.aborted) throw signal.reason;
    let src: Buffer = chunk;
    while (src.length > 0) {
      const [, produced, consumed] = cctx.compressStream2(out.free(), src, b.EndDirective.continue);
      src = src.subarray(consumed);
      const full = out.advance(produced);
      if (full) yield full;
    }
  }
  for (;;) {
    const [remaining, produced] = cctx.compressStream2(out.free(), EMPTY, b.EndDirective.end);
    const full = out.advance(produced);
    if (full) yield full;
    if (remaining === 0) break;
  }
  const rest = out.take();
  if (rest) yield rest;
}
const EMPTY = Buffer.alloc(0);

/** zstdDecompress drives a DCtx: any number of frames; input ending inside a frame is an IntegrityError. */
async function* zstdDecompress(input: AsyncIterable<Buffer>, signal: AbortSignal): AsyncIterable<Buffer> {
  const b = zstd();
  const dctx = new b.DCtx();
  const out = new OutBuffer();
  let inFrame = false;
  let seen = false;
  for await (const chunk of input) {
    if (signal.aborted) throw signal.reason;
    let src: Buffer = chunk;
    if (src.length > 0) seen = true;
    for (;;) {
      const space = out.free();
      let ret: number, produced: number, consumed: number;
      try {
        [ret, produced, consumed] = dctx.decompressStream(space, src);
      } catch (err) {
        throw new IntegrityError(`corrupted data: zstd: ${(err as Error).message}`, { cause: err });
      }
      src = src.subarray(consumed);
      // A call that moved nothing says nothing about frames: at a frame boundary with no input left,
      // zstd answers with the size of the next frame header it wants (non-zero), not "inside a frame".
      if (consumed > 0 || produced > 0) inFrame = ret !== 0;
      const full = out.advance(produced);
      if (full) yield full;
      // Done with this input once it is consumed and the context did not fill the output (nothing pending).
      if (src.length === 0 && produced < space.length) break;
    }
  }
  if (inFrame || !seen) {
    throw new IntegrityError(`corrupted data: zstd: ${seen ? 'unexpected end of data (truncated)' : 'empty input'}`);
  }
  const rest = out.take();
  if (rest) yield rest;
}

/**
 * OutBuffer fills one OUT_CHUNK buffer across several native calls and hands it out when full, so yielded
 * buffers are large and never views pinning a bigger allocation.
 */
class OutBuffer {
  #buf = Buffer.allocUnsafe(OUT_CHUNK);
  #pos = 0;
  free(): Buffer {
    return this.#buf.subarray(this.#pos);
  }
  /** advance records `n` written bytes; returns the buffer when it became full (and starts a new one). */
  advance(n: number): Buffer | undefined {
    this.#pos += n;
    if (this.#pos < this.#buf.length) return undefined;
    const full = this.#buf;
    this.#buf = Buffer.allocUnsafe(OUT_CHUNK);
    this.#pos = 0;
    return full;
  }
  /** take returns what is left (a copy, sized exactly), or undefined when empty. */
  take(): Buffer | undefined {
    if (this.#pos === 0) return undefined;
    const rest = Buffer.from(this.#buf.subarray(0, this.#pos));
    this.#pos = 0;
    return rest;
  }
}
