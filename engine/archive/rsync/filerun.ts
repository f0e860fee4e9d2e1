/**
 * Reading one regular file for the rsync engine's backup: whole (literal and hole ops) or as a delta
 * against its previous version (copy and literal ops), plus the new version's signature and SHA-256.
 *
 * Model: the file is read once, in order, by this thread, which hashes it (SHA-256 of the whole content,
 * the value restore verifies) and writes the ops to the output. The byte-heavy work runs in the worker
 * pool: the match search of each window (kernels.ts deltaWindow), with the new signature when the block
 * size is kept, or the signature of whole-file reads (Signer). At most `threads * 2` tasks of each kind
 * are in flight, so memory stays at a few windows whatever the file's size.
 */
import { createHash, randomBytes } from 'node:crypto';
import { read, readSync } from 'node:fs';
import type { WorkerPool } from '../../pipeline/pool.js';
import type { ChunkWriter } from '../tar/chunks.js';
import { copyOp, holeOp, literalHead, STRONG_LEN, type Signature } from './format.js';

/** READ_SIZE: read size for whole files; also the largest literal op. */
const READ_SIZE = 1 << 20;
/** WINDOW: about this many bytes of the new file per delta task (whole blocks). The scan runs at about
 * 500 MB/s per thread: 4 MiB is ~8 ms of work, long next to a task's round trip, short for memory. */
const WINDOW = 4 << 20;
/** SIG_CHUNK: about this many bytes per signature task (rounded to whole blocks). */
const SIG_CHUNK = 4 << 20;
/** SMALL_FILE: files up to this size are read synchronously (a 256 KiB read holds the loop ~50 us). */
const SMALL_FILE = 256 << 10;
/** HOLE: granularity of hole detection in sparse files (the usual filesystem block). */
const HOLE = 4096;
const ZEROS = Buffer.alloc(HOLE);

const readAsync = (fd: number, buf: Buffer, offset: number, length: number, position: number) =>
  new Promise<number>((res, rej) => read(fd, buf, offset, length, position, (err, n) => (err ? rej(err) : res(n))));

/** Runner: what FileRun and Signer need of the pool. */
export type Runner = Pick<WorkerPool, 'run' | 'threads'>;

/**
 * TaskSlots bounds the tasks one backup has in the pool (signatures of files whose reading is done may
 * still run while the next files are read): at most `threads * 4`, well under the pool's queue limit
 * (threads * 16), and two queued tasks per thread keep both busy.
 */
export class TaskSlots implements Runner {
  readonly threads: number;
  readonly #pool: WorkerPool;
  #free: number;
  readonly #waiters: (() => void)[] = [];

  constructor(pool: WorkerPool) {
    this.#pool = pool;
    this.threads = pool.threads;
    this.#free = pool.threads * 4;
  }

  async run(task: Parameters<WorkerPool['run']>[0]): Promise<Buffer> {
    if (this.#free > 0) this.#free--;
    else await new Promise<void>((resolve) => this.#waiters.push(resolve));
    try {
      return await this.#pool.run(task);
    } finally {
      const next = this.#waiters.shift();
      if (next) next();
      else this.#free++;
    }
  }
}

/** FileSink: where a FileRun writes its ops, and what it reports through. */
export interface FileSink {
  out: ChunkWriter;
  signal: AbortSignal | undefined;
  pool: Runner;
  onBytes(n: number): void;
}

/** Signer computes a file's signature in the pool from its bytes fed in order (a few tasks in flight). */
export class Signer {
  readonly #pool: Runner;
  readonly #bs: number;
  readonly #chunk: number;
  #buf: Buffer;
  #fill = 0;
  readonly #tasks: Promise<Buffer>[] = [];
  readonly #done: Buffer[] = [];

  /** `size`: the file's expected size, so small files get small buffers. */
  constructor(pool: Runner, bs: number, size: number) {
    this.#pool = pool;
    this.#bs = bs;
    this.#chunk = Math.max(1, Math.floor(SIG_CHUNK / bs)) * bs;
    this.#buf = Buffer.allocUnsafe(Math.min(this.#chunk, Math.max(1, size)));
  }

  async feed(data: Buffer): Promise<void> {
    for (let off = 0; off < data.length;) {
      if (this.#fill === this.#buf.length && this.#buf.length < this.#chunk) {
        const bigger = Buffer.allocUnsafe(this.#chunk); // after a send, or the file grew past its expected size
        this.#buf.copy(bigger, 0, 0, this.#fill);
        this.#buf = bigger;
      }
      const n = Math.min(data.length - off, this.#buf.length - this.#fill);
      data.copy(this.#buf, this.#fill, off, off + n);
      this.#fill += n;
      off += n;
      if (this.#fill === this.#chunk) await this.#send();
    }
  }

  async #send(): Promise<void> {
    const data = new Uint8Array(this.#buf.buffer, this.#buf.byteOffset, this.#fill);
    this.#buf = Buffer.alloc(0); // the next feed allocates: nothing is held after the last chunk
    this.#fill = 0;
    this.#tasks.push(this.#pool.run({ op: 'rsync-signature', blockSize: this.#bs, data: data.byteLength === data.buffer.byteLength ? data : new Uint8Array(data) }));
    // bound the work in flight: one running and one queued per thread
    while (this.#tasks.length >= this.#pool.threads * 2) this.#done.push(await this.#tasks.shift()!);
  }

  async finish(sha: Buffer): Promise<Signature> {
    if (this.#fill > 0) await this.#send();
    for (const t of this.#tasks.splice(0)) this.#done.push(await t);
    const n = this.#done.reduce((s, b) => s + b.length / (4 + STRONG_LEN), 0);
    const weaks = new Uint32Array(n);
    const strongs = Buffer.allocUnsafe(n * STRONG_LEN);
    let at = 0;
    for (const b of this.#done) {
      const k = b.length / (4 + STRONG_LEN);
      new Uint8Array(weaks.buffer, at * 4, k * 4).set(b.subarray(0, k * 4));
      b.copy(strongs, at * STRONG_LEN, k * 4);
      at += k;
    }
    return { sha, blockSize: this.#bs, weaks, strongs };
  }

  /** discard waits for tasks in flight (their buffers belong to the pool) and forgets them. */
  async discard(): Promise<void> {
    await Promise.allSettled(this.#tasks.splice(0));
  }
}


/** FileRun reads one regular file and writes its data ops; counts what it read and hashes it. */
export class FileRun {
  readonly hash = createHash('sha256');
  read = 0;
  readonly #run: FileSink;
  readonly #fd: number;
  #size: number;
  readonly #sparse: boolean;
  readonly signer: Signer | null;
  /** delta() computes the new signature with the match search (same block size as the basis). */
  readonly inlineSig: boolean;
  readonly #sigParts: Buffer[] = [];

  constructor(run: FileSink, fd: number, size: number, sparse: boolean, signer: Signer | null, inlineSig: boolean) {
    this.#run = run;
    this.#fd = fd;
    this.#size = size;
    this.#sparse = sparse;
    this.signer = signer;
    this.inlineSig = inlineSig;
  }

  /** inlineSignature assembles the signature that delta() collected (inlineSig only). */
  inlineSignature(sha: Buffer, blockSize: number): Signature {
    const parts = this.#sigParts.map((res) => {
      const r = new Uint32Array(res.buffer, res.byteOffset, res.byteLength / 4);
      const at = 3 + 3 * r[0];
      const n = r[2];
      return { weaks: r.subarray(at, at + n), strongs: res.subarray((at + n) * 4, (at + n) * 4 + n * STRONG_LEN) };
    });
    const total = parts.reduce((t, p) => t + p.weaks.length, 0);
    const weaks = new Uint32Array(total);
    const strongs = Buffer.allocUnsafe(total * STRONG_LEN);
    let i = 0;
    for (const p of parts) {
      weaks.set(p.weaks, i);
      strongs.set(p.strongs, i * STRONG_LEN);
      i += p.weaks.length;
    }
    return { sha, blockSize, weaks, strongs };
  }

  /** readAt fills buf from `pos` (short only at end of file). */
  async #readAt(buf: Buffer, pos: number): Promise<number> {
    let got = 0;
    while (got < buf.length) {
      const bytesRead = this.#size <= SMALL_FILE
        ? readSync(this.#fd, buf, got, buf.length - got, pos + got)
        : await readAsync(this.#fd, buf, got, buf.length - got, pos + got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    return got;
  }

  /** consume hashes and signs new bytes (each byte of the file exactly once, in order). */
  async #consume(data: Buffer): Promise<void> {
    this.hash.update(data);
    await this.signer?.feed(data);
    this.read += data.length;
    this.#run.onBytes(data.length);
  }

  async *full(): AsyncGenerator<Buffer> {
    const buf = Buffer.allocUnsafe(Math.min(READ_SIZE, Math.max(1, this.#size)));
    for (let pos = 0; pos < this.#size;) {
      this.#run.signal?.throwIfAborted();
      const want = buf.subarray(0, Math.min(buf.length, this.#size - pos));
      const n = await this.#readAt(want, pos);
      if (n === 0) break;
      const data = want.subarray(0, n);
      await this.#consume(data);
      this.#literal(data, pos);
      pos += n;
      if (this.#run.out.hasReady) yield* this.#run.out.take();
      if (n < want.length) break;
    }
  }

  /** literal writes data (at file offset pos) as literal ops, or hole ops for zero blocks of a sparse file. */
  #literal(data: Buffer, pos: number): void {
    const out = this.#run.out;
    const put = (a: number, b: number) => {
      for (let s = a; s < b; s += READ_SIZE) {
        const e = Math.min(b, s + READ_SIZE);
        out.write(literalHead(e - s));
        out.write(data.subarray(s, e));
      }
    };
    if (!this.#sparse) { put(0, data.length); return; }
    let runStart = 0;
    let holeStart = -1;
    let off = 0;
    while (off < data.length) {
      const end = Math.min(data.length, off + HOLE - ((pos + off) % HOLE));
      const zero = end - off === HOLE && data.compare(ZEROS, 0, HOLE, off, end) === 0;
      if (zero && holeStart < 0) { put(runStart, off); holeStart = off; }
      if (!zero && holeStart >= 0) { out.write(holeOp(off - holeStart)); holeStart = -1; runStart = off; }
      off = end;
    }
    if (holeStart >= 0) out.write(holeOp(data.length - holeStart));
    else put(runStart, data.length);
  }

  /** delta writes copy and literal ops against the previous version's signature. */
  async *delta(sig: Signature, oldSize: number): AsyncGenerator<Buffer> {
    const bs = sig.blockSize;
    const blocks = sig.weaks.length;
    const shared = new Uint8Array(new SharedArrayBuffer(blocks * (4 + STRONG_LEN)));
    shared.set(new Uint8Array(sig.weaks.buffer, sig.weaks.byteOffset, blocks * 4), 0);
    shared.set(sig.strongs, blocks * 4);
    const sigId = randomBytes(8).toString('hex');
    const lastLen = oldSize - (blocks - 1) * bs;
    const window = Math.max(4, Math.floor(WINDOW / bs)) * bs; // whole blocks: windows start on block boundaries
    const out = this.#run.out;
    let run: { block: number; count: number } | null = null;
    const flushRun = () => {
      if (run) out.write(copyOp(run.block, run.count));
      run = null;
    };
    // Windows of the new file are scanned in parallel, each by a greedy search (match, skip a block)
    // started at its own first offset; window k holds the offsets [s, s + window) plus bs - 1 bytes,
    // so every offset is examined by exactly one window. Stitching them in order gives the sequential
    // greedy result whenever a window's first match is at or after the position the previous windows
    // reached (then both searches agree from that match on); otherwise the window is scanned again from
    // that position (rare: it takes a match straddling windows that the greedy search would skip).
    const threads = this.#run.pool.threads;
    const inflight: { s: number; data: Buffer; final: boolean; task: Promise<Buffer> }[] = [];
    let readPos = 0;
    let fed = 0;
    const task = (data: Buffer, final: boolean, signEnd: number) => {
      const t = this.#run.pool.run({
        op: 'rsync-delta', blockSize: bs, sigId, sig: shared, blocks, lastLen, final, signEnd, data: new Uint8Array(data),
      });
      t.catch(() => undefined); // awaited in order; this keeps a failure from counting as unhandled meanwhile
      return t;
    };
    const launch = async () => {
      const s = readPos;
      const want = Math.min(window + bs - 1, this.#size - s);
      const buf = Buffer.allocUnsafe(want);
      const n = await this.#readAt(buf, s);
      if (n < want) this.#size = s + n; // shrank while read
      const data = buf.subarray(0, n);
      const final = s + n >= this.#size;
      readPos = final ? Infinity : s + window;
      if (s + n > fed) {
        await this.#consume(data.subarray(fed - s));
        fed = s + n;
      }
      if (n > 0) inflight.push({ s, data, final, task: task(data, final, this.inlineSig ? window : 0) });
    };
    let pos = 0;
    for (;;) {
      this.#run.signal?.throwIfAborted();
      while (inflight.length < threads * 2 && readPos < this.#size) await launch();
      const w = inflight.shift();
      if (!w) break;
      let res = await w.task;
      if (this.inlineSig) this.#sigParts.push(res);
      let base = w.s;
      let data = w.data;
      if (res.readUInt32LE(0) > 0 && w.s + res.readUInt32LE(12) < pos) {
        data = w.data.subarray(pos - w.s);
        base = pos;
        res = await task(data, w.final, 0);
      }
      const r = new Uint32Array(res.buffer, res.byteOffset, res.byteLength / 4);
      for (let i = 0; i < r[0]; i++) {
        const off = base + r[3 + 3 * i];
        const block = r[4 + 3 * i];
        if (off < pos) continue; // only the short last block, tried at the end of the file, can land here
        if (off > pos) { flushRun(); this.#literal(data.subarray(pos - base, off - base), pos); }
        const cur = run as { block: number; count: number } | null;
        if (cur && cur.block + cur.count === block) cur.count++;
        else { flushRun(); run = { block, count: 1 }; }
        pos = off + r[5 + 3 * i];
      }
      const decided = w.final ? w.s + w.data.length : w.s + window;
      if (decided > pos) { flushRun(); this.#literal(data.subarray(pos - base, decided - base), pos); pos = decided; }
      if (out.hasReady) yield* out.take();
    }
    flushRun();
  }
}
