/**
 * Freezer's consistency checksum (`--consistency-check` / `--consistency-checksum`), bit-compatible with
 * freezer/utils/checksum.py (CheckSum) and freezer/utils/utils.py (walk_path) of freezer-agent 13.
 *
 * The model, quirks included (each one changes the value, so each one is reproduced):
 * - One SHA-256 hasher is fed for the whole walk and never reset. Every item (a file's bytes, or a path
 *   string) is fed to it, and the item's result `h` is the running hex digest. The accumulated value starts
 *   as the first `h`; after that each item also feeds the text `acc + h` and `acc` becomes the running
 *   digest again.
 * - A directory path is walked like Python's `os.walk('.', topdown=True, followlinks=True)` after a chdir:
 *   entries in raw readdir order (not sorted), each directory's own path (`.`, `./a`) first, then its
 *   non-directory entries (`./a/x`), then its subdirectories, depth first. Symlinks to directories count
 *   as directories and are followed. Subdirectories that cannot be listed are skipped silently.
 * - A regular file (or, with links not ignored, a symlink to one) contributes its bytes; everything else
 *   (directories, FIFOs, devices, sockets, dangling or ignored symlinks) contributes its path string,
 *   escaped as Python's `unicode-escape` codec does (`é` -> `\xe9`, `\` -> `\\`).
 * - With `ignoreLinks` (Freezer's default) the whole walk STOPS at the first directory that is a symlink,
 *   after hashing that directory's path (walk_path `break`s out of the loop).
 * - When only one item was hashed, the name is appended to the 64 hex characters: the file name for a
 *   single-file backup, and `.` for an empty directory (Freezer checksums `.` after a chdir).
 * - On restore, Freezer takes the characters after the first 64 as a name to join to the restore path
 *   (see {@link checksumTargetPath}) and compares only the 64 hex characters.
 *
 * Memory: files are read in 1 MiB blocks (Freezer's blocksize), never whole; the walk holds one directory
 * listing per level of depth.
 */
import { createHash, type Hash } from 'node:crypto';
import type { Dir, Dirent } from 'node:fs';
import { lstat, open, opendir, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { SourceError, errnoMessage } from '../errors.js';

/** BLOCK_SIZE: Freezer's CheckSum blocksize (1 MiB); the value does not change the digest, only memory. */
const BLOCK_SIZE = 1 << 20;
/** HEX_LENGTH: the length of a SHA-256 hex digest, Freezer's `hasher_size`. */
const HEX_LENGTH = 64;

export interface TreeChecksumOptions {
  /**
   * One fnmatch pattern, as Freezer's `exclude`: a path is skipped when any of its components matches.
   * Freezer's agent never passes one (its checksum ignores `--exclude`); default '' skips nothing.
   */
  exclude?: string;
  /**
   * Hash symlinks as their path instead of following them, and stop at the first symlinked directory.
   * Default true: what freezer-agent uses unless `--dereference-symlink soft|all` is given.
   */
  ignoreLinks?: boolean;
  /** Aborting it stops the walk between blocks. */
  signal?: AbortSignal;
}

/**
 * treeChecksum computes Freezer's consistency checksum of `path` (a directory or a regular file), the
 * value freezer-agent stores as `consistency_checksum` when it backs up that path. Rejects with a
 * SourceError when `path` or a file in it cannot be read.
 */
export async function treeChecksum(path: string, options: TreeChecksumOptions = {}): Promise<string> {
  const run = new ChecksumRun(options);
  const st = await stat(path).catch((err: unknown) => { throw cannotRead(path, err); });
  if (st.isFile()) {
    // Freezer chdirs to the parent and checksums the base name.
    const name = basename(path);
    const isLink = await isSymlink(path);
    if (isLink && run.ignoreLinks) run.addString(Buffer.from(name));
    else await run.addFile(path);
    return run.result() + name;
  }
  if (!st.isDirectory()) throw new SourceError(`consistency check: ${path} is not a file or directory`);
  await run.walk(path);
  return run.count === 1 ? run.result() + '.' : run.result();
}

/**
 * checksumMatches compares a stored checksum with a computed one the way Freezer does: only the first
 * 64 hex characters count; a file name appended to either is not compared (it only says where to compute,
 * see {@link checksumTargetPath}).
 */
export function checksumMatches(expected: string, actual: string): boolean {
  return expected.slice(0, HEX_LENGTH).toLowerCase() === actual.slice(0, HEX_LENGTH).toLowerCase();
}

/**
 * checksumTargetPath returns the path whose {@link treeChecksum} a restore compares with `expected`:
 * `restoreDir` itself, or `restoreDir/NAME` when `expected` carries a file name after its 64 hex characters
 * (single-file backups). Usage: `checksumMatches(x, await treeChecksum(checksumTargetPath(dir, x)))`.
 */
export function checksumTargetPath(restoreDir: string, expected: string): string {
  return expected.length > HEX_LENGTH ? join(restoreDir, expected.slice(HEX_LENGTH)) : restoreDir;
}


/** ChecksumRun holds the never-reset hasher, the accumulated value and the item count of one checksum. */
class ChecksumRun {
  readonly ignoreLinks: boolean;
  readonly #exclude: string;
  readonly #excludeRe: RegExp | undefined;
  readonly #signal: AbortSignal | undefined;
  readonly #hasher: Hash = createHash('sha256');
  #acc = '';
  count = 0;

  constructor(options: TreeChecksumOptions) {
    this.ignoreLinks = options.ignoreLinks ?? true;
    this.#exclude = options.exclude ?? '';
    this.#excludeRe = fnmatchRegExp(this.#exclude);
    this.#signal = options.signal;
  }

  /** result is Freezer's `real_checksum` ('' when nothing was hashed). */
  result(): string {
    return this.#acc;
  }

  /** addString feeds a path string, given as its file-system bytes (decoded and escaped as Python does). */
  addString(bytes: Buffer): void {
    this.#hasher.update(pythonUnicodeEscape(bytes));
    this.#itemDone();
  }

  /** addFile feeds a file's bytes, one 1 MiB block at a time. */
  async addFile(path: string | Buffer): Promise<void> {
    const fh = await open(path, 'r').catch((err: unknown) => { throw cannotRead(path, err); });
    try {
      const block = Buffer.allocUnsafe(BLOCK_SIZE);
      for (;;) {
        this.#signal?.throwIfAborted();
        const { bytesRead } = await fh.read(block, 0, BLOCK_SIZE, null)
          .catch((err: unknown) => { throw cannotRead(path, err); });
        if (bytesRead === 0) break;
        this.#hasher.update(block.subarray(0, bytesRead));
      }
    } finally {
      await fh.close();
    }
    this.#itemDone();
  }

  /** #itemDone is CheckSum.get_hash after the item was fed: chain the running digest into the result. */
  #itemDone(): void {
    const h = this.#hasher.copy().digest('hex');
    if (this.#acc === '') {
      this.#acc = h;
    } else {
      this.#hasher.update(this.#acc + h, 'latin1');
      this.#acc = this.#hasher.copy().digest('hex');
    }
    this.count++;
  }

  /**
   * walk reproduces walk_path over `os.walk('.', topdown=True, followlinks=True)`. `top` is the real
   * directory; hashed paths are relative ('.', './a', ...) and kept as bytes, so names that are not UTF-8
   * hash as Python sees them (surrogate escapes). A stack keeps the pre-order of Python's recursion.
   */
  async walk(top: string): Promise<void> {
    const topBytes = Buffer.from(top);
    const stack: Buffer[] = [Buffer.from('.')];
    while (stack.length > 0) {
      this.#signal?.throwIfAborted();
      const rel = stack.pop()!;
      const full = realPath(topBytes, rel);
      const listing = await listDir(full);
      if ('error' in listing) {
        // os.walk skips what it cannot list. For the top directory Freezer fails its chdir or silently
        // checksums nothing: an error is the useful answer.
        if (rel.length === 1) throw cannotRead(top, listing.error);
        continue;
      }
      if (!this.#excluded(rel)) {
        this.addString(rel);
        if (this.ignoreLinks && rel.length > 1 && (await isSymlink(full))) return; // walk_path's `break`
        for (const file of listing.files) {
          const child = childPath(rel, file.name);
          if (this.#excluded(child)) continue;
          const childFull = realPath(topBytes, child);
          if (!(file.isLink && this.ignoreLinks) && (await isRegularFile(childFull))) await this.addFile(childFull);
          else this.addString(child);
        }
      }
      for (let i = listing.dirs.length - 1; i >= 0; i--) stack.push(childPath(rel, listing.dirs[i]!));
    }
  }

  /** #excluded is utils.exclude_path: any component matches the pattern, or the base name equals it. */
  #excluded(rel: Buffer): boolean {
    const parts: string[] = [];
    let start = 0;
    for (let i = 0; i <= rel.length; i++) {
      if (i === rel.length || rel[i] === 0x2f) {
        parts.push(pythonDecode(rel.subarray(start, i)));
        start = i + 1;
      }
    }
    const base = parts[parts.length - 1]!;
    const re = this.#excludeRe;
    return parts.some((part) => (re ? re.test(part) : part === this.#exclude) || base === this.#exclude);
  }
}

interface Listing {
  /** Entries that are directories, or symlinks to directories (os.walk's `dirs`), in readdir order. */
  dirs: Buffer[];
  /** Every other entry (os.walk's `nondirs`), in readdir order. */
  files: { name: Buffer; isLink: boolean }[];
}

/**
 * listDir lists a directory in raw readdir order, as Python's scandir does (fs.readdir would sort it:
 * libuv's scandir sorts), or says why it cannot.
 */
async function listDir(path: Buffer): Promise<Listing | { error: unknown }> {
  const listing: Listing = { dirs: [], files: [] };
  let dir: Dir;
  try {
    // encoding 'buffer' is supported at run time (names as Buffers) but missing from the typings.
    dir = await opendir(path, { encoding: 'buffer' as BufferEncoding });
  } catch (error) {
    return { error };
  }
  try {
    for await (const entry of dir as AsyncIterable<Dirent>) {
      const name = entry.name as unknown as Buffer;
      if (entry.isDirectory()) {
        listing.dirs.push(name);
      } else if (entry.isSymbolicLink()) {
        // DirEntry.is_dir() follows symlinks; an error (dangling link, loop) means "not a directory".
        const target = await stat(Buffer.concat([path, SLASH, name])).catch(() => undefined);
        if (target?.isDirectory()) listing.dirs.push(name);
        else listing.files.push({ name, isLink: true });
      } else {
        listing.files.push({ name, isLink: false });
      }
    }
  } catch (error) {
    return { error }; // os.walk drops a directory whose listing fails half-way
  }
  return listing;
}

const SLASH = Buffer.from('/');

function childPath(rel: Buffer, name: Buffer): Buffer {
  return Buffer.concat([rel, SLASH, name]);
}

/** realPath maps a walk path ('.', './a/b') under the real top directory. */
function realPath(top: Buffer, rel: Buffer): Buffer {
  return rel.length === 1 ? top : Buffer.concat([top, rel.subarray(1)]);
}

async function isSymlink(path: string | Buffer): Promise<boolean> {
  return lstat(path).then((s) => s.isSymbolicLink(), () => false);
}

async function isRegularFile(path: Buffer): Promise<boolean> {
  return stat(path).then((s) => s.isFile(), () => false);
}

function cannotRead(path: string | Buffer, err: unknown): SourceError {
  return new SourceError(`consistency check: cannot read ${String(path)}: ${errnoMessage(err)}`, { cause: err });
}

/**
 * pythonDecode decodes file-system bytes as Python does (UTF-8, errors='surrogateescape'): every byte
 * that is not part of a well-formed UTF-8 sequence becomes the lone surrogate U+DC80..U+DCFF.
 */
function pythonDecode(bytes: Buffer): string {
  let out = '';
  for (let i = 0; i < bytes.length;) {
    const len = utf8SequenceLength(bytes, i);
    if (len === 0) {
      out += String.fromCharCode(0xdc00 + bytes[i]!);
      i++;
    } else {
      out += bytes.toString('utf8', i, i + len);
      i += len;
    }
  }
  return out;
}

/** utf8SequenceLength is the length of the well-formed UTF-8 sequence at `i` (RFC 3629), 0 if none. */
function utf8SequenceLength(b: Buffer, i: number): number {
  const c = b[i]!;
  if (c < 0x80) return 1;
  let n: number;
  let cp: number;
  if (c >= 0xc2 && c <= 0xdf) { n = 1; cp = c & 0x1f; }
  else if (c >= 0xe0 && c <= 0xef) { n = 2; cp = c & 0x0f; }
  else if (c >= 0xf0 && c <= 0xf4) { n = 3; cp = c & 0x07; }
  else return 0;
  for (let k = 1; k <= n; k++) {
    const cc = b[i + k];
    if (cc === undefined || (cc & 0xc0) !== 0x80) return 0;
    cp = (cp << 6) | (cc & 0x3f);
  }
  const min = n === 1 ? 0x80 : n === 2 ? 0x800 : 0x10000;
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
  return n + 1;
}

/**
 * pythonUnicodeEscape returns `str.encode('unicode-escape')` of the Python string the bytes decode to:
 * printable ASCII as is (backslash doubled), \t \n \r, other code points below 256 as \xhh, the rest as
 * \uhhhh or \Uhhhhhhhh (lower-case hex, as CPython).
 */
export function pythonUnicodeEscape(bytes: Buffer): Buffer {
  let out = '';
  for (const ch of pythonDecode(bytes)) {
    const cp = ch.codePointAt(0)!;
    if (cp >= 0x20 && cp < 0x7f) out += cp === 0x5c ? '\\\\' : ch;
    else if (cp === 0x09) out += '\\t';
    else if (cp === 0x0a) out += '\\n';
    else if (cp === 0x0d) out += '\\r';
    else if (cp < 0x100) out += '\\x' + cp.toString(16).padStart(2, '0');
    else if (cp < 0x10000) out += '\\u' + cp.toString(16).padStart(4, '0');
    else out += '\\U' + cp.toString(16).padStart(8, '0');
  }
  return Buffer.from(out, 'latin1');
}

/**
 * fnmatchRegExp translates a Python fnmatch pattern (`*`, `?`, `[seq]`, `[!seq]`) into an anchored
 * RegExp. Undefined for '' and for patterns the translation rejects (a reversed range): those match by
 * equality only.
 */
function fnmatchRegExp(pattern: string): RegExp | undefined {
  if (pattern === '') return undefined;
  const chars = Array.from(pattern);
  let re = '';
  for (let i = 0; i < chars.length;) {
    const c = chars[i++]!;
    if (c === '*') {
      re += '.*';
      while (chars[i] === '*') i++;
    } else if (c === '?') {
      re += '.';
    } else if (c === '[') {
      let j = i;
      if (chars[j] === '!') j++;
      if (chars[j] === ']') j++;
      while (j < chars.length && chars[j] !== ']') j++;
      if (j >= chars.length) {
        re += '\\[';
        continue;
      }
      let set = chars.slice(i, j);
      i = j + 1;
      const negate = set[0] === '!';
      if (negate) set = set.slice(1);
      re += '[' + (negate ? '^' : '') + set.map((s) => (s === '-' ? s : escapeRegExp(s))).join('') + ']';
    } else {
      re += escapeRegExp(c);
    }
  }
  try {
    return new RegExp(`^(?:${re})$`, 'su');
  } catch {
    return undefined;
  }
}

function escapeRegExp(s: string): string {
  return /[\\^$.*+?()[\]{}|/]/.test(s) ? '\\' + s : s;
}
