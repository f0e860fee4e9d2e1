/**
 * The rsync engine's restore side: applies one level's stream to the target, as the previous levels
 * left it. Levels 0..N are applied in order into the same directory.
 *
 * Guarantees (as the tar engine's, and stricter where a delta is involved):
 * - a regular file is built under `.floe-<random>.tmp` in its directory and renamed over its name only
 *   when its size and SHA-256 equal what the backup read; a delta is applied only to a basis whose size
 *   and SHA-256 are those the delta was computed against; any mismatch is an IntegrityError and the
 *   temporary file is removed: a file is never left silently corrupt;
 * - a stream that ends before its trailer, or whose record count differs, is an IntegrityError;
 * - nothing is written through a symlink: every parent on the way is checked to be a real directory;
 *   paths with '..' or empty components are refused as corruption;
 * - directory owners, modes and times are applied last, deepest first;
 * - user xattrs (source/xattr.ts) are set after a file's content and before its owner, mode and times:
 *   a new file gets its entry's `x`; a directory, and a file of an 'A' record, get exactly their `x`
 *   (attributes gone since the previous level are removed). A target without xattr support is warned
 *   about once per restore (per Progress sink, which the restore action shares across levels).
 * Per-entry problems that are not corruption (a parent replaced by a symlink, a chown refused) are
 * warnings; a full or failing disk is a StorageError.
 */
import { execFile } from 'node:child_process';
import { createHash, type Hash } from 'node:crypto';
import { constants as fsc, promises as fsp } from 'node:fs';
import { promisify } from 'node:util';
import { errnoMessage, FloeError, IntegrityError, InterruptedError, StorageError } from '../../errors.js';
import type { Progress } from '../../progress.js';
import { giveUp } from '../../pipeline/stages.js';
import { resolveOwner } from '../../source/owners.js';
import { UserXattrs, type XattrBinding } from '../../source/xattr.js';
import { tempName, writeAll } from '../tar/filedata.js';
import {
  decodeXattrs, KIND_ATTRS, KIND_DELETE, KIND_ENTRY, KIND_TRAILER, MAGIC, MAX_JSON, MAX_LITERAL, OP_COPY,
  OP_END, OP_HOLE, OP_LITERAL, OP_RANGE,
  type EntryHeader,
} from './format.js';

export interface RsyncRestoreOptions {
  target: string;
  dryRun?: boolean;
  onList?(name: string): void;
  progress?: Progress;
  signal?: AbortSignal;
  /** User xattrs: false sets none (silently); a binding replaces fs-xattr (tests; null: as if it could
   * not load). One writer per `progress` sink, so "not supported" is warned once for all the levels of
   * a restore (the restore action passes one sink for all of them). */
  xattrs?: false | XattrBinding | null;
}

export interface RsyncRestoreResult { files: number; bytes: number; warnings: number }

const run = promisify(execFile);
const FATAL_ERRNO = new Set(['ENOSPC', 'EDQUOT', 'EIO', 'EROFS']);
const PIECE = 1 << 20;
const ZEROS = Buffer.alloc(PIECE);
const HOLE = 4096;

class Refused extends Error {}

/** writers: the xattr writer of each restore, keyed by its Progress sink (one for all its levels). */
const writers = new WeakMap<Progress, UserXattrs>();

function xattrWriter(o: RsyncRestoreOptions, warn: (m: string) => void): UserXattrs | null {
  if (o.xattrs === false || o.dryRun) return null;
  let w = o.progress ? writers.get(o.progress) : undefined;
  if (!w) {
    w = new UserXattrs({ onWarning: warn, binding: o.xattrs });
    if (o.progress) writers.set(o.progress, w);
  }
  w.warn = warn;
  return w;
}

function isCode(err: unknown, ...codes: string[]): boolean {
  return codes.includes((err as NodeJS.ErrnoException)?.code ?? '');
}

/** ByteReader reads exact byte counts from a stream of buffers. */
class ByteReader {
  readonly #it: AsyncIterator<Buffer>;
  #buf: Buffer = Buffer.alloc(0);
  #off = 0;
  #eof = false;
  #pulled = false;

  constructor(input: AsyncIterable<Buffer>) {
    this.#it = input[Symbol.asyncIterator]();
  }

  /**
   * close gives the input up (its iterator's return()), unless it ended: a restore stopped early (a full
   * disk) must stop what feeds it, whose stages and threads would otherwise wait for ever to be read,
   * keeping the process alive after its error was reported.
   */
  async close(): Promise<void> {
    if (this.#eof) return;
    this.#eof = true;
    await giveUp(this.#it, this.#pulled);
  }

  async #next(): Promise<Buffer | null> {
    if (this.#eof) return null;
    this.#pulled = true;
    const r = await this.#it.next();
    if (r.done) { this.#eof = true; return null; }
    return r.value;
  }

  /** atEnd: no byte is left. */
  async atEnd(): Promise<boolean> {
    while (this.#off >= this.#buf.length) {
      const b = await this.#next();
      if (!b) return true;
      this.#buf = b;
      this.#off = 0;
    }
    return false;
  }

  /**
   * read returns exactly n bytes (a view valid until the next call), or IntegrityError. Bytes spanning
   * input buffers are gathered and copied once (inputs may be 16 KiB inflate chunks; literals 1 MiB).
   */
  async read(n: number): Promise<Buffer> {
    if (this.#buf.length - this.#off >= n) {
      const b = this.#buf.subarray(this.#off, this.#off + n);
      this.#off += n;
      return b;
    }
    const parts = [this.#buf.subarray(this.#off)];
    let have = parts[0].length;
    while (have < n) {
      const b = await this.#next();
      if (!b) throw new IntegrityError('truncated rsync stream');
      parts.push(b);
      have += b.length;
    }
    this.#buf = Buffer.concat(parts, have);
    this.#off = n;
    return this.#buf.subarray(0, n);
  }
}

class Restorer {
  readonly result: RsyncRestoreResult = { files: 0, bytes: 0, warnings: 0 };
  readonly #o: RsyncRestoreOptions;
  readonly #r: ByteReader;
  readonly #sameOwner = process.getuid?.() === 0;
  readonly #atime = Date.now() / 1000;
  readonly #dirs = new Set<string>(['']);
  readonly #delayed = new Map<string, EntryHeader>();
  readonly #xattrs: UserXattrs | null;
  #root = '';

  constructor(input: AsyncIterable<Buffer>, o: RsyncRestoreOptions) {
    this.#o = o;
    this.#r = new ByteReader(input);
    this.#xattrs = xattrWriter(o, (m) => this.#warn(m));
  }

  /** close: the input is given up (ByteReader.close), whether the restore ended or failed. */
  close(): Promise<void> {
    return this.#r.close();
  }

  #warn(m: string): void {
    this.result.warnings++;
    this.#o.progress?.onWarning?.(m);
  }

  #abs(rel: string): string {
    return rel === '' ? this.#root : `${this.#root}/${rel}`;
  }

  async run(): Promise<void> {
    if (!this.#o.dryRun) {
      await fsp.mkdir(this.#o.target, { recursive: true });
      this.#root = await fsp.realpath(this.#o.target);
    }
    await this.#xattrs?.ready();
    const magic = await this.#r.read(MAGIC.length).catch(() => Buffer.alloc(0));
    if (!magic.equals(MAGIC)) throw new IntegrityError('not an rsync engine stream (bad magic)');
    let records = 0;
    for (;;) {
      if (this.#o.signal?.aborted) throw this.#o.signal.reason instanceof Error ? this.#o.signal.reason : new InterruptedError();
      const head = await this.#r.read(5);
      const kind = head[0];
      const len = head.readUInt32LE(1);
      if (len > MAX_JSON) throw new IntegrityError('corrupted rsync stream: record too large');
      let json: Record<string, unknown>;
      try {
        json = JSON.parse((await this.#r.read(len)).toString('utf8'));
      } catch {
        throw new IntegrityError('corrupted rsync stream: bad record');
      }
      if (kind === KIND_TRAILER) {
        if (json.entries !== records) throw new IntegrityError(`corrupted rsync stream: ${records} records, trailer says ${String(json.entries)}`);
        if (!(await this.#r.atEnd())) throw new IntegrityError('corrupted rsync stream: data after the trailer');
        break;
      }
      records++;
      if (kind === KIND_ENTRY) await this.#entry(json as unknown as EntryHeader);
      else if (kind === KIND_ATTRS) await this.#attrs(json as unknown as EntryHeader);
      else if (kind === KIND_DELETE) await this.#guard(String(json.p), () => this.#delete(String(json.p)));
      else throw new IntegrityError(`corrupted rsync stream: unknown record kind ${kind}`);
    }
    if (!this.#o.dryRun) await this.#finish();
  }

  /** parts validates a stored path: '' (the target) or names without '.', '..' or empty components. */
  #parts(p: unknown): string[] {
    if (typeof p !== 'string') throw new IntegrityError('corrupted rsync stream: entry without a path');
    if (p === '') return [];
    const parts = p.split('/');
    if (parts.some((x) => x === '' || x === '.' || x === '..')) throw new IntegrityError(`corrupted rsync stream: unsafe path ${JSON.stringify(p)}`);
    return parts;
  }

  /** guard runs one entry's file system work: warnings for refusals and ordinary errors, fatal for the disk. */
  async #guard(name: string, op: () => Promise<void>): Promise<void> {
    try {
      await op();
    } catch (err) {
      if (err instanceof Refused) { this.#warn(err.message); return; }
      if (err instanceof FloeError || this.#o.signal?.aborted) throw err;
      const code = (err as NodeJS.ErrnoException)?.code ?? '';
      if (FATAL_ERRNO.has(code)) throw new StorageError(`restore: ${errnoMessage(err)}`, { cause: err });
      if (code.startsWith('E')) { this.#warn(`${name}: ${errnoMessage(err)}`); return; }
      throw err;
    }
  }

  /** parents checks (create=true: makes) each parent of parts is a real directory; Refused otherwise. */
  async #parents(parts: string[], create: boolean, name: string): Promise<boolean> {
    for (let i = 1; i < parts.length; i++) {
      const rel = parts.slice(0, i).join('/');
      if (this.#dirs.has(rel)) continue;
      const abs = this.#abs(rel);
      let st = await fsp.lstat(abs).catch((err: unknown) => { if (isCode(err, 'ENOENT')) return null; throw err; });
      if (st === null) {
        if (!create) return false;
        await fsp.mkdir(abs, 0o700);
        st = await fsp.lstat(abs);
      }
      if (st.isSymbolicLink() || !st.isDirectory()) {
        if (!create) return false;
        throw new Refused(`${name}: refusing to restore: ${rel} is not a directory`);
      }
      this.#dirs.add(rel);
    }
    return true;
  }

  #forget(rel: string): void {
    for (const d of this.#dirs) if (d === rel || d.startsWith(`${rel}/`)) this.#dirs.delete(d);
  }

  /** clear removes whatever is at rel (a whole directory included). */
  async #clear(rel: string): Promise<void> {
    await fsp.rm(this.#abs(rel), { recursive: true, force: true });
    this.#forget(rel);
  }

  async #entry(h: EntryHeader): Promise<void> {
    const parts = this.#parts(h.p);
    const rel = parts.join('/');
    this.#o.onList?.(rel === '' ? '.' : rel);
    this.#o.progress?.onFile?.(rel === '' ? '.' : rel, 0);
    if (h.t === 'file') { await this.#file(rel, parts, h); return; }
    if (this.#o.dryRun) { if (h.t !== 'dir') this.result.files++; return; }
    await this.#guard(rel, async () => {
      if (h.t !== 'dir' && parts.length === 0) throw new IntegrityError('corrupted rsync stream: the target itself is not a directory');
      await this.#parents(parts, true, rel);
      const abs = this.#abs(rel);
      switch (h.t) {
        case 'dir': {
          const st = await fsp.lstat(abs).catch(() => null);
          if (!st?.isDirectory()) {
            if (st) await this.#clear(rel);
            await fsp.mkdir(abs, 0o700);
          }
          this.#dirs.add(rel);
          this.#delayed.set(rel, h);
          return;
        }
        case 'symlink':
          await this.#replace(rel, () => fsp.symlink(String(h.l), abs));
          await this.#chown(h, () => fsp.lchown(abs, ...this.#ids(h)));
          await fsp.lutimes(abs, this.#atime, this.#mtime(h));
          break;
        case 'hardlink': {
          const from = this.#abs(this.#parts(h.l).join('/'));
          const [a, b] = await Promise.all([fsp.lstat(from), fsp.lstat(abs).catch(() => null)]);
          if (!a.isFile()) throw new Refused(`${rel}: hard link target ${h.l} is not a regular file`);
          if (b && a.ino === b.ino && a.dev === b.dev) break;
          const tmp = tempName(abs);
          await fsp.link(from, tmp);
          await this.#replace(rel, () => fsp.rename(tmp, abs)).catch(async (err) => { await fsp.unlink(tmp).catch(() => undefined); throw err; });
          break;
        }
        case 'fifo': case 'chardev': case 'blockdev':
          await this.#special(rel, abs, h);
          break;
        default:
          throw new IntegrityError(`corrupted rsync stream: unknown entry type ${String(h.t)}`);
      }
      this.result.files++;
    });
  }

  #ids(h: EntryHeader): [number, number] {
    const o = resolveOwner({ uid: h.u, gid: h.g, uname: h.un ?? '', gname: h.gn ?? '' });
    return [o.uid, o.gid];
  }

  #mtime(h: EntryHeader): number {
    return Number(BigInt(h.mt)) / 1e9;
  }

  async #chown(h: EntryHeader, op: () => Promise<void>): Promise<void> {
    if (!this.#sameOwner) return;
    try {
      await op();
    } catch (err) {
      if (FATAL_ERRNO.has((err as NodeJS.ErrnoException).code ?? '')) throw err;
      this.#warn(`${h.p}: cannot change ownership: ${errnoMessage(err)}`);
    }
  }

  /** replace runs make(); if something is in the way, removes it and runs make() again. */
  async #replace(rel: string, make: () => Promise<unknown>): Promise<void> {
    try {
      await make();
    } catch (err) {
      if (!isCode(err, 'EEXIST', 'EISDIR', 'ENOTEMPTY', 'ENOTDIR')) throw err;
      await this.#clear(rel);
      await make();
    }
  }

  async #special(rel: string, abs: string, h: EntryHeader): Promise<void> {
    const args = h.t === 'fifo' ? ['mkfifo', abs]
      : ['mknod', abs, h.t === 'chardev' ? 'c' : 'b', String(h.rd?.[0] ?? 0), String(h.rd?.[1] ?? 0)];
    await this.#clear(rel);
    try {
      await run(args[0], ['--', ...args.slice(1)]);
    } catch (err) {
      const stderr = String((err as { stderr?: unknown }).stderr ?? '').trim();
      throw new Refused(`${rel}: cannot create ${h.t}: ${stderr || (err as Error).message}`);
    }
    await this.#chown(h, () => fsp.lchown(abs, ...this.#ids(h)));
    await fsp.chmod(abs, h.m & 0o7777);
    await fsp.utimes(abs, this.#atime, this.#mtime(h));
  }

  /**
   * attrs applies an 'A' record: the regular file at the path, as the previous level left it, gets
   * exactly the record's xattrs, then its owner, mode and mtime. Its content is not touched.
   */
  async #attrs(h: EntryHeader): Promise<void> {
    const parts = this.#parts(h.p);
    if (parts.length === 0 || h.t !== 'file') throw new IntegrityError(`corrupted rsync stream: attributes record for ${JSON.stringify(h.p)}`);
    const rel = parts.join('/');
    const x = decodeXattrs(h.x ?? [], h.p);
    this.#o.onList?.(rel);
    this.#o.progress?.onFile?.(rel, 0);
    if (this.#o.dryRun) { this.result.files++; return; }
    await this.#guard(rel, async () => {
      if (!(await this.#parents(parts, false, rel))) {
        throw new IntegrityError(`${h.p}: cannot apply this level: the file is missing; restore the levels in order`);
      }
      const abs = this.#abs(rel);
      const fh = await fsp.open(abs, fsc.O_RDONLY | fsc.O_NOFOLLOW | fsc.O_NONBLOCK).catch((err: unknown) => {
        if (isCode(err, 'ENOENT', 'ELOOP')) throw new IntegrityError(`${h.p}: cannot apply this level: the file is missing; restore the levels in order`, { cause: err });
        throw err;
      });
      try {
        if (!(await fh.stat()).isFile()) throw new IntegrityError(`${h.p}: cannot apply this level: it is not a regular file; restore the levels in order`);
        this.#xattrs?.write(abs, rel, x, { fd: fh.fd, exact: true });
        await this.#chown(h, () => fh.chown(...this.#ids(h)));
        await fh.chmod(h.m & 0o7777);
        await fh.utimes(this.#atime, this.#mtime(h));
      } finally {
        await fh.close();
      }
      this.result.files++;
    });
  }

  async #delete(p: string): Promise<void> {
    const parts = this.#parts(p);
    if (parts.length === 0 || this.#o.dryRun) return;
    if (!(await this.#parents(parts, false, p))) return; // a parent is gone or replaced: so is p
    await this.#clear(parts.join('/'));
  }

  // ------------------------------------------------------------------------------------- file data

  /** file restores a regular file: opens the basis (delta), builds a temp file, verifies, renames. */
  async #file(rel: string, parts: string[], h: EntryHeader): Promise<void> {
    if (parts.length === 0) throw new IntegrityError('corrupted rsync stream: the target itself is not a directory');
    if (this.#o.dryRun) { await this.#apply(h, null, null); this.result.files++; return; }
    let ready = true;
    await this.#guard(rel, async () => { await this.#parents(parts, true, rel); });
    if (!this.#dirs.has(parts.slice(0, -1).join('/'))) ready = false;
    if (!ready) { await this.#apply(h, null, null); return; } // refused (warned): consume its data
    const abs = this.#abs(rel);
    let basis: fsp.FileHandle | null = null;
    let tmp: string | null = null;
    let out: fsp.FileHandle | null = null;
    try {
      if (h.d === 'delta') {
        const bp = h.base?.p === undefined ? parts : this.#parts(h.base.p);
        if (bp.length === 0 || !(await this.#parents(bp, false, rel))) {
          throw new IntegrityError(`${h.p}: cannot apply this level: the previous version ${h.base?.p ?? h.p} is missing; restore the levels in order`);
        }
        basis = await this.#openBasis(this.#abs(bp.join('/')), h);
      }
      tmp = tempName(abs);
      out = await fsp.open(tmp, 'wx', 0o600);
      await this.#apply(h, out, basis);
      if (h.x !== undefined) this.#xattrs?.write(tmp, rel, decodeXattrs(h.x, h.p), { fd: out.fd });
      await this.#chown(h, () => out!.chown(...this.#ids(h)));
      await out.chmod(h.m & 0o7777); // after chown, which clears setuid/setgid
      await out.utimes(this.#atime, this.#mtime(h));
      await out.close();
      out = null;
      await this.#replace(rel, () => fsp.rename(tmp!, abs));
      tmp = null;
      this.result.files++;
    } catch (err) {
      if (err instanceof FloeError || this.#o.signal?.aborted) throw err;
      throw new StorageError(`restore: ${rel}: ${errnoMessage(err)}`, { cause: err });
    } finally {
      await out?.close().catch(() => undefined);
      await basis?.close().catch(() => undefined);
      if (tmp) await fsp.unlink(tmp).catch(() => undefined);
    }
  }

  /** openBasis opens the file a delta applies to and checks it is the one the delta was made against. */
  async #openBasis(abs: string, h: EntryHeader): Promise<fsp.FileHandle> {
    const base = h.base;
    if (!base || !Number.isInteger(base.bs) || base.bs < 1) throw new IntegrityError(`corrupted rsync stream: ${h.p}: delta without a basis`);
    const fh = await fsp.open(abs, 'r').catch((err: unknown) => {
      throw new IntegrityError(`${h.p}: cannot apply this level: the previous version is missing (${errnoMessage(err)}); restore the levels in order`, { cause: err });
    });
    try {
      const st = await fh.stat();
      if (!st.isFile() || st.size !== base.sz) throw new IntegrityError(`${h.p}: cannot apply this level: the previous version has ${st.size} bytes, the delta expects ${base.sz}`);
      const hash = createHash('sha256');
      const buf = Buffer.allocUnsafe(PIECE);
      for (let pos = 0; pos < st.size;) {
        const { bytesRead } = await fh.read(buf, 0, PIECE, pos);
        if (bytesRead === 0) break;
        hash.update(buf.subarray(0, bytesRead));
        pos += bytesRead;
      }
      if (hash.digest('hex') !== base.sha) throw new IntegrityError(`${h.p}: cannot apply this level: the previous version's content is not the one the delta was made against`);
      return fh;
    } catch (err) {
      await fh.close();
      throw err;
    }
  }

  /**
   * apply reads the entry's ops and writes the new content to `out` (null: only read and check them).
   * Verifies the final size and SHA-256 (when writing).
   */
  async #apply(h: EntryHeader, out: fsp.FileHandle | null, basis: fsp.FileHandle | null): Promise<void> {
    const r = this.#r;
    const hash = out ? createHash('sha256') : null;
    const sparse = h.sp === true;
    let pos = 0;
    let copyBuf: Buffer | null = null;
    for (;;) {
      const op = (await r.read(1))[0];
      if (op === OP_END) break;
      if (op === OP_LITERAL) {
        const n = (await r.read(4)).readUInt32LE(0);
        if (n > MAX_LITERAL) throw new IntegrityError(`corrupted rsync stream: ${h.p}: literal too large`);
        const data = await r.read(n);
        if (out) await this.#write(out, hash!, data, pos, sparse);
        pos += n;
      } else if (op === OP_HOLE) {
        const n = Number((await r.read(8)).readBigUInt64LE(0));
        if (hash) for (let left = n; left > 0; left -= PIECE) hash.update(ZEROS.subarray(0, Math.min(PIECE, left)));
        pos += n;
      } else if (op === OP_COPY || op === OP_RANGE) {
        let start: number;
        let length: number;
        if (h.d !== 'delta' || !h.base) throw new IntegrityError(`corrupted rsync stream: ${h.p}: copy without a basis`);
        if (op === OP_COPY) {
          const b = await r.read(8);
          const block = b.readUInt32LE(0);
          const count = b.readUInt32LE(4);
          start = block * h.base.bs;
          length = count === 0 ? 0 : Math.min(count * h.base.bs, h.base.sz - start);
        } else {
          const b = await r.read(16);
          start = Number(b.readBigUInt64LE(0));
          length = Number(b.readBigUInt64LE(8));
          if (start + length > h.base.sz) length = 0;
        }
        if (length <= 0) throw new IntegrityError(`corrupted rsync stream: ${h.p}: copy outside the previous version`);
        if (out && basis) {
          copyBuf ??= Buffer.allocUnsafe(PIECE);
          for (let done = 0; done < length;) {
            const { bytesRead } = await basis.read(copyBuf, 0, Math.min(PIECE, length - done), start + done);
            if (bytesRead === 0) throw new IntegrityError(`${h.p}: the previous version changed while restoring`);
            await this.#write(out, hash!, copyBuf.subarray(0, bytesRead), pos + done, sparse);
            done += bytesRead;
          }
        }
        pos += length;
      } else {
        throw new IntegrityError(`corrupted rsync stream: ${h.p}: unknown op ${op}`);
      }
    }
    const end = await r.read(40);
    const size = Number(end.readBigUInt64LE(0));
    if (size !== pos) throw new IntegrityError(`corrupted rsync stream: ${h.p}: rebuilt ${pos} bytes, expected ${size}`);
    this.result.bytes += pos;
    if (!out) return;
    if (!hash!.digest().equals(end.subarray(8, 40))) throw new IntegrityError(`${h.p}: rebuilt content does not match its recorded SHA-256 (tampered or corrupted level)`);
    await out.truncate(size);
  }

  /** write puts data at pos, leaving aligned zero blocks of sparse files as holes. */
  async #write(out: fsp.FileHandle, hash: Hash, data: Buffer, pos: number, sparse: boolean): Promise<void> {
    hash.update(data);
    this.#o.progress?.onBytes?.(data.length);
    if (!sparse) { await writeAll(out, data, pos); return; }
    let runStart = -1;
    let off = 0;
    while (off < data.length) {
      const end = Math.min(data.length, off + HOLE - ((pos + off) % HOLE));
      const zero = end - off === HOLE && data.compare(ZEROS, 0, HOLE, off, end) === 0;
      if (!zero && runStart < 0) runStart = off;
      if (zero && runStart >= 0) { await writeAll(out, data.subarray(runStart, off), pos + runStart); runStart = -1; }
      off = end;
    }
    if (runStart >= 0) await writeAll(out, data.subarray(runStart), pos + runStart);
  }

  /** finish applies directory owners, modes and times, deepest first. */
  async #finish(): Promise<void> {
    const dirs = [...this.#delayed].sort((a, b) => b[0].split('/').length - a[0].split('/').length);
    for (const [rel, h] of dirs) {
      await this.#guard(rel, async () => {
        const abs = this.#abs(rel);
        const st = await fsp.lstat(abs).catch(() => null);
        if (!st?.isDirectory()) return;
        if (h.x !== undefined) this.#xattrs?.write(abs, rel || '.', decodeXattrs(h.x, h.p), { dir: true, exact: true });
        await this.#chown(h, () => fsp.lchown(abs, ...this.#ids(h)));
        await fsp.chmod(abs, h.m & 0o7777);
        await fsp.utimes(abs, this.#atime, this.#mtime(h));
      });
    }
  }
}

/**
 * extractRsync applies one level's stream under `o.target`. Resolves with counts once the whole stream
 * was read and applied; rejects with IntegrityError (corrupted, truncated or out-of-order input),
 * StorageError (disk full, I/O error) or the abort reason.
 */
export async function extractRsync(input: AsyncIterable<Buffer>, o: RsyncRestoreOptions): Promise<RsyncRestoreResult> {
  const r = new Restorer(input, o);
  try {
    await r.run();
  } catch (err) {
    if (err instanceof FloeError || o.signal?.aborted) throw err;
    const code = (err as NodeJS.ErrnoException)?.code;
    if (typeof code === 'string' && code.startsWith('E')) throw new StorageError(`restore: ${errnoMessage(err)}`, { cause: err });
    throw err;
  } finally {
    await r.close();
  }
  return r.result;
}
