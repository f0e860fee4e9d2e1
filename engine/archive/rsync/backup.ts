/**
 * The rsync engine's backup side: walk the tree, compare each path with the previous level's state, and
 * write the level's stream (format.ts) and its engine_metadata.
 *
 * Per path, in walk order (a directory's entries, then its subdirectories; parents before children):
 * - directories: an attributes-only entry every level (restore re-applies their times last, since
 *   writing children changes a directory's mtime even when the source directory did not change);
 * - unchanged (same st_mode, inode, size, mtime and ctime as in the previous state): not opened, not
 *   written; its state record is carried forward as is;
 * - a regular file whose ctime alone changed (same inode, size and mtime: rsync's quick check says the
 *   content is the same) and whose user xattrs differ from the previous state's digest: an 'A' record
 *   (attributes and xattrs, no data);
 * - a later name of an inode already met in this level (nlink > 1): a hard-link entry;
 * - a changed regular file that had a signature: a delta against the previous version (filerun.ts),
 *   found by the WASM scan in the worker pool; a file new at its path whose inode had a signature under
 *   another path (a rename) is a delta against that path; otherwise the whole content (literals, and
 *   holes for sparse files). Either way the new version's signature comes from the same reads;
 * - paths of the previous state that the walk did not meet: deletion records, at the end (so a type
 *   change of a parent has already removed them, and nothing is deleted before its replacement exists).
 * User xattrs (source/xattr.ts) are read for every directory and every file whose entry is written, and
 * kept in the entry (`x`) and, as a digest, in the state; a file system without them degrades to none.
 * Memory: one read window per file plus the signatures of the file being read; the state of the whole
 * tree (about 60 bytes per path, plus 20 bytes per block of files of SIG_MIN bytes and more).
 */
import { randomBytes } from 'node:crypto';
import { closeSync, constants as fsc, fstatSync, openSync, promises as fsp, readlinkSync, type BigIntStats } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { errnoMessage, SourceError } from '../../errors.js';
import { sharedPool, type WorkerPool } from '../../pipeline/pool.js';
import { noProgress, type Progress } from '../../progress.js';
import { compileExcludes, type Excluder } from '../../source/exclude.js';
import { nameOfGid, nameOfUid } from '../../source/owners.js';
import { devParts, isVanished, statRoot, walk } from '../../source/walker.js';
import { UserXattrs, xattrDigest, type Xattr, type XattrBinding } from '../../source/xattr.js';
import { ChunkWriter } from '../tar/chunks.js';
import { FileRun, Signer, TaskSlots, type FileSink } from './filerun.js';
import {
  encodeRecord, encodeXattrs, endOp, KIND_ATTRS, KIND_DELETE, KIND_ENTRY, KIND_TRAILER, MAGIC, MAX_BLOCK,
  fineSizeFor, MetaWriter, parseMeta, sqrtBlockSize,
  type EntryHeader, type EntryType, type MetaRecord, type Signature,
} from './format.js';

export interface RsyncBackupOptions {
  root: string;
  exclude: string[];
  dereference: 'none' | 'soft' | 'hard' | 'all';
  /** The parent's engine_metadata, clear bytes. */
  previous?: Buffer;
  /** --rsync-block-size; default: per file, rsync's square-root rule. */
  blockSize?: number;
  progress?: Progress;
  signal?: AbortSignal;
  pool?: WorkerPool;
  /** User xattrs: false keeps none (silently); a binding replaces fs-xattr (tests; null: as if it could
   * not load). Default: fs-xattr, degrading to none with one warning. */
  xattrs?: false | XattrBinding | null;
}

export interface RsyncBackup {
  stream: AsyncIterable<Buffer>;
  /** The new engine_metadata (compressed); valid once the stream is fully consumed. */
  metadata(): Buffer;
  stats(): { files: number; dirs: number; bytes: number; warnings: number };
}

/** SIG_MIN: files smaller than this get no signature and are sent whole when they change (a delta of
 * a few blocks saves little and costs a pool round trip; 64 KiB is ~10 blocks of the smallest size). */
export const SIG_MIN = 64 << 10;
const OUT_CHUNK = 1 << 20;

export function createRsyncBackup(o: RsyncBackupOptions): RsyncBackup {
  validate(o);
  const run = new BackupRun(o);
  let started = false;
  return {
    stream: {
      [Symbol.asyncIterator]() {
        if (started) throw new Error('the rsync stream can be iterated only once');
        started = true;
        return run.run();
      },
    },
    metadata: () => {
      if (!run.metaFile) throw new Error('metadata() is valid once the rsync stream is fully consumed');
      return run.metaFile;
    },
    stats: () => ({ ...run.counts }),
  };
}

function validate(o: RsyncBackupOptions): void {
  if (typeof o?.root !== 'string' || !o.root.startsWith('/')) throw new TypeError('options.root must be an absolute path');
  if (!Array.isArray(o.exclude) || o.exclude.some((p) => typeof p !== 'string')) throw new TypeError('options.exclude must be an array of strings');
  if (!['none', 'soft', 'hard', 'all'].includes(o.dereference)) throw new TypeError("options.dereference must be 'none', 'soft', 'hard' or 'all'");
  if (o.previous !== undefined && !Buffer.isBuffer(o.previous)) throw new TypeError('options.previous must be a Buffer');
  const bs = o.blockSize;
  if (bs !== undefined && (!Number.isInteger(bs) || bs < 64 || bs > 16 * MAX_BLOCK)) {
    throw new RangeError(`options.blockSize must be an integer in [64, ${16 * MAX_BLOCK}]`);
  }
}

/** usable: a previous state that can serve as a delta basis (a regular file with a signature). */
function usable(r: MetaRecord | undefined): r is MetaRecord & { sig: Signature } {
  return r?.sig !== undefined && r.sig.weaks.length > 0 && (r.mode & fsc.S_IFMT) === fsc.S_IFREG;
}

function typeOf(st: BigIntStats): EntryType | null {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isFIFO()) return 'fifo';
  if (st.isCharacterDevice()) return 'chardev';
  if (st.isBlockDevice()) return 'blockdev';
  return null;
}

class BackupRun {
  readonly counts = { files: 0, dirs: 0, bytes: 0, warnings: 0 };
  metaFile: Buffer | null = null;
  readonly #o: RsyncBackupOptions;
  readonly #progress: Progress;
  readonly #exclude: Excluder;
  readonly #follow: boolean;
  readonly #hardDeref: boolean;
  readonly #xattrs: UserXattrs | null;
  readonly #out = new ChunkWriter(OUT_CHUNK);
  readonly #meta = new MetaWriter();
  /** Paths met this level -> whether each is a directory. */
  readonly #seen = new Map<string, boolean>();
  /** Previous paths with a signature, by inode (renames: built on first use). */
  #byIno: Map<bigint, MetaRecord> | null = null;
  /** Paths met unchanged this level (their content in a restore is still level N-1's). */
  readonly #carried = new Set<string>();
  /** Directories the walk could not list ('' for the root). */
  readonly #unread: string[] = [];
  /** State records whose signature is still computing in the pool, oldest first. */
  readonly #signing: Promise<MetaRecord>[] = [];
  /** dev:ino -> the first path met this level and its state (hard links). */
  readonly #links = new Map<string, { path: string; rec: MetaRecord | Promise<MetaRecord> }>();
  #prev = new Map<string, MetaRecord>();
  #pool: TaskSlots | null = null;
  #base = '';
  #records = 0;

  constructor(o: RsyncBackupOptions) {
    this.#o = o;
    this.#progress = o.progress ?? noProgress;
    this.#exclude = compileExcludes(o.exclude);
    this.#follow = o.dereference === 'soft' || o.dereference === 'all';
    this.#hardDeref = o.dereference === 'hard' || o.dereference === 'all';
    this.#xattrs = o.xattrs === false ? null : new UserXattrs({ onWarning: (m) => this.#warn(m), follow: this.#follow, binding: o.xattrs });
  }

  get #poolNow(): TaskSlots {
    this.#pool ??= new TaskSlots(this.#o.pool ?? sharedPool());
    return this.#pool;
  }

  #warn(message: string): void {
    this.counts.warnings++;
    this.#progress.onWarning?.(message);
  }

  async *run(): AsyncGenerator<Buffer> {
    this.#prev = this.#o.previous ? parseMeta(this.#o.previous) : new Map();
    await this.#xattrs?.ready();
    const rootStats = await statRoot(this.#o.root);
    this.#out.write(MAGIC);
    if (!rootStats.isDirectory()) {
      this.#base = dirname(this.#o.root);
      const rel = basename(this.#o.root);
      if (!this.#exclude(rel)) {
        const st = this.#follow ? rootStats : await fsp.lstat(this.#o.root, { bigint: true }).catch((err: unknown) => {
          throw new SourceError(`cannot back up ${this.#o.root}: ${errnoMessage(err)}`, { cause: err });
        });
        yield* this.#entry(rel, st);
      }
    } else {
      this.#base = this.#o.root;
      const walker = walk(this.#o.root, {
        exclude: this.#exclude, oneFileSystem: true, followSymlinks: this.#follow, signal: this.#o.signal,
        onWarning: (m) => {
          // walker.ts reports an unreadable directory as "<rel or .>: cannot read directory: ..."
          const unread = /^(.*): cannot read directory: /s.exec(m);
          if (unread) this.#unread.push(unread[1] === '.' ? '' : unread[1]);
          this.#warn(m);
        },
      });
      for await (const e of walker) {
        this.#o.signal?.throwIfAborted();
        yield* this.#entry(e.rel, e.stats);
        if (this.#out.hasReady) yield* this.#out.take();
      }
    }
    this.#o.signal?.throwIfAborted();
    this.#deletions();
    this.#out.write(encodeRecord(KIND_TRAILER, { entries: this.#records }));
    yield* this.#out.take();
    const last = this.#out.rest();
    if (last) yield last;
    this.metaFile = await this.#meta.finish();
    this.#o.signal?.throwIfAborted();
  }

  /**
   * deletions records the previous paths the walk did not meet. Paths under a directory that could not
   * be read are not deleted: their previous state is kept (as tar keeps what the previous level knew),
   * so a transient permission error never removes files from the restore.
   */
  #deletions(): void {
    const gone = new Set<string>();
    const unreadable = (p: string) => this.#unread.some((d) => d === '' || p.startsWith(`${d}/`));
    for (const [p, r] of this.#prev) {
      if (this.#seen.has(p)) continue;
      if (this.#unread.length > 0 && unreadable(p)) this.#meta.add(r);
      else gone.add(p);
    }
    for (const p of gone) {
      const parent = p.includes('/') ? p.slice(0, p.lastIndexOf('/')) : '';
      if (p !== '' && gone.has(parent) && parent !== p) continue; // removed with its parent
      this.#record(KIND_DELETE, { p });
    }
  }

  #record(kind: number, json: object): void {
    this.#out.write(encodeRecord(kind, json));
    this.#records++;
  }

  #header(rel: string, st: BigIntStats, t: EntryType): EntryHeader {
    const u = Number(st.uid);
    const g = Number(st.gid);
    return { p: rel, t, m: Number(st.mode & 0o7777n), u, g, un: nameOfUid(u), gn: nameOfGid(g), mt: String(st.mtimeNs) };
  }

  #state(rel: string, st: BigIntStats, sig?: Signature, size = Number(st.size), xh?: Buffer): MetaRecord {
    return { path: rel, mode: Number(st.mode), ino: st.ino, size, mtimeNs: st.mtimeNs, ctimeNs: st.ctimeNs, sig, xh };
  }

  /** xattrs reads the user xattrs of rel (through `fd` when open); null when unknown. */
  #readXattrs(rel: string, o: { fd?: number; dir?: boolean } = {}): Xattr[] | null {
    return this.#xattrs?.read(join(this.#base, rel), rel, o) ?? null;
  }

  /**
   * attrsOnly writes an 'A' record when a regular file's content is unchanged by rsync's quick check
   * (same inode, size and mtime; its ctime changed) and its user xattrs differ from the previous
   * state's: the new attributes and xattrs, no data. Returns the new state, or null when this does not
   * apply (the file is then sent as usual: a ctime change with nothing else seen may be a rewrite that
   * kept its mtime).
   */
  #attrsOnly(rel: string, st: BigIntStats, prev: MetaRecord | undefined): MetaRecord | null {
    if (!prev || !this.#xattrs?.available || (prev.mode & fsc.S_IFMT) !== fsc.S_IFREG) return null;
    if (prev.ino !== st.ino || prev.size !== Number(st.size) || prev.mtimeNs !== st.mtimeNs) return null;
    const x = this.#readXattrs(rel);
    if (x === null) return null;
    const xh = xattrDigest(x);
    if (xh === prev.xh || (xh && prev.xh?.equals(xh))) return null;
    this.#progress.onFile?.(rel, 0);
    this.#record(KIND_ATTRS, { ...this.#header(rel, st, 'file'), x: encodeXattrs(x) });
    const rec = this.#state(rel, st, prev.sig, prev.size, xh);
    this.#meta.add(rec);
    this.counts.files++;
    return rec;
  }

  async *#entry(rel: string, st: BigIntStats): AsyncGenerator<Buffer> {
    const t = typeOf(st);
    if (t === null) {
      this.#warn(`${rel}: socket ignored`);
      return;
    }
    this.#seen.set(rel, t === 'dir');
    const prev = this.#prev.get(rel);
    if (t === 'dir') {
      const h = this.#header(rel, st, 'dir');
      const x = this.#readXattrs(rel, { dir: true });
      if (x !== null) h.x = encodeXattrs(x);
      this.#record(KIND_ENTRY, h);
      this.#meta.add(this.#state(rel, st));
      this.counts.dirs++;
      return;
    }
    const unchanged = prev !== undefined && prev.mode === Number(st.mode) && prev.ino === st.ino
      && prev.size === Number(st.size) && prev.mtimeNs === st.mtimeNs && prev.ctimeNs === st.ctimeNs;
    const key = t === 'file' && !this.#hardDeref && st.nlink > 1n ? `${st.dev}:${st.ino}` : null;
    const first = key ? this.#links.get(key) : undefined;
    if (unchanged) {
      this.#carried.add(rel);
      this.#meta.add(prev);
      if (key && !first) this.#links.set(key, { path: rel, rec: prev });
      return;
    }
    const attrs = t === 'file' && !first ? this.#attrsOnly(rel, st, prev) : null;
    if (attrs) {
      this.#carried.add(rel); // its content is still level N-1's: a rename may use it as a basis
      if (key) this.#links.set(key, { path: rel, rec: attrs });
      return;
    }
    this.#progress.onFile?.(rel, t === 'file' ? Number(st.size) : 0);
    if (first) {
      this.#record(KIND_ENTRY, { ...this.#header(rel, st, 'hardlink'), l: first.path });
      this.#meta.add(Promise.resolve(first.rec).then((f) => this.#state(rel, st, f.sig, f.size, f.xh)));
      this.counts.files++;
      return;
    }
    if (t === 'file') {
      const done = yield* this.#file(rel, st, prev);
      if (done && key) this.#links.set(key, { path: rel, rec: done.rec });
      return;
    }
    const h = this.#header(rel, st, t);
    if (t === 'symlink') {
      try {
        h.l = readlinkSync(join(this.#base, rel));
      } catch (err) {
        this.#warn(`${rel}: cannot read link: ${errnoMessage(err)}`);
        if (prev) this.#meta.add(prev);
        return;
      }
    } else if (t === 'chardev' || t === 'blockdev') {
      h.rd = devParts(st.rdev);
    }
    this.#record(KIND_ENTRY, h);
    this.#meta.add(this.#state(rel, st));
    this.counts.files++;
  }

  /** file writes a regular file's entry (whole or delta) and returns its new state, or null if skipped. */
  async *#file(rel: string, st: BigIntStats, prev: MetaRecord | undefined): AsyncGenerator<Buffer, { rec: Promise<MetaRecord> } | null> {
    const path = join(this.#base, rel);
    const size = Number(st.size);
    // open, fstat, close (and reads of small files, in FileRun) are synchronous: through libuv's thread
    // pool each would cost a round trip several times the call itself (the tar writer measured 5x on
    // small files); the loop is held for one call at a time.
    let fd: number;
    try {
      fd = openSync(path, fsc.O_RDONLY | (this.#follow ? 0 : fsc.O_NOFOLLOW));
    } catch (err) {
      this.#warn(`${rel}: ${isVanished(err) ? 'file removed before we read it' : `cannot open: ${errnoMessage(err)}`}`);
      if (prev) this.#meta.add(prev); // keep what the previous level knew: the restore keeps that version
      return null;
    }
    try {
      const basis = size > 0 ? (usable(prev) ? prev : this.#renamedFrom(rel, st)) : undefined;
      const h: EntryHeader = { ...this.#header(rel, st, 'file'), d: basis ? 'delta' : 'full' };
      if (basis?.sig) h.base = { sz: basis.size, sha: basis.sig.sha.toString('hex'), bs: basis.sig.blockSize };
      if (basis && basis.path !== rel) h.base!.p = basis.path;
      const sparse = size > 0 && st.blocks * 512n < st.size;
      if (sparse) h.sp = true;
      const x = this.#readXattrs(rel, { fd });
      if (x?.length) h.x = encodeXattrs(x);
      const xh = x ? xattrDigest(x) : undefined;
      this.#record(KIND_ENTRY, h);
      // The basis's block size is kept while it stays within 2x of the square-root rule: the match
      // search then computes the new signature too (see kernels.ts DeltaTask.signEnd).
      const rule = sqrtBlockSize(size);
      const oldBs = basis?.sig?.blockSize;
      const newBs = this.#o.blockSize ?? (oldBs && oldBs <= 2 * rule && rule <= 2 * oldBs ? oldBs : rule);
      const wantSig = size >= SIG_MIN;
      const inline = wantSig && newBs === oldBs;
      // fine sums: a fresh random seed per file version, so no content can be made to collide on purpose
      const fineSize = fineSizeFor(newBs);
      const fine = wantSig && fineSize > 0 ? { fineSize, fineSeed: new Uint8Array(randomBytes(8)) } : null;
      const signer = wantSig && !inline ? new Signer(this.#poolNow, newBs, size, fine) : null;
      const file = new FileRun(this.#sink(), fd, size, sparse, signer, inline, fine);
      try {
        if (basis?.sig) yield* file.delta(basis.sig, basis.size);
        else yield* file.full();
      } catch (err) {
        await file.signer?.discard();
        throw err;
      }
      const sha = file.hash.digest();
      this.#out.write(endOp(file.read, sha));
      // The signature may still be computing in the pool: the record is settled by MetaWriter.finish.
      const sig = file.signer ? file.signer.finish(sha) : Promise.resolve(file.inlineSig ? file.inlineSignature(sha, newBs) : undefined);
      if (file.read < size) {
        this.#warn(`${rel}: file shrank while read; stored ${file.read} of ${size} bytes`);
      } else {
        const after = fstatSync(fd, { bigint: true });
        if (after.mtimeNs !== st.mtimeNs || after.size !== st.size) this.#warn(`${rel}: file changed as we read it`);
      }
      this.counts.files++;
      this.counts.bytes += file.read;
      const read = file.read;
      const rec = sig.then((g) => this.#state(rel, st, g, read, xh));
      this.#meta.add(rec);
      // Files whose signature is still computing hold their pending chunks (up to threads * 2 of 4 MiB
      // each): at most threads * 4 such files keeps that bounded while the pool catches up.
      if (file.signer) {
        this.#signing.push(rec);
        while (this.#signing.length > this.#poolNow.threads * 4) await this.#signing.shift();
      }
      return { rec }; // wrapped: a generator's return value would be awaited
    } finally {
      closeSync(fd);
    }
  }

  /**
   * renamedFrom finds the previous path of a file that is new at `rel` (a rename, a move of its
   * directory): the previous path of the same inode, usable as the delta basis when restore will still
   * find it as level N-1 left it at that point of the stream: not yet met this level, or met unchanged,
   * and no parent of it met as a non-directory (restore would have removed it with that parent).
   */
  #renamedFrom(rel: string, st: BigIntStats): MetaRecord | undefined {
    if (!this.#byIno) {
      this.#byIno = new Map();
      for (const r of this.#prev.values()) if (usable(r)) this.#byIno.set(r.ino, r);
    }
    const q = this.#byIno.get(st.ino);
    if (!q || q.path === rel) return undefined;
    if (this.#seen.has(q.path) && !this.#carried.has(q.path)) return undefined;
    for (let i = q.path.indexOf('/'); i > 0; i = q.path.indexOf('/', i + 1)) {
      if (this.#seen.get(q.path.slice(0, i)) === false) return undefined;
    }
    return q;
  }

  /** sink: what a FileRun writes to and reports through. */
  #sink(): FileSink {
    return { out: this.#out, signal: this.#o.signal, pool: this.#poolNow, onBytes: (n) => this.#progress.onBytes?.(n) };
  }
}
