/**
 * User extended attributes (`user.*`) of regular files and directories: read them all, or make a path's
 * set exactly a given one. Node has no xattr API: the calls go through the npm package fs-xattr (N-API,
 * built from source by node-gyp at `npm install`), loaded lazily by {@link UserXattrs.ready}.
 *
 * Model.
 * - No symlink is followed (lgetxattr semantics, `follow` aside): a path is opened with O_NOFOLLOW and
 *   the calls go to `/proc/self/fd/N`, which names the opened object itself (fs-xattr's calls are
 *   path-based and follow links). A symlink has no user attributes on Linux: it reads as the empty set.
 *   Where /proc is not mounted, the path is used after an lstat check (a narrow race remains).
 *   Given an open descriptor (`fd`), that object is used, as fgetxattr would.
 * - Degraded, not failed: when the binding cannot load or the file system answers ENOTSUP,
 *   {@link UserXattrs.available} turns false, every later call is a no-op (read: null), and one warning
 *   says so at the first call that needed them (a restore with nothing to set says nothing).
 *   One UserXattrs per backup, and per restore, gives "warned once per backup / per restore".
 * - Bounded: a value larger than {@link MAX_XATTR_VALUE} is refused (warned, skipped), as is anything
 *   beyond {@link MAX_XATTR_TOTAL} bytes of names and values per path.
 * - Per-path problems (permission denied, no room for an attribute on the target file system) are
 *   warnings; EIO and EROFS from a write are thrown (the caller's disk error). ENOSPC from setxattr is a warning:
 *   on ext4 it means "no room in the inode's attribute block", not a full disk.
 * Calls are synchronous: one or two syscalls each, cheaper than a round trip through libuv's pool.
 */
import { closeSync, constants as fsc, existsSync, lstatSync, openSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { errnoMessage } from '../errors.js';

/** MAX_XATTR_VALUE: Linux's own limit (XATTR_SIZE_MAX, 64 KiB); a larger value means a foreign stream. */
export const MAX_XATTR_VALUE = 64 << 10;
/** MAX_XATTR_TOTAL: names and values kept per path. In base64 (4/3) it stays under the 1 MiB an rsync
 * record's JSON may have (format.ts MAX_JSON), with room for the path and the other attributes. */
export const MAX_XATTR_TOTAL = 512 << 10;
/** USER_PREFIX: the only namespace kept (trusted.*, security.* and system.* need privileges or are ACLs). */
export const USER_PREFIX = 'user.';

/** Xattr: one attribute, full name (`user.…`) and value. Lists are sorted by name. */
export type Xattr = [name: string, value: Buffer];

/** XattrBinding: the calls used, fs-xattr's synchronous API. Errors carry `code` (ENOTSUP, ENODATA, …). */
export interface XattrBinding {
  listAttributesSync(path: string): string[];
  getAttributeSync(path: string, name: string): Buffer;
  setAttributeSync(path: string, name: string, value: Buffer): void;
  removeAttributeSync(path: string, name: string): void;
}

export interface UserXattrsOptions {
  /** Receives every warning (the "not supported" one at most once per instance). */
  onWarning(message: string): void;
  /** Follow symlinks (backups with --dereference soft/all). Default false. */
  follow?: boolean;
  /** The binding to use instead of fs-xattr (tests); null: as if it could not load (warned by ready()). */
  binding?: XattrBinding | null;
}

let loading: Promise<XattrBinding | Error> | null = null;

/** loadBinding imports fs-xattr once per process; an Error when it is missing or was not built. */
export function loadBinding(): Promise<XattrBinding | Error> {
  loading ??= import('fs-xattr').then(
    (m) => m as XattrBinding,
    (err: unknown) => (err instanceof Error ? err : new Error(String(err))),
  );
  return loading;
}

const PROC_FD = existsSync('/proc/self/fd');
const FATAL = new Set(['EIO', 'EROFS']);
const UNSUPPORTED = new Set(['ENOTSUP', 'EOPNOTSUPP']);

function codeOf(err: unknown): string {
  return (err as NodeJS.ErrnoException)?.code ?? '';
}

/** reason: one short phrase (fs-xattr's own messages are paragraphs from the man pages). */
function reason(err: unknown): string {
  const code = codeOf(err);
  if (code === 'ENOSPC' || code === 'E2BIG') return 'no room for it on this file system';
  if (code === 'ENODATA') return 'no such attribute';
  if (['EACCES', 'EPERM', 'ENOENT', 'ENOTDIR'].includes(code)) return errnoMessage(err);
  return code || ((err as Error)?.message ?? String(err));
}

/** xattrDigest: 16 bytes of SHA-256 over the sorted list (u32le lengths, names, values); undefined for
 * the empty list. 128 bits: two different sets never compare equal in practice. */
export function xattrDigest(attrs: readonly Xattr[]): Buffer | undefined {
  if (attrs.length === 0) return undefined;
  const h = createHash('sha256');
  const n = Buffer.allocUnsafe(4);
  for (const [name, value] of attrs) {
    const nb = Buffer.from(name, 'utf8');
    n.writeUInt32LE(nb.length, 0); h.update(n); h.update(nb);
    n.writeUInt32LE(value.length, 0); h.update(n); h.update(value);
  }
  return h.digest().subarray(0, 16);
}

/** Where a call goes: the object to name, and the descriptor to close afterwards (ours). */
interface Target { path: string; close: number | null }

export class UserXattrs {
  #b: XattrBinding | null = null;
  #loaded = false;
  /** Why attributes are skipped (binding missing, ENOTSUP); null while they work. */
  #off: string | null = null;
  #warned = false;
  readonly #inject: XattrBinding | null | undefined;
  readonly #follow: boolean;
  /** warn: the sink of warnings; a restore spanning several levels points it at the current one. */
  warn: (message: string) => void;

  constructor(o: UserXattrsOptions) {
    this.warn = o.onWarning;
    this.#follow = o.follow === true;
    this.#inject = o.binding;
  }

  /** available: attributes are read and written (false once degraded, or before ready()). */
  get available(): boolean {
    return this.#b !== null && this.#off === null;
  }

  /** ready loads the binding; when it cannot load, degrades (warned at the first use). Never rejects. */
  async ready(): Promise<void> {
    if (this.#loaded) return;
    this.#loaded = true;
    const b = this.#inject === undefined ? await loadBinding() : this.#inject ?? new Error('no binding');
    if (b instanceof Error) this.#off = `user xattrs skipped: the fs-xattr binding cannot load (${b.message.split('\n')[0]})`;
    else this.#b = b;
  }

  /** unavailable: warns, once, why attributes are skipped (a call found them unavailable). */
  #unavailable(): void {
    if (this.#warned) return;
    this.#warned = true;
    this.warn(this.#off ?? 'user xattrs skipped: the fs-xattr binding is not loaded');
  }

  #degrade(message: string): void {
    this.#off ??= message;
    this.#unavailable();
  }

  /** problem: ENOTSUP degrades (quiet: without a warning yet); EIO/EROFS from a write are thrown;
   * anything else is a warning about `what`. */
  #problem(err: unknown, what: string, o: { quiet?: boolean; write?: boolean } = {}): void {
    const code = codeOf(err);
    const off = `user xattrs skipped: the file system does not support them (${what})`;
    if (UNSUPPORTED.has(code)) { if (o.quiet) this.#off ??= off; else this.#degrade(off); }
    else if (o.write && FATAL.has(code)) throw err;
    else this.warn(`${what}: ${reason(err)}`);
  }

  /** target opens `path` without following a symlink; null for a symlink (no user attributes). */
  #target(path: string, fd: number | undefined, dir: boolean): Target | null {
    if (fd !== undefined) return { path: PROC_FD ? `/proc/self/fd/${fd}` : path, close: null };
    if (!PROC_FD) {
      if (!this.#follow && lstatSync(path).isSymbolicLink()) return null;
      return { path, close: null };
    }
    const flags = fsc.O_RDONLY | fsc.O_NONBLOCK | (dir ? fsc.O_DIRECTORY : 0) | (this.#follow ? 0 : fsc.O_NOFOLLOW);
    try {
      const opened = openSync(path, flags);
      return { path: `/proc/self/fd/${opened}`, close: opened };
    } catch (err) {
      if (codeOf(err) === 'ELOOP') return null;
      throw err;
    }
  }

  /**
   * read returns the `user.*` attributes of `path` sorted by name (or of the open `fd`, `path` then
   * only names it), [] for a symlink; null when they are unknown: degraded, or the path could not be
   * read (warned, named `rel`; but not when it cannot be opened for lack of permission or because it
   * vanished: the caller's own open or listing of it says so). Values over MAX_XATTR_VALUE and names
   * that are not UTF-8 are skipped with a warning.
   */
  read(path: string, rel: string, o: { fd?: number; dir?: boolean } = {}): Xattr[] | null {
    if (!this.available) { this.#unavailable(); return null; }
    let t: Target | null;
    try {
      t = this.#target(path, o.fd, o.dir === true);
    } catch (err) {
      if (!['EACCES', 'EPERM', 'ENOENT', 'ENOTDIR'].includes(codeOf(err))) this.#problem(err, `${rel}: cannot read extended attributes`);
      return null;
    }
    if (t === null) return [];
    try {
      return this.#readAll(t.path, rel);
    } catch (err) {
      this.#problem(err, `${rel}: cannot read extended attributes`);
      return null;
    } finally {
      if (t.close !== null) closeSync(t.close);
    }
  }

  #readAll(path: string, rel: string): Xattr[] {
    const b = this.#b!;
    const names = b.listAttributesSync(path).filter((n) => n.startsWith(USER_PREFIX)).sort();
    const out: Xattr[] = [];
    let total = 0;
    for (const name of names) {
      if (name.includes('\uFFFD')) { this.warn(`${rel}: extended attribute name is not UTF-8: not kept`); continue; }
      let value: Buffer;
      try {
        value = b.getAttributeSync(path, name);
      } catch (err) {
        if (codeOf(err) === 'ENODATA') continue; // removed since the listing
        if (codeOf(err) === 'ERANGE') { this.warn(`${rel}: extended attribute ${name} changed as we read it: not kept`); continue; }
        throw err;
      }
      if (value.length > MAX_XATTR_VALUE) { this.warn(`${rel}: extended attribute ${name} is larger than 64 KiB: not kept`); continue; }
      total += Buffer.byteLength(name) + value.length;
      if (total > MAX_XATTR_TOTAL) { this.warn(`${rel}: extended attributes beyond 512 KiB are not kept (from ${name})`); break; }
      out.push([name, value]);
    }
    return out;
  }

  /**
   * write sets `attrs` on `path` (or on the open `fd`); with `exact`, first removes the `user.*`
   * attributes not in `attrs` (a path that already existed). Problems are warnings (named `rel`);
   * throws only EIO/EROFS errors. A symlink is left alone. Unavailable: warns (once) only when there
   * is an attribute to set.
   */
  write(path: string, rel: string, attrs: readonly Xattr[], o: { fd?: number; dir?: boolean; exact?: boolean } = {}): void {
    if (!this.available) { if (attrs.length > 0) this.#unavailable(); return; }
    if (attrs.length === 0 && !o.exact) return;
    const quiet = attrs.length === 0; // only removals: "not supported" then means none to remove
    let t: Target | null;
    try {
      t = this.#target(path, o.fd, o.dir === true);
    } catch (err) {
      this.#problem(err, `${rel}: cannot set extended attributes`, { quiet, write: true });
      return;
    }
    if (t === null) return;
    const b = this.#b!;
    try {
      if (o.exact) {
        const keep = new Set(attrs.map(([n]) => n));
        for (const n of b.listAttributesSync(t.path)) {
          if (!n.startsWith(USER_PREFIX) || keep.has(n)) continue;
          try {
            b.removeAttributeSync(t.path, n);
          } catch (err) {
            if (codeOf(err) !== 'ENODATA') this.#problem(err, `${rel}: cannot remove extended attribute ${n}`, { quiet, write: true });
            if (!this.available) return;
          }
        }
      }
      for (const [name, value] of attrs) {
        if (!name.startsWith(USER_PREFIX)) { this.warn(`${rel}: extended attribute ${name} is not in the user namespace: not set`); continue; }
        if (value.length > MAX_XATTR_VALUE) { this.warn(`${rel}: extended attribute ${name} is larger than 64 KiB: not set`); continue; }
        try {
          b.setAttributeSync(t.path, name, value);
        } catch (err) {
          this.#problem(err, `${rel}: cannot set extended attribute ${name}`, { write: true });
          if (!this.available) return;
        }
      }
    } catch (err) {
      this.#problem(err, `${rel}: cannot set extended attributes`, { quiet, write: true });
    } finally {
      if (t.close !== null) closeSync(t.close);
    }
  }
}
