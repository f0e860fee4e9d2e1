/**
 * The tar archive writer: the byte stream of Freezer's tar engine, written in TypeScript.
 *
 * Freezer runs, in the directory to back up (or the parent of a single file):
 *   tar --create --listed-incremental=<engine_meta> --one-file-system --preserve-permissions --same-owner
 *       --no-check-device --ignore-failed-read [--dereference|--hard-dereference] [--exclude=P] .
 * createTarBackup produces the same stream, which `tar --incremental --extract` (Freezer's restore) and
 * floe's extractor restore level after level, and the same snapshot file, which real tar accepts as the
 * next level's `--listed-incremental` and the other way round.
 *
 * Member order, as tar 1.34 with --listed-incremental (checked with hexdumps of real archives):
 *   1. every directory, depth first, names in strcmp order, each as a GNU dumpdir member ('D', name
 *      './sub/') whose data lists its entries: `Y` dumped here, `N` not dumped (unchanged, excluded,
 *      vanished), `D` subdirectory; this is how restore learns about deletions and renames;
 *   2. then, directory by directory in the same order, the `Y` entries of each.
 * All headers are old GNU ("ustar  \0") with atime and ctime set, as tar writes them in incremental mode.
 * The stream ends with two zero blocks and is padded to tar's 10240-byte record.
 *
 * Memory: the snapshot (every directory and its dumpdir) grows with the tree, like tar's; everything else
 * is bounded: one directory listing per depth, PREFETCH_DEPTH small files read ahead, output chunks of
 * `chunkSize` bytes which are handed over and never written again.
 */
import { close, fstat, open, read, constants as fsc, promises as fsp, type BigIntStats } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { errnoMessage, SourceError } from '../../errors.js';
import { noProgress, type Progress } from '../../progress.js';
import { compileExcludes, type Excluder } from '../../source/exclude.js';
import { nameOfGid, nameOfUid } from '../../source/owners.js';
import {
  isVanished, listDirectory, mapBounded, prefetchOrdered, STAT_CONCURRENCY, statRoot, walk,
} from '../../source/walker.js';
import { BLOCK, encodeHeader, END_OF_ARCHIVE, padding, type SparseChunk, type TarHeader } from './header.js';
import {
  buildDumpdir, readDumpdir, parseSnapshot, PreviousState, serializeSnapshot,
  type Children, type DumpdirRecord, type SnapshotDirectory,
} from './snapshot.js';

export interface TarBackupOptions {
  /** Absolute path to back up: a directory, or a single file. */
  root: string;
  /** GNU tar --exclude patterns (several allowed, unlike Freezer). */
  exclude: string[];
  /** Freezer's --dereference-symlink: soft = --dereference, hard = --hard-dereference, all = both. */
  dereference: 'none' | 'soft' | 'hard' | 'all';
  /** The parent level's engine_metadata: a GNU tar snapshot file (formats 0-2), clear bytes. */
  previous?: Buffer;
  progress?: Progress;
  signal?: AbortSignal;
  /** Size of the buffers the stream yields (the last one may be shorter). Default 1 MiB. */
  chunkSize?: number;
  /** Clock, ns since the epoch. Default: the wall clock, with process.hrtime resolution. */
  now?: () => bigint;
  /** Compare device numbers of known directories (tar's default). Freezer passes --no-check-device: false. */
  checkDevice?: boolean;
}

export interface TarBackup {
  /** The uncompressed tar stream. It can be iterated once. */
  stream: AsyncIterable<Buffer>;
  /** The new snapshot file; valid once the stream is fully consumed, else throws. */
  snapshot(): Buffer;
  stats(): { files: number; dirs: number; bytes: number; warnings: number };
}

/** DEFAULT_CHUNK: 1 MiB output buffers: large enough to amortize per-buffer costs downstream. */
const DEFAULT_CHUNK = 1 << 20;
/** RECORD: GNU tar's default record (20 blocks); archives are padded to a multiple of it. */
const RECORD = 20 * BLOCK;
/** READ_SIZE: largest single read from a file (1 MiB): few syscalls, and fits one output chunk. */
const READ_SIZE = 1 << 20;
/** SMALL_FILE: files up to this size are read whole, ahead of time, by the prefetcher. */
const SMALL_FILE = 256 << 10;
/** PREFETCH_DEPTH: files stat'ed/read ahead of the writer; with SMALL_FILE bounds read-ahead to 4 MiB. */
const PREFETCH_DEPTH = 16;
const BILLION = 1_000_000_000n;

// ------------------------------------------------------------------------------------------ public API

/** createTarBackup prepares a backup; nothing is read until `stream` is iterated. Throws TypeError/RangeError
 * on bad options. Filesystem problems surface from the stream: SourceError for the root, warnings otherwise. */
export function createTarBackup(opts: TarBackupOptions): TarBackup {
  validate(opts);
  const run = new BackupRun(opts);
  let started = false;
  return {
    stream: {
      [Symbol.asyncIterator]() {
        if (started) throw new Error('the tar stream can be iterated only once');
        started = true;
        return run.run();
      },
    },
    snapshot: () => {
      if (!run.snapshotFile) throw new Error('snapshot() is valid once the tar stream is fully consumed');
      return run.snapshotFile;
    },
    stats: () => ({ ...run.counts }),
  };
}

/** estimateTree walks like the backup would (same excludes, one file system) and returns totals, for the ETA. */
export async function estimateTree(root: string, exclude: string[], signal?: AbortSignal): Promise<{ bytes: number; files: number }> {
  let bytes = 0;
  let files = 0;
  const excluded = compileExcludes(exclude);
  const single = !(await statRoot(root)).isDirectory();
  const matcher: Excluder = single ? (rel) => rel === '' && excluded(basename(root)) : excluded;
  for await (const e of walk(root, { exclude: matcher, oneFileSystem: true, signal })) {
    if (e.stats.isDirectory()) continue;
    files++;
    if (e.stats.isFile()) bytes += Number(e.stats.size);
  }
  return { bytes, files };
}

function validate(opts: TarBackupOptions): void {
  if (typeof opts?.root !== 'string' || !opts.root.startsWith('/')) throw new TypeError('options.root must be an absolute path');
  if (!Array.isArray(opts.exclude) || opts.exclude.some((p) => typeof p !== 'string')) {
    throw new TypeError('options.exclude must be an array of strings');
  }
  if (!['none', 'soft', 'hard', 'all'].includes(opts.dereference)) {
    throw new TypeError("options.dereference must be 'none', 'soft', 'hard' or 'all'");
  }
  if (opts.previous !== undefined && !Buffer.isBuffer(opts.previous)) throw new TypeError('options.previous must be a Buffer');
  const cs = opts.chunkSize;
  if (cs !== undefined && (!Number.isInteger(cs) || cs < BLOCK)) throw new RangeError('options.chunkSize must be an integer >= 512');
}

/** wallClock returns a clock reading ns since the epoch: Date.now's origin, process.hrtime's resolution. */
function wallClock(): () => bigint {
  const base = BigInt(Date.now()) * 1_000_000n - process.hrtime.bigint();
  return () => base + process.hrtime.bigint();
}

// -------------------------------------------------------------------------------------------- output

/**
 * ChunkWriter packs the archive into `size`-byte buffers. Full buffers wait in `ready` until taken; a
 * buffer is never written after it has been taken. File data is read straight into the current buffer
 * (window/commit), so the data path copies nothing.
 */
class ChunkWriter {
  total = 0;
  #buf: Buffer;
  #pos = 0;
  #ready: Buffer[] = [];
  constructor(private readonly size: number) {
    this.#buf = Buffer.allocUnsafe(size);
  }
  write(data: Buffer): void {
    for (let off = 0; off < data.length;) {
      const n = Math.min(data.length - off, this.size - this.#pos);
      data.copy(this.#buf, this.#pos, off, off + n);
      off += n;
      this.commit(n);
    }
  }
  zeros(count: number): void {
    while (count > 0) {
      const n = Math.min(count, this.size - this.#pos);
      this.#buf.fill(0, this.#pos, this.#pos + n);
      count -= n;
      this.commit(n);
    }
  }
  /** window returns the free part of the current buffer (never empty), to read into; then call commit. */
  window(max: number): { buf: Buffer; offset: number; length: number } {
    return { buf: this.#buf, offset: this.#pos, length: Math.min(max, this.size - this.#pos) };
  }
  commit(n: number): void {
    this.#pos += n;
    this.total += n;
    if (this.#pos === this.size) {
      this.#ready.push(this.#buf);
      this.#buf = Buffer.allocUnsafe(this.size);
      this.#pos = 0;
    }
  }
  get hasReady(): boolean {
    return this.#ready.length > 0;
  }
  take(): Buffer[] {
    const r = this.#ready;
    this.#ready = [];
    return r;
  }
  /** rest returns the partly filled last buffer (call once, at the end). */
  rest(): Buffer | null {
    return this.#pos > 0 ? this.#buf.subarray(0, this.#pos) : null;
  }
}

// --------------------------------------------------------------------------------------- fs helpers

const openFd = (path: string, flags: number) =>
  new Promise<number>((res, rej) => open(path, flags, (err, fd) => (err ? rej(err) : res(fd))));
const readFd = (fd: number, buf: Buffer, offset: number, length: number, position: number) =>
  new Promise<number>((res, rej) => read(fd, buf, offset, length, position, (err, n) => (err ? rej(err) : res(n))));
const closeFd = (fd: number) => new Promise<void>((res) => close(fd, () => res()));

/** secondsOf converts ns since the epoch to whole seconds, rounding down (also before 1970). */
function secondsOf(ns: bigint): number {
  const s = ns / BILLION;
  return Number(ns < 0n && s * BILLION !== ns ? s - 1n : s);
}

/** Linux dev_t encoding (glibc gnu_dev_major/minor). */
function devMajor(rdev: bigint): number {
  return Number(((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn));
}
function devMinor(rdev: bigint): number {
  return Number((rdev & 0xffn) | ((rdev >> 12n) & ~0xffn));
}

/** ZEROS: one read's worth of zero bytes, compared against with memcmp (Buffer.compare). */
const ZEROS = Buffer.alloc(READ_SIZE);
/** isZero: `len` (at most READ_SIZE) zero bytes at `off`. Probes two bytes first: data rarely passes. */
function isZero(buf: Buffer, off: number, len: number): boolean {
  if (buf[off] !== 0 || buf[off + len - 1] !== 0) return false;
  return buf.compare(ZEROS, 0, len, off, off + len) === 0;
}

/**
 * SparseScanner builds the data map of a file from its bytes, as tar's raw hole detection does: each
 * all-zero 512-byte block is a hole, runs of other blocks are data chunks, and the map ends with the last
 * data chunk or, when the file ends in a hole, a (size, 0) entry.
 */
class SparseScanner {
  readonly map: SparseChunk[] = [];
  #cur: SparseChunk | null = null;
  /** feed scans `len` bytes of `buf` found at file offset `pos` (pos a multiple of 512). */
  feed(buf: Buffer, len: number, pos: number): void {
    if (len <= READ_SIZE && isZero(buf, 0, len)) { // a read inside a hole: one memcmp, not 2048
      if (this.#cur) this.map.push(this.#cur);
      this.#cur = null;
      return;
    }
    for (let off = 0; off < len; off += BLOCK) {
      const n = Math.min(BLOCK, len - off);
      if (isZero(buf, off, n)) {
        if (this.#cur) this.map.push(this.#cur);
        this.#cur = null;
      } else if (this.#cur) {
        this.#cur.size += n;
      } else {
        this.#cur = { offset: pos + off, size: n };
      }
    }
  }
  finish(realSize: number): SparseChunk[] {
    this.map.push(this.#cur ?? { offset: realSize, size: 0 });
    this.#cur = null;
    return this.map;
  }
}

// ------------------------------------------------------------------------------------------ the run

/** DirFrame: one directory on the walk stack, with its subdirectories still to visit (reversed). */
interface DirFrame {
  rel: string;
  dev: bigint;
  key: string;
  children: Children;
  subdirs: string[];
}

/** FileJob: a Y entry to dump in phase 2. */
interface FileJob {
  rel: string;
  dirDev: bigint | null;
}

/** Prepared: a FileJob after its stat (and, for small regular files, its read) was done ahead of time. */
interface Prepared extends FileJob {
  st?: BigIntStats;
  error?: unknown;
  /** Whole content of a small regular file (read up to size + 1 bytes to notice growth). */
  data?: Buffer;
  readBytes?: number;
  link?: string;
}

class BackupRun {
  readonly counts = { files: 0, dirs: 0, bytes: 0, warnings: 0 };
  snapshotFile: Buffer | null = null;
  readonly #opts: TarBackupOptions;
  readonly #progress: Progress;
  readonly #exclude: Excluder;
  readonly #follow: boolean;
  readonly #hardDeref: boolean;
  readonly #out: ChunkWriter;
  readonly #dirs: SnapshotDirectory[] = [];
  /** Directories whose Y entries phase 2 dumps, in member order. */
  readonly #order: { rel: string; dev: bigint; dumpdir: Buffer }[] = [];
  readonly #links = new Map<string, { name: string; left: bigint }>();
  readonly #ancestors = new Set<string>();
  #prev!: PreviousState;
  #base = '';
  #single = false;
  #scratch: Buffer | null = null;

  constructor(opts: TarBackupOptions) {
    this.#opts = opts;
    this.#progress = opts.progress ?? noProgress;
    this.#exclude = compileExcludes(opts.exclude);
    this.#follow = opts.dereference === 'soft' || opts.dereference === 'all';
    this.#hardDeref = opts.dereference === 'hard' || opts.dereference === 'all';
    this.#out = new ChunkWriter(opts.chunkSize ?? DEFAULT_CHUNK);
  }

  async *run(): AsyncGenerator<Buffer> {
    const startNs = (this.#opts.now ?? wallClock())();
    this.#prev = new PreviousState(this.#opts.previous ? parseSnapshot(this.#opts.previous) : null, this.#opts.checkDevice);
    const rootStats = await statRoot(this.#opts.root);
    this.#single = !rootStats.isDirectory();
    if (this.#single) {
      this.#base = dirname(this.#opts.root);
      yield* this.#singleFile();
    } else {
      this.#base = this.#opts.root;
      if (!this.#exclude('')) {
        yield* this.#scanTree(rootStats);
        yield* this.#dumpFiles(this.#allJobs());
      }
    }
    this.#out.write(END_OF_ARCHIVE);
    this.#out.zeros((RECORD - (this.#out.total % RECORD)) % RECORD);
    yield* this.#out.take();
    const last = this.#out.rest();
    if (last) yield last;
    // The snapshot time is the start minus one second. File timestamps come from the kernel's coarse clock
    // (a tick behind the wall clock), some filesystems keep whole or even 2-second timestamps, and NFS
    // stamps files with the server's clock: a file changed just after the start could carry a time just
    // before it and be missed by the next level. Re-dumping a file is harmless; missing a change is not.
    const timeNs = startNs - BILLION;
    this.snapshotFile = serializeSnapshot({ version: 2, timeNs, directories: this.#dirs });
  }

  #warn(message: string): void {
    this.counts.warnings++;
    this.#progress.onWarning?.(message);
  }

  #checkAbort(): void {
    this.#opts.signal?.throwIfAborted();
  }

  #abs(rel: string): string {
    return rel === '' ? this.#base : join(this.#base, rel);
  }

  #memberName(rel: string): string {
    return this.#single ? rel : `./${rel}`;
  }

  #stat(path: string): Promise<BigIntStats> {
    return this.#follow ? fsp.stat(path, { bigint: true }) : fsp.lstat(path, { bigint: true });
  }

  // ------------------------------------------------------------------------------------ single file

  async *#singleFile(): AsyncGenerator<Buffer> {
    const rel = basename(this.#opts.root);
    if (this.#exclude(rel)) return;
    const p = await this.#prepare({ rel, dirDev: null });
    if (p.error && !isVanished(p.error)) {
      throw new SourceError(`cannot back up ${this.#opts.root}: ${errnoMessage(p.error)}`, { cause: p.error });
    }
    // A file named on tar's command line is dumped at level N only if it changed since level N-1.
    if (p.st && !this.#prev.changed(p.st.mtimeNs, p.st.ctimeNs)) return;
    yield* this.#dumpOne(p);
    yield* this.#out.take();
  }

  // ------------------------------------------------------------------------- phase 1: directories

  /** scanTree visits every directory depth first and writes its dumpdir member. */
  async *#scanTree(rootStats: BigIntStats): AsyncGenerator<Buffer> {
    const root = await this.#visitDir('', rootStats, null);
    if (!root) return;
    const stack: DirFrame[] = [root];
    while (stack.length > 0) {
      this.#checkAbort();
      const top = stack[stack.length - 1];
      const name = top.subdirs.pop();
      if (name === undefined) {
        this.#ancestors.delete(top.key);
        stack.pop();
        continue;
      }
      const rel = top.rel === '' ? name : `${top.rel}/${name}`;
      let st: BigIntStats;
      try {
        st = await this.#stat(this.#abs(rel));
      } catch (err) {
        this.#warn(`./${rel}: ${isVanished(err) ? 'directory removed before we read it' : `cannot stat: ${errnoMessage(err)}`}`);
        continue;
      }
      if (!st.isDirectory()) {
        this.#warn(`./${rel}: changed from a directory to another file type while read; not dumped`);
        continue;
      }
      const frame = await this.#visitDir(rel, st, top);
      if (frame) stack.push(frame);
      if (this.#out.hasReady) yield* this.#out.take();
    }
  }

  /** visitDir lists one directory, decides each entry (Y/N/D), records it and writes its 'D' member. */
  async #visitDir(rel: string, st: BigIntStats, parent: DirFrame | null): Promise<DirFrame | null> {
    const name = rel === '' ? '.' : `./${rel}`;
    const key = `${st.dev}:${st.ino}`;
    if (this.#follow && this.#ancestors.has(key)) {
      this.#warn(`${name}: directory loop (symbolic link to an ancestor); not dumped`);
      return null;
    }
    let children: Children;
    let previous: Set<string> | null = null;
    if (parent && st.dev !== parent.dev) {
      this.#warn(`${name}: directory is on a different filesystem; not dumped`);
      children = 'none';
    } else {
      ({ children, previous } = this.#prev.classify(name, st.dev, st.ino, parent?.children ?? null));
    }
    let entries: DumpdirRecord[] = [];
    if (children !== 'none') {
      let listing;
      try {
        listing = await listDirectory(this.#abs(rel));
      } catch (err) {
        if (rel === '') throw new SourceError(`cannot back up ${this.#opts.root}: ${errnoMessage(err)}`, { cause: err });
        this.#warn(`${name}: cannot open directory: ${errnoMessage(err)}; not dumped`);
        // Keep what the previous level knew, so the next level neither loses nor re-dumps it.
        const old = this.#prev.directory(name);
        if (old) this.#dirs.push(old);
        return null;
      }
      entries = await this.#classify(rel, listing.map((d) => ({ name: d.name, dir: d.isDirectory(), link: d.isSymbolicLink() })),
        children, previous, st.dev);
    }
    const dumpdir = buildDumpdir(entries);
    this.#dirs.push({ nfs: false, mtimeNs: st.mtimeNs, dev: st.dev, ino: st.ino, name, dumpdir });
    if (children !== 'none') this.#order.push({ rel, dev: st.dev, dumpdir });
    this.#writeHeader(this.#baseHeader(rel === '' ? './' : `./${rel}/`, st, 'D', dumpdir.length + 1));
    this.#out.write(dumpdir);
    this.#out.zeros(1 + padding(dumpdir.length + 1));
    this.counts.dirs++;
    this.#ancestors.add(key);
    const subdirs = entries.filter((e) => e.kind === 'D').map((e) => e.name).reverse();
    return { rel, dev: st.dev, key, children, subdirs };
  }

  /**
   * classify gives each directory entry its dumpdir letter, as tar's scan_directory: excluded -> N, a
   * directory -> D, new (or everything in a new directory) -> Y, else Y when its mtime or ctime is at or
   * after the previous snapshot time. Entries are stat'ed only when needed, STAT_CONCURRENCY at a time.
   */
  async #classify(rel: string, listing: { name: string; dir: boolean; link: boolean }[], children: Children,
    previous: Set<string> | null, dev: bigint): Promise<DumpdirRecord[]> {
    const entries: DumpdirRecord[] = listing.map((d) => ({ kind: '', name: d.name }));
    const isNew = (n: string) => children === 'all' || !previous || !previous.has(n);
    const toStat: number[] = [];
    listing.forEach((d, i) => {
      const childRel = rel === '' ? d.name : `${rel}/${d.name}`;
      if (this.#exclude(childRel)) entries[i].kind = 'N';
      else if (d.dir) entries[i].kind = 'D';
      else if ((this.#follow && d.link) || !isNew(d.name)) toStat.push(i);
      else entries[i].kind = 'Y';
    });
    await mapBounded(toStat, STAT_CONCURRENCY, async (i) => {
      const e = entries[i];
      const path = this.#abs(rel === '' ? e.name : `${rel}/${e.name}`);
      let st: BigIntStats;
      try {
        st = await this.#stat(path);
      } catch (err) {
        this.#warn(`${this.#memberName(rel === '' ? e.name : `${rel}/${e.name}`)}: ${isVanished(err) ? 'file removed before we read it' : `cannot stat: ${errnoMessage(err)}`}`);
        e.kind = 'N';
        return;
      }
      if (st.isDirectory()) e.kind = 'D';
      else if (st.dev !== dev) e.kind = 'N'; // --one-file-system: a file mounted from another device
      else if (isNew(e.name) || this.#prev.changed(st.mtimeNs, st.ctimeNs)) e.kind = 'Y';
      else e.kind = 'N';
    });
    return entries;
  }

  // ------------------------------------------------------------------------------ phase 2: files

  /** allJobs lists the Y entries of every directory, in member order, reading one dumpdir at a time. */
  *#allJobs(): Generator<FileJob> {
    for (const d of this.#order) {
      for (const e of readDumpdir(d.dumpdir)) {
        if (e.kind === 'Y') yield { rel: d.rel === '' ? e.name : `${d.rel}/${e.name}`, dirDev: d.dev };
      }
    }
  }

  /** dumpFiles writes the members of `jobs`, stat'ing and reading small files PREFETCH_DEPTH ahead. */
  async *#dumpFiles(jobs: Iterable<FileJob>): AsyncGenerator<Buffer> {
    for await (const p of prefetchOrdered(jobs, PREFETCH_DEPTH, (j) => this.#prepare(j))) {
      this.#checkAbort();
      yield* this.#dumpOne(p);
      if (this.#out.hasReady) yield* this.#out.take();
    }
  }

  /** prepare stats a job and reads small regular files whole. It never throws: errors are kept for dumpOne. */
  async #prepare(job: FileJob): Promise<Prepared> {
    const p: Prepared = { ...job };
    const path = this.#abs(job.rel);
    try {
      p.st = await this.#stat(path);
      if (p.st.isSymbolicLink()) {
        p.link = await fsp.readlink(path);
      } else if (p.st.isFile() && p.st.size > 0n && p.st.size <= BigInt(SMALL_FILE)) {
        const size = Number(p.st.size);
        const fd = await openFd(path, fsc.O_RDONLY | (this.#follow ? 0 : fsc.O_NOFOLLOW));
        try {
          p.data = Buffer.allocUnsafe(size + 1);
          let got = 0;
          for (;;) {
            const n = await readFd(fd, p.data, got, size + 1 - got, got);
            if (n === 0) break;
            got += n;
            if (got === size + 1) break;
          }
          p.readBytes = got;
        } finally {
          await closeFd(fd);
        }
      }
    } catch (err) {
      p.error = err;
      p.data = undefined;
    }
    return p;
  }

  /** dumpOne writes one non-directory member. */
  async *#dumpOne(p: Prepared): AsyncGenerator<Buffer> {
    const name = this.#memberName(p.rel);
    if (p.error || !p.st) {
      const e = p.error;
      this.#warn(`${name}: ${isVanished(e) ? 'file removed before we read it' : `cannot read: ${errnoMessage(e)}`}`);
      return;
    }
    const st = p.st;
    if (p.dirDev !== null && st.dev !== p.dirDev) return; // --one-file-system, found in a new directory
    if (st.isFile()) {
      yield* this.#dumpRegular(name, p);
    } else if (st.isSymbolicLink()) {
      this.#member(this.#baseHeader(name, st, '2', 0, p.link ?? ''));
    } else if (st.isFIFO()) {
      this.#member(this.#baseHeader(name, st, '6', 0));
    } else if (st.isCharacterDevice() || st.isBlockDevice()) {
      const h = this.#baseHeader(name, st, st.isCharacterDevice() ? '3' : '4', 0);
      h.devmajor = devMajor(st.rdev);
      h.devminor = devMinor(st.rdev);
      this.#member(h);
    } else if (st.isSocket()) {
      this.#warn(`${name}: socket ignored`);
    } else {
      this.#warn(`${name}: changed file type while read; not dumped`);
    }
  }

  #member(h: TarHeader): void {
    this.#progress.onFile?.(h.name, 0);
    this.#writeHeader(h);
    this.counts.files++;
  }

  async *#dumpRegular(name: string, p: Prepared): AsyncGenerator<Buffer> {
    const st = p.st!;
    const key = `${st.dev}:${st.ino}`;
    if (!this.#hardDeref && st.nlink > 1n) {
      const first = this.#links.get(key);
      if (first) {
        // Later names of an inode seen in this archive become hard links to the first one.
        if (--first.left <= 0n) this.#links.delete(key); // all names seen: forget it, as tar does
        this.#member(this.#baseHeader(name, st, '1', 0, first.name));
        return;
      }
      this.#links.set(key, { name, left: st.nlink - 1n });
    }
    const size = Number(st.size);
    if (size === 0) {
      this.#writeSmall(name, st, Buffer.alloc(0), 0);
      return;
    }
    const sparse = size > 0 && st.blocks * 512n < st.size;
    if (p.data) {
      const data = p.data.subarray(0, Math.min(p.readBytes ?? 0, size));
      if (sparse) {
        const scanner = new SparseScanner();
        scanner.feed(data, data.length, 0);
        const map = scanner.finish(size);
        if (map.length > 1 || map[0].size < size) {
          this.#writeSparse(name, st, map, data);
          return;
        }
      }
      this.#writeSmall(name, st, data, p.readBytes ?? 0);
      return;
    }
    if (!(yield* this.#streamRegular(name, st, size, sparse))) this.#links.delete(key);
  }

  /** writeSmall writes a prefetched file; `read` is size + 1 when the file grew, less when it shrank. */
  #writeSmall(name: string, st: BigIntStats, data: Buffer, read: number): void {
    const size = Number(st.size);
    this.#progress.onFile?.(name, size);
    this.#writeHeader(this.#baseHeader(name, st, '0', size));
    this.#out.write(data);
    if (data.length < size) this.#warn(`${name}: file shrank by ${size - data.length} bytes; padding with zeros`);
    if (read > size) this.#warn(`${name}: file changed as we read it`);
    this.#out.zeros(size - data.length + padding(size));
    this.#progress.onBytes?.(data.length);
    this.counts.files++;
    this.counts.bytes += size;
  }

  /** writeSparse writes an 'S' member from data already in memory. */
  #writeSparse(name: string, st: BigIntStats, map: SparseChunk[], data: Buffer): void {
    const stored = map.reduce((n, c) => n + c.size, 0);
    this.#progress.onFile?.(name, stored);
    const h = this.#baseHeader(name, st, 'S', stored);
    h.sparse = { realSize: Number(st.size), map };
    this.#writeHeader(h);
    for (const c of map) {
      const avail = Math.max(0, Math.min(c.size, data.length - c.offset));
      this.#out.write(data.subarray(c.offset, c.offset + avail));
      this.#out.zeros(c.size - avail);
    }
    this.#out.zeros(padding(stored));
    this.#progress.onBytes?.(stored);
    this.counts.files++;
    this.counts.bytes += stored;
  }

  /**
   * streamRegular writes a large (or sparse) file, reading it straight into the output chunks. Returns
   * false when the file could not be opened (nothing written).
   */
  async *#streamRegular(name: string, st: BigIntStats, size: number, sparse: boolean): AsyncGenerator<Buffer, boolean> {
    let fd: number;
    try {
      fd = await openFd(this.#abs(this.#relOf(name)), fsc.O_RDONLY | (this.#follow ? 0 : fsc.O_NOFOLLOW));
    } catch (err) {
      this.#warn(`${name}: ${isVanished(err) ? 'file removed before we read it' : `cannot open: ${errnoMessage(err)}`}`);
      return false;
    }
    try {
      let map: SparseChunk[] = [{ offset: 0, size }];
      if (sparse) {
        const scanned = await this.#scanSparse(fd, size);
        if (scanned.length > 1 || scanned[0].size < size) map = scanned;
        else sparse = false;
      }
      const stored = map.reduce((n, c) => n + c.size, 0);
      this.#progress.onFile?.(name, stored);
      const h = this.#baseHeader(name, st, sparse ? 'S' : '0', stored);
      if (sparse) h.sparse = { realSize: size, map };
      this.#writeHeader(h);
      let short = false;
      for (const c of map) {
        for await (const b of this.#copyRange(fd, name, c.offset, c.size)) {
          if (b === null) short = true;
          else yield b;
        }
      }
      this.#out.zeros(padding(stored));
      this.counts.files++;
      this.counts.bytes += stored;
      if (short) this.#warn(`${name}: file shrank while read; padded with zeros`);
      else await this.#checkUnchanged(fd, name, st);
      return true;
    } finally {
      await closeFd(fd);
    }
  }

  /** relOf recovers the path of a member name. */
  #relOf(name: string): string {
    return this.#single ? name : name.slice(2);
  }

  /**
   * copyRange copies `length` bytes from file offset `start` into the output, yielding full chunks as they
   * fill. At end of file (or a read error) it pads with zeros and yields null once, so the member keeps the
   * size its header announced.
   */
  async *#copyRange(fd: number, name: string, start: number, length: number): AsyncGenerator<Buffer | null> {
    let done = 0;
    while (done < length) {
      this.#checkAbort();
      const w = this.#out.window(Math.min(READ_SIZE, length - done));
      let n: number;
      try {
        n = await readFd(fd, w.buf, w.offset, w.length, start + done);
      } catch (err) {
        this.#warn(`${name}: read error at byte ${start + done}: ${errnoMessage(err)}`);
        n = 0;
      }
      if (n === 0) {
        this.#out.zeros(length - done);
        yield null;
        return;
      }
      this.#out.commit(n);
      done += n;
      this.#progress.onBytes?.(n);
      if (this.#out.hasReady) yield* this.#out.take();
    }
  }

  /** scanSparse reads the whole file once to find its data chunks (memory: one scratch buffer). */
  async #scanSparse(fd: number, size: number): Promise<SparseChunk[]> {
    this.#scratch ??= Buffer.allocUnsafe(READ_SIZE);
    const buf = this.#scratch;
    const scanner = new SparseScanner();
    for (let pos = 0; pos < size;) {
      this.#checkAbort();
      const n = await readFd(fd, buf, 0, Math.min(READ_SIZE, size - pos), pos);
      if (n === 0) break;
      // Keep scanning on 512-byte boundaries: a short read is rounded down unless it is the file's end.
      const usable = pos + n >= size ? n : n - (n % BLOCK);
      if (usable === 0) break;
      scanner.feed(buf, usable, pos);
      pos += usable;
    }
    return scanner.finish(size);
  }

  /** checkUnchanged warns when a file's size or mtime moved while it was read (tar's "file changed as we read it"). */
  async #checkUnchanged(fd: number, name: string, before: BigIntStats): Promise<void> {
    const after = await new Promise<BigIntStats | null>((res) => fstat(fd, { bigint: true }, (err, s) => res(err ? null : s)));
    if (after && (after.size !== before.size || after.mtimeNs !== before.mtimeNs)) {
      this.#warn(`${name}: file changed as we read it`);
    }
  }

  // -------------------------------------------------------------------------------------- headers

  #baseHeader(name: string, st: BigIntStats, type: string, size: number, linkname = ''): TarHeader {
    const uid = Number(st.uid);
    const gid = Number(st.gid);
    return {
      name, type, size, linkname,
      mode: Number(st.mode & 0o7777n),
      uid, gid, uname: nameOfUid(uid), gname: nameOfGid(gid),
      mtime: secondsOf(st.mtimeNs), atime: secondsOf(st.atimeNs), ctime: secondsOf(st.ctimeNs),
      devmajor: 0, devminor: 0,
    };
  }

  #writeHeader(h: TarHeader): void {
    this.#out.write(encodeHeader(h));
  }
}
