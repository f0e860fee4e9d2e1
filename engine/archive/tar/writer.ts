/**
 * The tar archive writer: the byte stream of Freezer's tar engine, written in TypeScript.
 *
 * Freezer runs, in the directory to back up (or the parent of a single file):
 *   tar --create --listed-incremental=<engine_meta> --one-file-system --preserve-permissions --same-owner
 *       --no-check-device --ignore-failed-read [--dereference|--hard-dereference] [--exclude=P] .
 * createTarBackup produces the same stream, which `tar --incremental --extract` (Freezer's restore) and
 * floe's extractor restore level after level, and the same snapshot file, which real tar accepts as the
 * next level's `--listed-incremental`, and the other way round. Level 0 is byte-identical to tar's
 * (access times aside), except that floe keeps holes of sparse files ('S' members; Freezer's tar runs
 * without --sparse and stores the zeros).
 *
 * Member order, as tar 1.34 with --listed-incremental (checked with hexdumps of real archives):
 *   1. every directory, depth first, names in strcmp order, each as a GNU dumpdir member ('D', name
 *      './sub/') whose data lists its entries: `Y` dumped here, `N` not dumped (unchanged, excluded,
 *      vanished), `D` subdirectory; this is how restore learns about deletions and renames;
 *   2. then, directory by directory in the same order, the `Y` entries of each.
 * All headers are old GNU ("ustar  \0") with atime and ctime set, as tar writes them in incremental mode.
 * The stream ends with two zero blocks and is padded to tar's 10240-byte record.
 *
 * Speed: per-file system calls (readdir, lstat, open, read, close) are synchronous, as in tar. Through
 * libuv's thread pool each costs a round trip several times the call itself, which made small files 5x
 * slower; the event loop is held at most while one output chunk fills. Large files are read asynchronously,
 * READ_SIZE at a time, straight into the output chunks.
 *
 * Memory: the snapshot (every directory and its dumpdir) grows with the tree, like tar's; everything else
 * is bounded: one directory listing per depth and output chunks of `chunkSize` bytes, which are handed
 * over and never written again.
 */
import {
  closeSync, fstatSync, lstatSync, openSync, read, readlinkSync, readSync, statSync, constants as fsc,
  type BigIntStats, type Stats,
} from 'node:fs';
import { basename, dirname } from 'node:path';
import { errnoMessage, SourceError } from '../../errors.js';
import type { SlotPool } from '../../pipeline/slots.js';
import { noProgress, type Progress } from '../../progress.js';
import { compileExcludes, type Excluder } from '../../source/exclude.js';
import { nameOfGid, nameOfUid } from '../../source/owners.js';
import { devParts, isVanished, listDirectorySync, statRoot, walk } from '../../source/walker.js';
import { ChunkWriter, hasHoles, SparseScanner, ZERO_SPAN } from './chunks.js';
import { BLOCK, encodeHeader, encodeHeaderInto, END_OF_ARCHIVE, padding, type SparseChunk, type TarHeader } from './header.js';
import {
  buildDumpdir, parseSnapshot, PreviousState, readDumpdir, serializeSnapshot,
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
  /** Size of the buffers the stream yields (the last one may be shorter). Default 2 MiB. */
  chunkSize?: number;
  /**
   * Output buffers come from this pool while it has free slots (chunkSize is then its slot size); the
   * stream's consumer must give each one back (see pipeline/slots.ts).
   */
  slots?: SlotPool | null;
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

/** DEFAULT_CHUNK: 2 MiB output buffers, the parallel compressor's block (transform/parallel.ts BLOCK_SIZE): each buffer
 * is then one block as it is, where 1 MiB buffers were joined in pairs (a copy of the whole stream). */
const DEFAULT_CHUNK = 2 << 20;
/** RECORD: GNU tar's default record (20 blocks); archives are padded to a multiple of it. */
const RECORD = 20 * BLOCK;
/** READ_SIZE: largest single read (1 MiB): few system calls, and at most one output chunk. */
const READ_SIZE = ZERO_SPAN;
/** SMALL_FILE: files up to this size are read synchronously (a 256 KiB read holds the loop ~50 us). */
const SMALL_FILE = 256 << 10;
const BILLION = 1_000_000_000n;

// ------------------------------------------------------------------------------------------ public API

/**
 * createTarBackup prepares a backup; nothing is read until `stream` is iterated. Throws TypeError or
 * RangeError on bad options. From the stream: SourceError when the root is missing or unreadable,
 * IntegrityError for a malformed `previous`; other problems are warnings (tar's --ignore-failed-read).
 */
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

// ------------------------------------------------------------------------------------------ helpers

const readAsync = (fd: number, buf: Buffer, offset: number, length: number, position: number) =>
  new Promise<number>((res, rej) => read(fd, buf, offset, length, position, (err, n) => (err ? rej(err) : res(n))));

/** secondsOf converts ns since the epoch to whole seconds, rounding down (also before 1970). */
function secondsOf(ns: bigint): number {
  const s = ns / BILLION;
  return Number(ns < 0n && s * BILLION !== ns ? s - 1n : s);
}

function statProblem(err: unknown): string {
  return isVanished(err) ? 'file removed before we read it' : `cannot stat: ${errnoMessage(err)}`;
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

/** FileJob: a Y entry to dump in phase 2; `dirDev` is its directory's device (null for a single file). */
interface FileJob {
  rel: string;
  dirDev: bigint | null;
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
  /** Inodes with more links still to meet: their first member name (tar's hard-link table). */
  readonly #links = new Map<string, { name: string; left: bigint }>();
  readonly #ancestors = new Set<string>();
  readonly #probe = Buffer.allocUnsafe(1);
  #prev = new PreviousState(null);
  #base = '';
  /** #base with one trailing '/': what #abs puts before a relative name. */
  #prefix = '';
  #single = false;
  #scratch: Buffer | null = null;

  constructor(opts: TarBackupOptions) {
    this.#opts = opts;
    this.#progress = opts.progress ?? noProgress;
    this.#exclude = compileExcludes(opts.exclude);
    this.#follow = opts.dereference === 'soft' || opts.dereference === 'all';
    this.#hardDeref = opts.dereference === 'hard' || opts.dereference === 'all';
    this.#out = new ChunkWriter(opts.slots?.slotSize ?? opts.chunkSize ?? DEFAULT_CHUNK, opts.slots ?? null);
  }

  async *run(): AsyncGenerator<Buffer> {
    const startNs = (this.#opts.now ?? wallClock())();
    this.#prev = new PreviousState(this.#opts.previous ? parseSnapshot(this.#opts.previous) : null, this.#opts.checkDevice);
    const rootStats = await statRoot(this.#opts.root);
    this.#single = !rootStats.isDirectory();
    this.#base = this.#single ? dirname(this.#opts.root) : this.#opts.root;
    this.#prefix = this.#base.endsWith('/') ? this.#base : `${this.#base}/`;
    if (this.#single) {
      yield* this.#singleFile();
    } else if (!this.#exclude('')) {
      yield* this.#scanTree(rootStats);
      yield* this.#dumpFiles(this.#allJobs());
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
    this.snapshotFile = serializeSnapshot({ version: 2, timeNs: startNs - BILLION, directories: this.#dirs });
  }

  #warn(message: string): void {
    this.counts.warnings++;
    this.#progress.onWarning?.(message);
  }

  #checkAbort(): void {
    this.#opts.signal?.throwIfAborted();
  }

  #abs(rel: string): string {
    // `rel` is made of names readdir gave ('/'-joined, never '.' or '..'): nothing for join() to normalize,
    // and join cost ~10 ms of the scan of 18k entries.
    return rel === '' ? this.#base : this.#prefix + rel;
  }

  #memberName(rel: string): string {
    return this.#single ? rel : `./${rel}`;
  }

  #statSync(path: string): BigIntStats {
    return this.#follow ? statSync(path, { bigint: true }) : lstatSync(path, { bigint: true });
  }

  /** statPlain: #statSync without BigInts, for the level-1 scan of files (PreviousState.changedMs says why). */
  #statPlain(path: string): Stats {
    return this.#follow ? statSync(path) : lstatSync(path);
  }

  // ------------------------------------------------------------------------------------ single file

  async *#singleFile(): AsyncGenerator<Buffer> {
    const rel = basename(this.#opts.root);
    if (this.#exclude(rel)) return;
    let st: BigIntStats;
    try {
      st = this.#statSync(this.#opts.root);
    } catch (err) {
      throw new SourceError(`cannot back up ${this.#opts.root}: ${errnoMessage(err)}`, { cause: err });
    }
    // A file named on tar's command line is dumped at level N only if it changed since level N-1.
    if (!this.#prev.changed(st.mtimeNs, st.ctimeNs)) return;
    yield* this.#dumpFiles([{ rel, dirDev: null }]);
  }

  // ------------------------------------------------------------------------- phase 1: directories

  /** scanTree visits every directory depth first and writes its dumpdir member. */
  async *#scanTree(rootStats: BigIntStats): AsyncGenerator<Buffer> {
    const root = await this.#visitDir('', rootStats, null);
    const stack: DirFrame[] = root ? [root] : [];
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
        st = this.#statSync(this.#abs(rel));
      } catch (err) {
        this.#warn(`./${rel}: ${statProblem(err)}`);
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
    if (this.#ancestors.has(key)) {
      this.#warn(`${name}: directory loop (symbolic link to an ancestor); not dumped`);
      return null;
    }
    let children: Children;
    let previous: Set<string> | null = null;
    if (parent && st.dev !== parent.dev) {
      this.#warn(`${name}: directory is on a different filesystem; not dumped`); // --one-file-system
      children = 'none';
    } else {
      ({ children, previous } = this.#prev.classify(name, st.dev, st.ino, parent?.children ?? null));
    }
    let entries: DumpdirRecord[] = [];
    if (children !== 'none') {
      let listing;
      try {
        listing = listDirectorySync(this.#abs(rel));
      } catch (err) {
        if (rel === '') throw new SourceError(`cannot back up ${this.#opts.root}: ${errnoMessage(err)}`, { cause: err });
        this.#warn(`${name}: cannot open directory: ${errnoMessage(err)}; not dumped`);
        // Keep what the previous level knew, so the next level neither loses nor re-dumps it.
        const old = this.#prev.directory(name);
        if (old) this.#dirs.push(old);
        return null;
      }
      entries = this.#classify(rel, listing, children, previous, st.dev);
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
   * directory -> D, new (or anything in a new directory) -> Y, else Y when its mtime or ctime is at or
   * after the previous snapshot time, N otherwise. Entries are stat'ed only when that decides something.
   */
  #classify(rel: string, listing: { name: string; isDirectory(): boolean; isSymbolicLink(): boolean }[],
    children: Children, previous: Set<string> | null, dev: bigint): DumpdirRecord[] {
    const isNew = (n: string) => children === 'all' || !previous || !previous.has(n);
    const devNumber = Number(dev);
    return listing.map((d) => {
      const childRel = rel === '' ? d.name : `${rel}/${d.name}`;
      if (this.#exclude(childRel)) return { kind: 'N', name: d.name };
      if (d.isDirectory()) return { kind: 'D', name: d.name };
      if (!(this.#follow && d.isSymbolicLink()) && isNew(d.name)) return { kind: 'Y', name: d.name };
      let st: Stats;
      try {
        st = this.#statPlain(this.#abs(childRel)); // the one stat of every unchanged file
      } catch (err) {
        this.#warn(`./${childRel}: ${statProblem(err)}`);
        return { kind: 'N', name: d.name };
      }
      if (st.isDirectory()) return { kind: 'D', name: d.name };
      if (st.dev !== devNumber) return { kind: 'N', name: d.name }; // --one-file-system: mounted from elsewhere
      const dump = isNew(d.name) || this.#prev.changedMs(st.mtimeMs, st.ctimeMs);
      return { kind: dump ? 'Y' : 'N', name: d.name };
    });
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

  /** dumpFiles writes the members of `jobs`, handing over output chunks as they fill. */
  async *#dumpFiles(jobs: Iterable<FileJob>): AsyncGenerator<Buffer> {
    for (const job of jobs) {
      this.#checkAbort();
      const big = this.#dumpOne(job);
      if (big) yield* this.#streamRegular(big.name, big.st, big.fd);
      if (this.#out.hasReady) yield* this.#out.take();
    }
  }

  /**
   * dumpOne writes one non-directory member, synchronously, or returns the open descriptor of a regular
   * file too large (or too sparse-looking) to read synchronously, for streamRegular.
   */
  #dumpOne(job: FileJob): { name: string; st: BigIntStats; fd: number } | null {
    const name = this.#memberName(job.rel);
    const path = this.#abs(job.rel);
    let st: BigIntStats;
    try {
      st = this.#statSync(path);
    } catch (err) {
      this.#warn(`${name}: ${statProblem(err)}`);
      return null;
    }
    if (job.dirDev !== null && st.dev !== job.dirDev) return null; // --one-file-system, in a new directory
    if (st.isFile()) return this.#dumpRegular(name, path, st);
    if (st.isSymbolicLink()) {
      let target: string;
      try {
        target = readlinkSync(path);
      } catch (err) {
        this.#warn(`${name}: cannot read link: ${errnoMessage(err)}`);
        return null;
      }
      this.#member(this.#baseHeader(name, st, '2', 0, target));
    } else if (st.isFIFO()) {
      this.#member(this.#baseHeader(name, st, '6', 0));
    } else if (st.isCharacterDevice() || st.isBlockDevice()) {
      const h = this.#baseHeader(name, st, st.isCharacterDevice() ? '3' : '4', 0);
      [h.devmajor, h.devminor] = devParts(st.rdev);
      this.#member(h);
    } else if (st.isSocket()) {
      this.#warn(`${name}: socket ignored`);
    } else {
      this.#warn(`${name}: changed file type while read; not dumped`);
    }
    return null;
  }

  /** member writes a header-only member. */
  #member(h: TarHeader): void {
    this.#progress.onFile?.(h.name, 0);
    this.#writeHeader(h);
    this.counts.files++;
  }

  #dumpRegular(name: string, path: string, st: BigIntStats): { name: string; st: BigIntStats; fd: number } | null {
    const key = `${st.dev}:${st.ino}`;
    if (!this.#hardDeref && st.nlink > 1n) {
      const first = this.#links.get(key);
      if (first) {
        // Later names of an inode met in this archive become hard links to the first one.
        if (--first.left <= 0n) this.#links.delete(key); // all names met: forget it, as tar does
        this.#member(this.#baseHeader(name, st, '1', 0, first.name));
        return null;
      }
    }
    const size = Number(st.size);
    let fd = -1;
    if (size > 0) {
      try {
        fd = openSync(path, fsc.O_RDONLY | (this.#follow ? 0 : fsc.O_NOFOLLOW));
      } catch (err) {
        this.#warn(`${name}: ${isVanished(err) ? 'file removed before we read it' : `cannot open: ${errnoMessage(err)}`}`);
        return null;
      }
    }
    if (!this.#hardDeref && st.nlink > 1n) this.#links.set(key, { name, left: st.nlink - 1n });
    const sparse = size > 0 && st.blocks * 512n < st.size;
    if (size > SMALL_FILE || sparse) return { name, st, fd };
    try {
      this.#progress.onFile?.(name, size);
      this.#writeHeader(this.#baseHeader(name, st, '0', size));
      const { got, grew } = size > 0 ? this.#copySync(fd, name, size) : { got: 0, grew: false };
      this.#out.zeros(padding(size));
      this.counts.files++;
      this.counts.bytes += size;
      if (got < size) this.#warn(`${name}: file shrank by ${size - got} bytes; padding with zeros`);
      else if (grew) this.#warn(`${name}: file changed as we read it`);
    } finally {
      if (fd >= 0) closeSync(fd);
    }
    return null;
  }

  /** grew: there are bytes past `size` (one 1-byte read, cheaper than tar's fstat-and-compare). */
  #grew(fd: number, size: number): boolean {
    try {
      return readSync(fd, this.#probe, 0, 1, size) > 0;
    } catch {
      return false;
    }
  }

  /**
   * copySync reads `size` bytes of a small file straight into the output; zeros after a short read.
   * Each read asks for one byte more than is left, so a file that grew shows in the same read (the
   * extra byte lands in uncommitted space); only when the chunk has no room for it does a one-byte read
   * at `size` check.
   */
  #copySync(fd: number, name: string, size: number): { got: number; grew: boolean } {
    let done = 0;
    let grew: boolean | undefined;
    while (done < size) {
      const w = this.#out.window(size - done + 1);
      let n = 0;
      try {
        n = readSync(fd, w.buf, w.offset, w.length, done);
      } catch (err) {
        this.#warn(`${name}: read error at byte ${done}: ${errnoMessage(err)}`);
      }
      if (n === 0) break;
      if (done + n > size) {
        grew = true;
        n = size - done;
      } else if (done + n === size && w.length > n) grew = false; // asked past the end, got EOF
      this.#out.commit(n);
      done += n;
    }
    this.#out.zeros(size - done);
    this.#progress.onBytes?.(done);
    return { got: done, grew: done === size && (grew ?? this.#grew(fd, size)) };
  }

  /** streamRegular writes a large or sparse file from `fd` (which it closes), reading asynchronously. */
  async *#streamRegular(name: string, st: BigIntStats, fd: number): AsyncGenerator<Buffer> {
    try {
      const size = Number(st.size);
      let map: SparseChunk[] = [{ offset: 0, size }];
      if (st.blocks * 512n < st.size) {
        try {
          const scanned = await this.#scanSparse(fd, size);
          if (hasHoles(scanned, size)) map = scanned;
        } catch (err) {
          if (this.#opts.signal?.aborted) throw err;
          // Store it whole; the copy below meets the same error and pads with zeros, with a warning.
        }
      }
      const sparse = map.length > 1 || map[0].size < size;
      const stored = map.reduce((n, c) => n + c.size, 0);
      this.#progress.onFile?.(name, stored);
      const h = this.#baseHeader(name, st, sparse ? 'S' : '0', stored);
      if (sparse) h.sparse = { realSize: size, map };
      this.#writeHeader(h);
      let short = false;
      for (const c of map) {
        for await (const b of this.#copyAsync(fd, name, c.offset, c.size)) {
          if (b === null) short = true;
          else yield b;
        }
      }
      this.#out.zeros(padding(stored));
      this.counts.files++;
      this.counts.bytes += stored;
      if (short) {
        this.#warn(`${name}: file shrank while read; padded with zeros`);
      } else {
        const after = fstatSync(fd, { bigint: true });
        if (after.size !== st.size || after.mtimeNs !== st.mtimeNs) this.#warn(`${name}: file changed as we read it`);
      }
    } finally {
      closeSync(fd);
    }
  }

  /**
   * copyAsync copies `length` bytes from file offset `start` into the output, yielding chunks as they
   * fill. At end of file (or a read error) it pads with zeros and yields null once, so the member keeps
   * the size its header announced.
   */
  async *#copyAsync(fd: number, name: string, start: number, length: number): AsyncGenerator<Buffer | null> {
    let done = 0;
    while (done < length) {
      this.#checkAbort();
      const w = this.#out.window(Math.min(READ_SIZE, length - done));
      let n = 0;
      try {
        n = await readAsync(fd, w.buf, w.offset, w.length, start + done);
      } catch (err) {
        this.#warn(`${name}: read error at byte ${start + done}: ${errnoMessage(err)}`);
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
      const n = await readAsync(fd, buf, 0, Math.min(READ_SIZE, size - pos), pos);
      if (n === 0) break;
      // Stay on 512-byte boundaries: a short read is rounded down unless it reaches the end of the file.
      const usable = pos + n >= size ? n : n - (n % BLOCK);
      if (usable === 0) break;
      scanner.feed(buf, usable, pos);
      pos += usable;
    }
    return scanner.finish(size);
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

  /** writeHeader encodes a one-block header straight into the output when the block fits the chunk. */
  #writeHeader(h: TarHeader): void {
    const w = this.#out.window(BLOCK);
    if (w.length === BLOCK && encodeHeaderInto(h, w.buf, w.offset)) this.#out.commit(BLOCK);
    else this.#out.write(encodeHeader(h));
  }
}
