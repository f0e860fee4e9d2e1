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
import { FINE_LEN, fineCount, Kernel } from '../../../wasm/index.js';
import { copyOp, holeOp, literalHead, rangeOp, STRONG_LEN, type FineSums, type Signature } from './format.js';
import type { FineSpec } from './kernels.js';

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
  readonly #fine: FineSpec | null;
  readonly #chunk: number;
  #buf: Buffer;
  #fill = 0;
  readonly #tasks: { len: number; res: Promise<Buffer> }[] = [];
  readonly #done: { len: number; res: Buffer }[] = [];

  /** `size`: the file's expected size, so small files get small buffers; `fine`: fine sums to compute. */
  constructor(pool: Runner, bs: number, size: number, fine: FineSpec | null) {
    this.#pool = pool;
    this.#bs = bs;
    this.#fine = fine;
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
    const fine = this.#fine ?? NO_FINE;
    this.#tasks.push({
      len: data.byteLength,
      res: this.#pool.run({
        op: 'rsync-signature', blockSize: this.#bs, fineSize: fine.fineSize, fineSeed: fine.fineSeed,
        data: data.byteLength === data.buffer.byteLength ? data : new Uint8Array(data),
      }),
    });
    // bound the work in flight: one running and one queued per thread
    while (this.#tasks.length >= this.#pool.threads * 2) {
      const t = this.#tasks.shift()!;
      this.#done.push({ len: t.len, res: await t.res });
    }
  }

  async finish(sha: Buffer): Promise<Signature> {
    if (this.#fill > 0) await this.#send();
    for (const t of this.#tasks.splice(0)) this.#done.push({ len: t.len, res: await t.res });
    // every chunk but the last is whole blocks: each part is weak x n, strong x n, fine x m
    const bs = this.#bs;
    const f = this.#fine?.fineSize ?? 0;
    const parts = this.#done.map(({ len, res }) => {
      const n = Math.ceil(len / bs);
      return {
        weaks: res.subarray(0, n * 4),
        strongs: res.subarray(n * 4, n * (4 + STRONG_LEN)),
        fine: res.subarray(n * (4 + STRONG_LEN), n * (4 + STRONG_LEN) + (f > 0 ? fineCount(len, bs, f) * FINE_LEN : 0)),
      };
    });
    return assemble(sha, bs, parts, this.#fine);
  }

  /** discard waits for tasks in flight (their buffers belong to the pool) and forgets them. */
  async discard(): Promise<void> {
    await Promise.allSettled(this.#tasks.splice(0).map((t) => t.res));
  }
}

const NO_FINE: FineSpec = { fineSize: 0, fineSeed: new Uint8Array(8) };

/** assemble joins the parts of a signature computed chunk by chunk, in file order. */
function assemble(sha: Buffer, blockSize: number, parts: { weaks: Uint8Array; strongs: Uint8Array; fine: Uint8Array }[],
  fine: FineSpec | null): Signature {
  const n = parts.reduce((t, p) => t + p.weaks.length / 4, 0);
  const weaks = new Uint32Array(n);
  const strongs = Buffer.allocUnsafe(n * STRONG_LEN);
  const sums = Buffer.allocUnsafe(parts.reduce((t, p) => t + p.fine.length, 0));
  let at = 0;
  let fat = 0;
  for (const p of parts) {
    new Uint8Array(weaks.buffer, at * 4, p.weaks.length).set(p.weaks);
    strongs.set(p.strongs, at * STRONG_LEN);
    sums.set(p.fine, fat);
    at += p.weaks.length / 4;
    fat += p.fine.length;
  }
  const sig: Signature = { sha, blockSize, weaks, strongs };
  if (fine && fine.fineSize > 0) sig.fine = { size: fine.fineSize, seed: Buffer.from(fine.fineSeed), sums };
  return sig;
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
  /** Fine sums of the new signature that delta() computes (inlineSig only). */
  readonly #fine: FineSpec | null;
  readonly #sigParts: Buffer[] = [];

  constructor(run: FileSink, fd: number, size: number, sparse: boolean, signer: Signer | null, inlineSig: boolean,
    fine: FineSpec | null = null) {
    this.#run = run;
    this.#fd = fd;
    this.#size = size;
    this.#sparse = sparse;
    this.signer = signer;
    this.inlineSig = inlineSig;
    this.#fine = fine;
  }

  /** inlineSignature assembles the signature that delta() collected (inlineSig only). */
  inlineSignature(sha: Buffer, blockSize: number): Signature {
    const parts = this.#sigParts.map((res) => {
      const r = new Uint32Array(res.buffer, res.byteOffset, res.byteLength / 4);
      const at = (3 + 3 * r[0]) * 4;
      const n = r[2];
      return {
        weaks: res.subarray(at, at + n * 4),
        strongs: res.subarray(at + n * 4, at + n * (4 + STRONG_LEN)),
        fine: res.subarray(at + n * (4 + STRONG_LEN)),
      };
    });
    return assemble(sha, blockSize, parts, this.#fine);
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
    const gap = new GapFill(sig, oldSize, (b) => out.write(b), (d, p) => this.#literal(d, p));
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
        fineSize: signEnd > 0 && this.#fine ? this.#fine.fineSize : 0, fineSeed: this.#fine?.fineSeed ?? NO_FINE.fineSeed,
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
        if (off > pos) { flushRun(); gap.add(data.subarray(pos - base, off - base), pos); }
        gap.close(block * bs);
        const cur = run as { block: number; count: number } | null;
        if (cur && cur.block + cur.count === block) cur.count++;
        else { flushRun(); run = { block, count: 1 }; }
        pos = off + r[5 + 3 * i];
        gap.copied(block * bs + r[5 + 3 * i]);
      }
      const decided = w.final ? w.s + w.data.length : w.s + window;
      if (decided > pos) { flushRun(); gap.add(data.subarray(pos - base, decided - base), pos); pos = decided; }
      if (out.hasReady) yield* out.take();
    }
    flushRun();
    gap.close(oldSize);
    if (out.hasReady) yield* out.take();
  }
}

/** GAP_KEEP / GAP_SPILL: a gap's bytes held for the backward fill, and the most held before spilling. */
const GAP_KEEP = 256 << 10;
const GAP_SPILL = 1 << 20;
/** FINE_BATCH: sub-blocks summed per kernel call while filling. */
const FINE_BATCH = 64;
let mainKernel: Kernel | undefined;

/** kernel is this thread's WASM instance for the gap fill's fine sums, made on first use. */
function kernel(): Kernel {
  mainKernel ??= Kernel.create();
  return mainKernel;
}

/**
 * GapFill writes the literal runs of a delta (the new bytes between two block copies), copying the
 * parts of them that the old file has at the matching place, found with the basis's fine sums
 * (format.ts fineSizeFor). A run left by a change inside a block is bounded by copies: the copy before
 * it ended at old offset `a` (new offset A), the one after it starts at old offset `b` (new offset B).
 * Forward fill: while the sub-blocks of the old file from `a` equal the new bytes from A (same fine
 * sum), they become one range copy. Backward fill: the same from `b` and B, going back. The bytes left
 * between are literals. An overwrite in place then costs what changed plus at most a sub-block at each
 * end; an insertion costs the inserted bytes plus as much.
 *
 * Bytes are held until the run is closed, at most GAP_SPILL: past that the forward fill is done on what
 * is held, and all but the last GAP_KEEP bytes are written as literals (a long run is a rewrite or an
 * insertion; its backward fill needs only its end). Without fine sums, bytes go straight to literals.
 */
class GapFill {
  readonly #fine: FineSums | undefined;
  readonly #bs: number;
  readonly #oldSize: number;
  readonly #per: number;
  readonly #write: (b: Buffer) => void;
  readonly #literal: (data: Buffer, pos: number) => void;
  readonly #keep: number;
  /** Held bytes, contiguous, the first at new offset #start (-1: no run open). */
  #chunks: Buffer[] = [];
  #len = 0;
  #start = -1;
  /** Old offset matching #start for the forward fill; -1 when it was done. */
  #oldStart = -1;
  /** Old offset just after the last copy (where the next run's forward fill starts). */
  #oldPos = 0;

  constructor(sig: Signature, oldSize: number, write: (b: Buffer) => void, literal: (data: Buffer, pos: number) => void) {
    this.#fine = sig.fine;
    this.#bs = sig.blockSize;
    this.#oldSize = oldSize;
    this.#per = sig.fine ? Math.ceil(sig.blockSize / sig.fine.size) : 0;
    this.#write = write;
    this.#literal = literal;
    this.#keep = Math.max(GAP_KEEP, 2 * sig.blockSize);
  }

  /** copied: the last op copied the old file up to `oldEnd`. */
  copied(oldEnd: number): void {
    this.#oldPos = oldEnd;
  }

  /** add appends new bytes at new offset pos to the open run (opening one). */
  add(data: Buffer, pos: number): void {
    if (data.length === 0) return;
    if (!this.#fine) { this.#literal(data, pos); return; }
    if (this.#start < 0) {
      this.#start = pos;
      this.#oldStart = this.#oldPos;
    }
    this.#chunks.push(data);
    this.#len += data.length;
    if (this.#len > this.#keep + GAP_SPILL) {
      this.#forward();
      this.#emit(this.#len - this.#keep);
    }
  }

  /** close ends the open run: its end matches old offset `oldEnd` (the next copy's start, or the old end). */
  close(oldEnd: number): void {
    if (this.#start < 0) return;
    const a = this.#oldStart;
    if (a >= 0 && oldEnd - a === this.#len) {
      // as long as the old bytes it replaces: changed in place (overwrites), so every sub-block is
      // compared where it stood (which covers what the forward and backward fills would find)
      this.#oldStart = -1;
      this.#middle(a, this.#len);
    } else {
      this.#forward();
      const back = this.#backward(oldEnd);
      this.#emit(this.#len - back);
      if (back > 0) this.#write(rangeOp(oldEnd - back, back));
    }
    this.#chunks = [];
    this.#len = 0;
    this.#start = -1;
  }

  /** emit writes the first n held bytes as literals. */
  #emit(n: number): void {
    while (n > 0) {
      const c = this.#chunks[0];
      const k = Math.min(n, c.length);
      this.#literal(c.subarray(0, k), this.#start);
      this.#drop(k);
      n -= k;
    }
  }

  /** drop forgets the first n held bytes. */
  #drop(n: number): void {
    this.#start += n;
    this.#len -= n;
    while (n > 0) {
      const c = this.#chunks[0];
      if (c.length <= n) { this.#chunks.shift(); n -= c.length; } else { this.#chunks[0] = c.subarray(n); n = 0; }
    }
  }

  /** bytes returns held bytes [from, to) (offsets into the held run). */
  #bytes(from: number, to: number): Buffer {
    let at = 0;
    const parts: Buffer[] = [];
    for (const c of this.#chunks) {
      const a = Math.max(from, at);
      const b = Math.min(to, at + c.length);
      if (a < b) parts.push(c.subarray(a - at, b - at));
      at += c.length;
      if (at >= to) break;
    }
    return parts.length === 1 ? parts[0] : Buffer.concat(parts);
  }

  /** sub returns the end of the old sub-block starting at grid point o. */
  #subEnd(o: number): number {
    const blockEnd = (Math.floor(o / this.#bs) + 1) * this.#bs;
    return Math.min(blockEnd, o + this.#fine!.size, this.#oldSize);
  }

  /** prev returns the start of the old sub-block ending at grid point o > 0. */
  #subStart(o: number): number {
    const i = Math.floor((o - 1) / this.#bs);
    return i * this.#bs + Math.floor((o - 1 - i * this.#bs) / this.#fine!.size) * this.#fine!.size;
  }

  /** index of the fine sum of the sub-block starting at grid point o. */
  #index(o: number): number {
    return Math.floor(o / this.#bs) * this.#per + (o % this.#bs) / this.#fine!.size;
  }

  #same(sums: Uint8Array, k: number, o: number): boolean {
    const want = this.#fine!.sums;
    const w = this.#index(o) * FINE_LEN;
    for (let i = 0; i < FINE_LEN; i++) if (sums[k * FINE_LEN + i] !== want[w + i]) return false;
    return true;
  }

  /** forward does the forward fill of the open run once: a range copy of the matching head. */
  #forward(): void {
    if (this.#oldStart < 0) return;
    const a = this.#oldStart;
    this.#oldStart = -1;
    const f = this.#fine!;
    let o = a;
    let matched = 0;
    for (;;) {
      const starts: number[] = [];
      let e = o;
      while (starts.length < FINE_BATCH && e < this.#oldSize) {
        const next = this.#subEnd(e);
        if (next - a > this.#len) break;
        starts.push(e);
        e = next;
      }
      if (starts.length === 0) break;
      const sums = kernel().fineSums(this.#bytes(o - a, e - a), this.#bs, f.size, f.seed, o % this.#bs);
      let k = 0;
      while (k < starts.length && this.#same(sums, k, starts[k])) k++;
      matched = (k < starts.length ? starts[k] : e) - a;
      if (k < starts.length) break;
      o = e;
    }
    if (matched === 0) return;
    this.#write(rangeOp(a, matched));
    this.#drop(matched);
  }

  /**
   * middle writes the first n held bytes, which stand where old bytes [o, o + n) stood (o and o + n on
   * the grid: a copy's end or start, or the old file's), as range copies of the sub-blocks that equal the old ones and literals of the others.
   */
  #middle(o: number, n: number): void {
    const f = this.#fine!;
    const end = o + n;
    let lit = 0; // held bytes decided as literal, not yet written
    let copy = 0; // held bytes decided as a copy, not yet written (never both)
    let at = o; // old offset of held byte 0 after what was written
    const put = (literal: boolean, len: number) => {
      if (literal) {
        if (copy > 0) { this.#write(rangeOp(at, copy)); this.#drop(copy); at += copy; copy = 0; }
        lit += len;
      } else {
        if (lit > 0) { this.#emit(lit); at += lit; lit = 0; }
        copy += len;
      }
    };
    for (let s = o; s < end;) {
      const starts: number[] = [];
      let e = s;
      while (starts.length < FINE_BATCH && e < end) { starts.push(e); e = this.#subEnd(e); }
      const sums = kernel().fineSums(this.#bytes(s - at, e - at), this.#bs, f.size, f.seed, s % this.#bs);
      for (let k = 0; k < starts.length; k++) {
        put(!this.#same(sums, k, starts[k]), (k + 1 < starts.length ? starts[k + 1] : e) - starts[k]);
      }
      s = e;
    }
    if (lit > 0) this.#emit(lit);
    if (copy > 0) { this.#write(rangeOp(at, copy)); this.#drop(copy); }
  }

  /** backward returns how many held bytes at the end of the run equal the old bytes ending at b. */
  #backward(b: number): number {
    const f = this.#fine!;
    let e = b;
    for (;;) {
      const starts: number[] = [];
      let s = e;
      while (starts.length < FINE_BATCH && s > 0) {
        const prev = this.#subStart(s);
        if (b - prev > this.#len) break;
        starts.push(prev);
        s = prev;
      }
      if (starts.length === 0) return b - e;
      starts.reverse();
      const sums = kernel().fineSums(this.#bytes(this.#len - (b - s), this.#len - (b - e)), this.#bs, f.size, f.seed, s % this.#bs);
      let k = starts.length - 1;
      while (k >= 0 && this.#same(sums, k, starts[k])) k--;
      if (k >= 0) return b - (k + 1 < starts.length ? starts[k + 1] : e);
      e = s;
    }
  }
}
