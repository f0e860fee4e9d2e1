/**
 * Tar extraction, as GNU tar restores Freezer levels.
 *
 * Model: `extractTar` reproduces `tar --incremental --extract --ignore-zeros --overwrite --directory T
 * --same-owner --preserve-permissions` for one archive (one level); Freezer restores levels 0..N in order
 * into the same directory. Differences from tar are deliberate and only make failures safer:
 * - a regular file is written to `.floe-<random>.tmp` in its directory and renamed over its name once all
 *   its bytes, owner, mode and times are in place: a failed restore never leaves a half-written file under
 *   a real name (tar writes in place);
 * - nothing is ever written through a symlink: a member whose parent path contains a symlink is refused
 *   (tar would follow it, or delay it with a placeholder), and a directory that is a symlink on disk is
 *   replaced rather than purged through;
 * - member names have their leading '/' removed and names with '..' components are refused (warnings).
 * Directory purging from GNU dumpdirs is in dumpdir.ts. Owner: names known on this host win over numeric
 * ids (owners.ts). Times: mtime from the archive, atime = the extraction start time (what tar 1.34 does,
 * even in incremental mode). Directory metadata is applied last, deepest first, since creating children
 * changes a directory's mtime.
 * Errors: corrupted input -> IntegrityError; a full or failing disk -> StorageError("restore: ..."); any
 * other per-member problem is a warning (progress.onWarning) and the member is skipped, as tar goes on.
 */
import { execFile } from 'node:child_process';
import {
  chmodSync, closeSync, fchmodSync, fchownSync, futimesSync, lchownSync, lstatSync, mkdirSync, openSync, renameSync, unlinkSync,
  utimesSync, writeSync, type Stats,
} from 'node:fs';
import { link, lstat, lutimes, lchown, mkdir, open, realpath, rename, rmdir, symlink, unlink, chmod, utimes } from 'node:fs/promises';
import { promisify } from 'node:util';
import { errnoMessage, FloeError, IntegrityError, InterruptedError, StorageError } from '../../errors.js';
import type { Progress } from '../../progress.js';
import { resolveOwner } from '../../source/owners.js';
import { purgeDirectory, type PurgeContext } from './dumpdir.js';
import { collect, tempName, writeDense, writeSparse } from './filedata.js';
import type { TarHeader } from './header.js';
import { readTar } from './reader.js';
import { giveUp } from '../../pipeline/stages.js';

export interface ExtractOptions {
  /** Directory to extract into (created if missing). */
  target: string;
  /** Apply GNU dumpdirs (purge deleted entries, apply renames), as `tar --incremental`. */
  incremental: boolean;
  /** List members through onList, write nothing (the stream is still read and verified). */
  dryRun?: boolean;
  /** Called for every member, in archive order (dry run or not). */
  onList?(h: TarHeader): void;
  /** Restore owners (default: process.getuid() === 0, like tar). */
  sameOwner?: boolean;
  progress?: Progress;
  signal?: AbortSignal;
  /**
   * Also make holes for regular (non-'S') files: 4 KiB blocks of zeros, aligned on the file offset, are
   * skipped instead of written (like `cp --sparse=always`). 'S' members always keep their holes.
   */
  sparseAware?: boolean;
}

export interface ExtractResult { files: number; bytes: number; warnings: number }

const run = promisify(execFile);
/** Errors of the disk itself end the restore: going on would only fail again on every member. */
const FATAL_ERRNO = new Set(['ENOSPC', 'EDQUOT', 'EIO', 'EROFS']);
/** MAX_DUMPDIR: a dumpdir is held in memory (tar does too); 64 MiB is ~2 million names. */
const MAX_DUMPDIR = 64 << 20;
/**
 * SMALL_FILE: regular files up to this size are collected and written with synchronous calls. For small
 * files the thread-pool round trip of each async fs call costs more than the syscall itself (measured:
 * 2000 tiny files: 1.1 s with async calls, 0.57 s with sync ones). 256 KiB bounds the memory and the
 * event-loop stall.
 */
const SMALL_FILE = 256 * 1024;

/** Refusal of one member: reported as a warning, the extraction goes on. */
class Refused extends Error {}

/** memberParts sanitizes a member name: strips leading '/', drops '.' and empty parts; null if it has '..'. */
export function memberParts(name: string): string[] | null {
  const parts = name.split('/').filter((p) => p !== '' && p !== '.');
  return parts.includes('..') ? null : parts;
}

function isCode(err: unknown, ...codes: string[]): boolean {
  return codes.includes((err as NodeJS.ErrnoException)?.code ?? '');
}

class Extractor {
  readonly #opts: ExtractOptions;
  readonly #progress: Progress;
  readonly #sameOwner: boolean;
  /** Start time in seconds: the atime tar gives every extracted member. */
  readonly #atime = Math.floor(Date.now() / 1000);
  /** Relative paths known to be real directories (not symlinks), to avoid an lstat per component. */
  readonly #dirs = new Set<string>(['']);
  /** Directory metadata to apply at the end, by relative path (the last header wins). */
  readonly #delayed = new Map<string, TarHeader>();
  #root = '';
  #warnedAbsolute = false;
  readonly result: ExtractResult = { files: 0, bytes: 0, warnings: 0 };

  constructor(opts: ExtractOptions) {
    this.#opts = opts;
    this.#progress = opts.progress ?? {};
    this.#sameOwner = opts.sameOwner ?? process.getuid?.() === 0;
  }

  warn(message: string): void {
    this.result.warnings++;
    this.#progress.onWarning?.(message);
  }

  async init(): Promise<void> {
    if (this.#opts.dryRun) return;
    await mkdir(this.#opts.target, { recursive: true });
    this.#root = await realpath(this.#opts.target);
  }

  #abs(rel: string): string {
    return rel === '' ? this.#root : `${this.#root}/${rel}`;
  }

  /** forget drops cached directories at or under an absolute path that was removed or renamed. */
  #forget(abs: string): void {
    if (abs === this.#root || !abs.startsWith(`${this.#root}/`)) return;
    const rel = abs.slice(this.#root.length + 1);
    for (const d of this.#dirs) if (d === rel || d.startsWith(`${rel}/`)) this.#dirs.delete(d);
  }

  /**
   * checkParents verifies that every existing parent of `parts` is a real directory. With `create`, missing
   * parents are made (mode 0777 minus umask, as tar's make_directories); otherwise the walk stops at the first
   * missing one. Throws Refused for a symlink or a non-directory in the way.
   */
  async #checkParents(parts: string[], create: boolean, member: string): Promise<void> {
    for (let i = 1; i < parts.length; i++) {
      const rel = parts.slice(0, i).join('/');
      if (this.#dirs.has(rel)) continue;
      const abs = this.#abs(rel);
      let st = await lstat(abs).catch((err: unknown) => { if (isCode(err, 'ENOENT')) return null; throw err; });
      if (st === null) {
        if (!create) return;
        await mkdir(abs).catch((err: unknown) => { if (!isCode(err, 'EEXIST')) throw err; });
        st = await lstat(abs);
      }
      if (st.isSymbolicLink()) throw new Refused(`${member}: refusing to extract through symlink ${rel}`);
      if (!st.isDirectory()) throw new Refused(`${member}: cannot extract: ${rel} is not a directory`);
      this.#dirs.add(rel);
    }
  }

  /** clear removes what is at `abs` to make room (tar --overwrite: a file, a link, or an empty directory). */
  async #clear(abs: string, member: string): Promise<void> {
    const st = await lstat(abs).catch(() => null);
    if (!st) return;
    if (!st.isDirectory()) { await unlink(abs); return; }
    try {
      await rmdir(abs);
      this.#forget(abs);
    } catch (err) {
      if (isCode(err, 'ENOTEMPTY', 'EEXIST')) throw new Refused(`${member}: cannot overwrite non-empty directory`);
      throw err;
    }
  }

  /** retryAfterClear runs `make`; if the name is taken, clears it and runs `make` again. */
  async #retryAfterClear(abs: string, member: string, make: () => Promise<unknown>): Promise<void> {
    try {
      await make();
    } catch (err) {
      if (!isCode(err, 'EEXIST', 'EISDIR', 'ENOTEMPTY')) throw err;
      await this.#clear(abs, member);
      await make();
    }
  }

  #owner(h: TarHeader): { uid: number; gid: number } | null {
    return this.#sameOwner ? resolveOwner(h) : null;
  }

  /** chownWarn: a failing chown is a warning (tar: "Cannot change ownership"), never an abort. */
  async #chownWarn(name: string, op: () => Promise<void>): Promise<void> {
    try {
      await op();
    } catch (err) {
      this.#chownFailed(name, err);
    }
  }

  /** chownSyncWarn is chownWarn for a synchronous chown. */
  #chownSyncWarn(name: string, op: () => void): void {
    try {
      op();
    } catch (err) {
      this.#chownFailed(name, err);
    }
  }

  #chownFailed(name: string, err: unknown): void {
    if (FATAL_ERRNO.has((err as NodeJS.ErrnoException).code ?? '')) throw err;
    this.warn(`${name}: cannot change ownership: ${errnoMessage(err)}`);
  }

  // ------------------------------------------------------------------------------------------ members

  async member(h: TarHeader, data: AsyncIterable<Buffer>, whole?: Buffer): Promise<void> {
    this.#opts.onList?.(h);
    if (!this.#warnedAbsolute && h.name.startsWith('/')) {
      this.#warnedAbsolute = true;
      this.warn("Removing leading '/' from member names");
    }
    const parts = memberParts(h.name);
    if (parts === null) throw new Refused(`${h.name}: member name contains '..'`);
    const rel = parts.join('/');
    this.#progress.onFile?.(rel === '' ? '.' : rel, h.size);
    if (this.#opts.dryRun) {
      for await (const c of data) this.result.bytes += c.length;
      this.result.files++;
      return;
    }
    if (h.type !== '5' && h.type !== 'D' && parts.length === 0) throw new Refused(`${h.name}: not a directory member`);
    await this.#checkParents(parts, true, h.name);
    const abs = this.#abs(rel);
    switch (h.type) {
      case '5': case 'D': await this.#directory(rel, abs, h, data); break;
      case '1': await this.#hardLink(abs, h); break;
      case '2': await this.#symlink(abs, h); break;
      case '3': case '4': case '6': await this.#special(abs, h); break;
      case '0': case 'S': await this.#file(abs, h, data, whole); break;
      default:
        this.warn(`${h.name}: unknown file type '${h.type}', extracted as normal file`);
        await this.#file(abs, { ...h, type: '0', sparse: undefined }, data);
    }
    this.result.files++;
  }

  async #directory(rel: string, abs: string, h: TarHeader, data: AsyncIterable<Buffer>): Promise<void> {
    const dumpdir = h.type === 'D' ? await collect(data, MAX_DUMPDIR, h.name) : null;
    // Synchronous calls, as for small files: an archive has a directory member for every directory.
    let st: Stats | undefined;
    try {
      st = lstatSync(abs);
    } catch {
      st = undefined;
    }
    if (dumpdir && this.#opts.incremental && st?.isDirectory()) {
      await purgeDirectory(abs, dumpdir, this.#purgeContext());
    }
    if (!st?.isDirectory()) {
      if (st) unlinkSync(abs); // a file or symlink where the directory goes
      // 0700 while extracting (children must be writable); the real mode comes at the end.
      try {
        mkdirSync(abs, 0o700);
      } catch (err) {
        if (!isCode(err, 'EEXIST')) throw err;
      }
    }
    this.#dirs.add(rel);
    this.#delayed.delete(rel);
    this.#delayed.set(rel, h);
  }

  #purgeContext(): PurgeContext {
    return {
      resolve: async (name) => {
        const parts = memberParts(name);
        if (parts === null) return null;
        try {
          await this.#checkParents(parts, false, name);
        } catch (err) {
          if (err instanceof Refused) return null;
          throw err;
        }
        return this.#abs(parts.join('/'));
      },
      warn: (m) => this.warn(m),
      removed: (p) => this.#forget(p),
    };
  }

  async #hardLink(abs: string, h: TarHeader): Promise<void> {
    const target = memberParts(h.linkname);
    if (target === null || target.length === 0) throw new Refused(`${h.name}: hard link target ${h.linkname} is unsafe`);
    await this.#checkParents(target, false, h.name);
    const from = this.#abs(target.join('/'));
    if (from === abs) return; // a link to itself: already there
    await this.#retryAfterClear(abs, h.name, () => link(from, abs));
  }

  async #symlink(abs: string, h: TarHeader): Promise<void> {
    await this.#retryAfterClear(abs, h.name, () => symlink(h.linkname, abs));
    const owner = this.#owner(h);
    if (owner) await this.#chownWarn(h.name, () => lchown(abs, owner.uid, owner.gid));
    await lutimes(abs, this.#atime, h.mtime);
  }

  /** special makes FIFOs and devices with coreutils: Node has no mknod/mkfifo. */
  async #special(abs: string, h: TarHeader): Promise<void> {
    const args = h.type === '6' ? ['mkfifo', abs] : ['mknod', abs, h.type === '3' ? 'c' : 'b', String(h.devmajor), String(h.devminor)];
    await this.#clear(abs, h.name);
    try {
      await run(args[0], ['--', ...args.slice(1)]);
    } catch (err) {
      const stderr = String((err as { stderr?: unknown }).stderr ?? '').trim();
      throw new Refused(`${h.name}: cannot create ${h.type === '6' ? 'fifo' : 'device'}: ${stderr || (err as Error).message}`);
    }
    const owner = this.#owner(h);
    if (owner) await this.#chownWarn(h.name, () => lchown(abs, owner.uid, owner.gid));
    await chmod(abs, h.mode & 0o7777);
    await utimes(abs, this.#atime, h.mtime);
  }

  /** file writes a regular or sparse member to a temporary name, then renames it into place. */
  async #file(abs: string, h: TarHeader, data: AsyncIterable<Buffer>, whole?: Buffer): Promise<void> {
    const tmp = tempName(abs);
    if (h.type === '0' && h.size <= SMALL_FILE && !this.#opts.sparseAware) {
      // written synchronously below, before the reader moves on: the reader's view needs no copy
      const buf = whole ?? await collect(data, SMALL_FILE, h.name);
      if (buf.length !== h.size) throw new IntegrityError(`truncated archive: ${h.name} has ${buf.length} of ${h.size} bytes`);
      if (this.#smallFile(tmp, abs, h, buf)) return;
      try { // something was in the way of the rename
        await this.#clear(abs, h.name);
        await rename(tmp, abs);
      } catch (err) {
        await unlink(tmp).catch(() => undefined);
        throw err;
      }
      return;
    }
    const fh = await open(tmp, 'wx', 0o600);
    let closed = false;
    let done = false;
    try {
      const onBytes = (n: number) => this.#count(n);
      const written = h.type === 'S'
        ? await writeSparse(fh, h, data, onBytes)
        : await writeDense(fh, data, this.#opts.sparseAware ?? false, onBytes);
      if (written !== h.size) throw new IntegrityError(`truncated archive: ${h.name} has ${written} of ${h.size} bytes`);
      const owner = this.#owner(h);
      if (owner) await this.#chownWarn(h.name, () => fh.chown(owner.uid, owner.gid));
      await fh.chmod(h.mode & 0o7777); // after chown, which clears setuid/setgid
      await fh.utimes(this.#atime, h.mtime);
      await fh.close();
      closed = true;
      await this.#retryAfterClear(abs, h.name, () => rename(tmp, abs));
      done = true;
    } finally {
      if (!closed) await fh.close().catch(() => undefined);
      if (!done) await unlink(tmp).catch(() => undefined);
    }
  }

  /**
   * smallFile writes an in-memory file with synchronous calls (see SMALL_FILE). Returns false when the final
   * rename found something in the way: the caller clears it and renames again (the temp file then exists).
   */
  #smallFile(tmp: string, abs: string, h: TarHeader, buf: Buffer): boolean {
    const fd = openSync(tmp, 'wx', 0o600);
    let closed = false;
    let outcome: 'renamed' | 'blocked' | 'failed' = 'failed';
    try {
      for (let off = 0; off < buf.length;) off += writeSync(fd, buf, off, buf.length - off, off);
      this.#count(buf.length);
      const owner = this.#owner(h);
      if (owner) this.#chownSyncWarn(h.name, () => fchownSync(fd, owner.uid, owner.gid));
      fchmodSync(fd, h.mode & 0o7777); // after chown, which clears setuid/setgid
      futimesSync(fd, this.#atime, h.mtime);
      // Marked first: Linux frees the descriptor even when close fails, and a second close could hit a
      // descriptor another thread has opened since (the thread pool's).
      closed = true;
      closeSync(fd);
      try {
        renameSync(tmp, abs);
        outcome = 'renamed';
      } catch (err) {
        if (!isCode(err, 'EEXIST', 'EISDIR', 'ENOTEMPTY')) throw err;
        outcome = 'blocked';
      }
      return outcome === 'renamed';
    } finally {
      if (!closed) try { closeSync(fd); } catch { /* already failing */ }
      if (outcome === 'failed') try { unlinkSync(tmp); } catch { /* best effort */ }
    }
  }

  #count(n: number): void {
    this.result.bytes += n;
    this.#progress.onBytes?.(n);
  }

  /**
   * finish applies directory owners, modes and times, deepest first. Synchronous calls: four per
   * directory, each a few microseconds, where a thread-pool round trip cost ~50-90 us here (557
   * directories of the bench dataset: ~200 ms async).
   */
  async finish(): Promise<void> {
    const dirs = [...this.#delayed].sort((a, b) => depth(b[0]) - depth(a[0]));
    for (const [rel, h] of dirs) {
      const abs = this.#abs(rel);
      try {
        const st = lstatSync(abs);
        if (!st.isDirectory()) continue; // replaced by a later member
        const owner = this.#owner(h);
        if (owner) this.#chownSyncWarn(h.name, () => lchownSync(abs, owner.uid, owner.gid));
        chmodSync(abs, h.mode & 0o7777);
        utimesSync(abs, this.#atime, h.mtime);
      } catch (err) {
        this.#classify(err, h.name);
      }
    }
  }

  /** classify rethrows fatal errors and turns the others into warnings. */
  #classify(err: unknown, name: string): void {
    if (this.#opts.signal?.aborted) throw err;
    if (err instanceof Refused) { this.warn(err.message); return; }
    if (err instanceof FloeError) throw err;
    const code = (err as NodeJS.ErrnoException)?.code;
    if (typeof code === 'string' && FATAL_ERRNO.has(code)) {
      throw new StorageError(`restore: ${errnoMessage(err)}`, { cause: err });
    }
    if (typeof code === 'string' && code.startsWith('E')) { this.warn(`${name}: ${errnoMessage(err)}`); return; }
    throw err;
  }

  async handle(h: TarHeader, data: AsyncIterable<Buffer>, whole?: Buffer): Promise<void> {
    try {
      await this.member(h, data, whole);
    } catch (err) {
      this.#classify(err, h.name);
    }
  }
}

function depth(rel: string): number {
  return rel === '' ? 0 : rel.split('/').length;
}

/**
 * extractTar reads a tar stream and restores its members under `opts.target`. Resolves with counts when
 * the whole archive was read; rejects with IntegrityError (corrupted or truncated input), StorageError
 * (disk full, I/O error) or the abort reason.
 */
export async function extractTar(input: AsyncIterable<Buffer>, opts: ExtractOptions): Promise<ExtractResult> {
  const x = new Extractor(opts);
  let reading = false;
  try {
    await x.init();
    reading = true;
    for await (const { header, data, whole } of readTar(input, opts.signal)) {
      if (opts.signal?.aborted) throw opts.signal.reason instanceof Error ? opts.signal.reason : new InterruptedError();
      await x.handle(header, data, whole);
    }
    if (!opts.dryRun) await x.finish();
  } catch (err) {
    // readTar gives its input up when it stops; before it ran (the target could not be made), do it here
    if (!reading) await giveUp(input[Symbol.asyncIterator](), false);
    if (err instanceof FloeError || opts.signal?.aborted) throw err;
    const code = (err as NodeJS.ErrnoException)?.code;
    if (typeof code === 'string' && code.startsWith('E')) throw new StorageError(`restore: ${errnoMessage(err)}`, { cause: err });
    throw err;
  }
  return x.result;
}
