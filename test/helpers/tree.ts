/**
 * Test trees: build them from a declarative spec, describe them deterministically, compare two
 * descriptions, and mutate them between incremental backups.
 *
 * Model: a TreeSpec maps relative paths to entries (a string value is a text file). `createTree` makes
 * parents as needed, then applies owners, modes and mtimes once everything exists, so the mtimes it sets
 * are the ones a snapshot sees. Every entry has a fixed mtime unless a mutation touched it.
 * `snapshotTree` describes every entry (lstat, never following links) by relative path; `compareTrees`
 * lists the differences in words. Entries that need root (char devices, foreign owners) are skipped, and
 * reported, when not root.
 *
 * Memory: files are written and hashed in 64 KiB blocks, never whole.
 */
import { createCipheriv, createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { createReadStream } from 'node:fs';
import * as fs from 'node:fs/promises';
import { dirname, join } from 'node:path';

export const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;

/** DEFAULT_MTIME: 2020-09-13T12:26:40Z, whole seconds, so snapshots are stable from run to run. */
export const DEFAULT_MTIME = 1_600_000_000;
/** FOREIGN_ID: the uid/gid given to "other owner" entries (only when root). */
export const FOREIGN_ID = 1234;

interface Common {
  mode?: number;
  mtime?: number;
  uid?: number;
  gid?: number;
}
export type EntrySpec =
  /** A regular file: `content`, or `random` bytes (seeded, reproducible), or `text` bytes (compressible). */
  | (Common & { type: 'file'; content?: string | Buffer; random?: number; text?: number; seed?: number })
  | (Common & { type: 'dir' })
  | (Common & { type: 'symlink'; target: string })
  /** A hard link to `target`, another regular file of the spec (owner, mode and mtime are the target's). */
  | { type: 'hardlink'; target: string }
  | (Common & { type: 'fifo' })
  /** A character device (root only). */
  | (Common & { type: 'chardev'; major: number; minor: number })
  /** A file of `size` bytes that is a hole except for the `data` ranges [offset, length] (seeded bytes). */
  | (Common & { type: 'sparse'; size: number; data: Array<[number, number]>; seed?: number });
/** TreeSpec: relative path -> entry; '.' gives the root directory's attributes. */
export type TreeSpec = Record<string, EntrySpec | string>;

export interface CreateResult {
  /** Entries (or attributes) not created, each as "path: reason" (root-only features when not root). */
  skipped: string[];
}

/** createTree builds `spec` under `dir` (created if missing). */
export async function createTree(dir: string, spec: TreeSpec = standardTree()): Promise<CreateResult> {
  const skipped: string[] = [];
  await fs.mkdir(dir, { recursive: true });
  const entries = Object.entries(spec).map(([path, e]) => [path, typeof e === 'string' ? { type: 'file', content: e } : e] as [string, EntrySpec]);
  const order: EntrySpec['type'][] = ['dir', 'file', 'sparse', 'hardlink', 'symlink', 'fifo', 'chardev'];
  entries.sort((a, b) => order.indexOf(a[1].type) - order.indexOf(b[1].type));
  for (const [rel, e] of entries) {
    const path = join(dir, rel);
    if (rel !== '.') await fs.mkdir(dirname(path), { recursive: true });
    if (e.type === 'chardev' && !isRoot) {
      skipped.push(`${rel}: character devices need root`);
      continue;
    }
    await makeEntry(dir, path, e);
  }
  // Attributes last, once nothing more is created in any directory: chown before chmod (chown clears
  // setuid), then mtimes (a hard link shares its target's).
  const withAttrs = entries.filter((x): x is [string, Exclude<EntrySpec, { type: 'hardlink' }>] =>
    x[1].type !== 'hardlink' && !(x[1].type === 'chardev' && !isRoot));
  for (const [rel, e] of withAttrs) {
    const path = join(dir, rel);
    if (e.uid !== undefined || e.gid !== undefined) {
      if (isRoot) await fs.lchown(path, e.uid ?? 0, e.gid ?? 0);
      else skipped.push(`${rel}: owner ${e.uid}:${e.gid} needs root`);
    }
    if (e.type !== 'symlink') await fs.chmod(path, e.mode ?? defaultMode(e.type));
  }
  for (const [rel, e] of withAttrs) await fs.lutimes(join(dir, rel), e.mtime ?? DEFAULT_MTIME, e.mtime ?? DEFAULT_MTIME);
  // Parents created implicitly (not in the spec) get the default mtime too.
  for (const d of implicitDirs(spec)) await fs.lutimes(join(dir, d), DEFAULT_MTIME, DEFAULT_MTIME);
  if (!('.' in spec)) await fs.lutimes(dir, DEFAULT_MTIME, DEFAULT_MTIME);
  return { skipped };
}

function defaultMode(type: EntrySpec['type']): number {
  return type === 'dir' ? 0o755 : 0o644;
}

function implicitDirs(spec: TreeSpec): string[] {
  const out = new Set<string>();
  for (const rel of Object.keys(spec)) {
    for (let d = dirname(rel); d !== '.' && d !== '/'; d = dirname(d)) if (!(d in spec)) out.add(d);
  }
  return [...out];
}

async function makeEntry(root: string, path: string, e: EntrySpec): Promise<void> {
  switch (e.type) {
    case 'dir':
      await fs.mkdir(path, { recursive: true });
      return;
    case 'file':
      if (e.random !== undefined) await writeBlocks(path, randomBlocks(e.random, e.seed ?? 1));
      else if (e.text !== undefined) await writeBlocks(path, textBlocks(e.text, e.seed ?? 1));
      else await fs.writeFile(path, e.content ?? '');
      return;
    case 'sparse': {
      const fh = await fs.open(path, 'w');
      try {
        await fh.truncate(e.size);
        for (const [offset, length] of e.data) {
          let at = offset;
          for (const block of randomBlocks(length, (e.seed ?? 7) + offset)) {
            await fh.write(block, 0, block.length, at);
            at += block.length;
          }
        }
      } finally {
        await fh.close();
      }
      return;
    }
    case 'hardlink':
      await fs.link(join(root, e.target), path);
      return;
    case 'symlink':
      await fs.symlink(e.target, path);
      return;
    case 'fifo':
      execFileSync('mkfifo', [path]);
      return;
    case 'chardev':
      execFileSync('mknod', [path, 'c', String(e.major), String(e.minor)]);
      return;
  }
}

const BLOCK = 64 * 1024;

/** randomBlocks yields `size` reproducible pseudo-random bytes (AES-128-CTR of zeros keyed by the seed). */
export function* randomBlocks(size: number, seed: number): Generator<Buffer> {
  const key = createHash('sha256').update(`floe-test-${seed}`).digest().subarray(0, 16);
  const cipher = createCipheriv('aes-128-ctr', key, Buffer.alloc(16));
  const zeros = Buffer.alloc(BLOCK);
  for (let left = size; left > 0; left -= BLOCK) yield cipher.update(zeros.subarray(0, Math.min(BLOCK, left)));
}

/** textBlocks yields `size` bytes of log-like text: compressible but not trivially. */
export function* textBlocks(size: number, seed: number): Generator<Buffer> {
  let line = 0;
  let pending = '';
  for (let left = size; left > 0;) {
    while (pending.length < BLOCK) pending += `${seed}:${line} INFO request ${(line * 7919) % 10007} served in ${line % 97} ms\n`, line++;
    const n = Math.min(BLOCK, left);
    yield Buffer.from(pending.slice(0, n), 'latin1');
    pending = pending.slice(n);
    left -= n;
  }
}

async function writeBlocks(path: string, blocks: Iterable<Buffer>): Promise<void> {
  const fh = await fs.open(path, 'w');
  try {
    for (const b of blocks) await fh.write(b);
  } finally {
    await fh.close();
  }
}

/**
 * standardTree: every file type in a few MB. Sizes can be scaled down with `big` (bytes of the largest
 * random file, default 1.5 MiB) and `text` (bytes of the compressible log file, default 512 KiB).
 */
export function standardTree(options: { big?: number; text?: number } = {}): TreeSpec {
  const big = options.big ?? 1536 * 1024;
  const text = options.text ?? 512 * 1024;
  // Path components are at most 255 bytes; nested directories make paths of more than 100 and 255 bytes.
  const longDir = `long/${'d'.repeat(120)}/${'e'.repeat(120)}`;
  return {
    '.': { type: 'dir', mode: 0o755 },
    'README.txt': 'floe test tree\n',
    'empty.txt': { type: 'file', content: '' },
    'data/random.bin': { type: 'file', random: 200 * 1024, seed: 1 },
    'data/big.bin': { type: 'file', random: big, seed: 2 },
    'data/log.txt': { type: 'file', text, seed: 3 },
    'data/nested/deep/leaf.txt': 'leaf\n',
    'modes/private': { type: 'file', content: 'secret\n', mode: 0o600 },
    'modes/exec.sh': { type: 'file', content: '#!/bin/sh\necho hi\n', mode: 0o755 },
    'modes/setuid': { type: 'file', content: 'suid\n', mode: 0o4755 },
    'modes/dir700': { type: 'dir', mode: 0o700 },
    'modes/dir700/inside': 'inside\n',
    'empty-dir': { type: 'dir' },
    'nested/empty/deeper': { type: 'dir' },
    'links/relative': { type: 'symlink', target: '../README.txt' },
    'links/absolute': { type: 'symlink', target: '/etc/hostname' },
    'links/dangling': { type: 'symlink', target: 'does/not/exist' },
    'links/to-dir': { type: 'symlink', target: '../data/nested' },
    'hard/original': { type: 'file', content: 'linked content\n' },
    'hard/second': { type: 'hardlink', target: 'hard/original' },
    'hard/sub/third': { type: 'hardlink', target: 'hard/original' },
    'special/fifo': { type: 'fifo' },
    'special/null': { type: 'chardev', major: 1, minor: 3 },
    'sparse/holes.img': { type: 'sparse', size: 2 * 1024 * 1024, data: [[0, 4096], [1024 * 1024, 8192]] },
    'unicode/héllo wörld ☃.txt': 'unicode\n',
    'unicode/日本語/ファイル.txt': 'japanese\n',
    'unicode/emoji 😀.txt': 'emoji\n',
    'weird/name with spaces ': 'spaces\n',
    "weird/quote's \"and\" back\\slash": 'quotes\n',
    [`long/${'n'.repeat(200)}.txt`]: 'name of 204 bytes\n',
    [`long/${'m'.repeat(255)}`]: 'name of 255 bytes\n',
    [`${longDir}/${'f'.repeat(100)}.txt`]: 'path of more than 255 bytes\n',
    'owned/file': { type: 'file', content: 'not mine\n', uid: FOREIGN_ID, gid: FOREIGN_ID },
    'owned/dir': { type: 'dir', uid: FOREIGN_ID, gid: FOREIGN_ID, mode: 0o750 },
  };
}

export type EntryType = 'file' | 'dir' | 'symlink' | 'fifo' | 'chardev' | 'blockdev' | 'socket';
export interface EntryInfo {
  type: EntryType;
  /** Permission bits with setuid/setgid/sticky (st_mode & 0o7777). */
  mode: number;
  uid: number;
  gid: number;
  /** Size in bytes (regular files; 0 otherwise). */
  size: number;
  /** SHA-256 of the content (regular files). */
  sha256?: string;
  /** Modification time in whole seconds. */
  mtime: number;
  /** Symlink target. */
  target?: string;
  /** Hard-link group: the smallest relative path of the tree sharing this inode (files with links). */
  link?: string;
  /** Device number (device files). */
  rdev?: number;
  /** True when the file has holes (fewer bytes allocated than its size). */
  sparse?: boolean;
}
/** TreeSnapshot: relative path ('.' for the root) -> description, keys sorted. */
export type TreeSnapshot = Record<string, EntryInfo>;

/** snapshotTree describes every entry under `dir` (and `dir` itself as '.'), never following links. */
export async function snapshotTree(dir: string): Promise<TreeSnapshot> {
  const out: Record<string, EntryInfo> = {};
  const inodes = new Map<string, string[]>();
  const visit = async (rel: string): Promise<void> => {
    const path = rel === '.' ? dir : join(dir, rel);
    const st = await fs.lstat(path);
    const info: EntryInfo = {
      type: typeOf(st),
      mode: st.mode & 0o7777,
      uid: st.uid,
      gid: st.gid,
      size: st.isFile() ? st.size : 0,
      mtime: Math.floor(st.mtimeMs / 1000),
    };
    if (st.isFile()) {
      info.sha256 = await sha256File(path);
      info.sparse = st.blocks * 512 < st.size;
      if (st.nlink > 1) {
        const key = `${st.dev}:${st.ino}`;
        inodes.set(key, [...(inodes.get(key) ?? []), rel]);
        info.link = key;
      }
    }
    if (st.isSymbolicLink()) info.target = await fs.readlink(path);
    if (st.isCharacterDevice() || st.isBlockDevice()) info.rdev = st.rdev;
    out[rel] = info;
    if (st.isDirectory()) {
      for (const name of (await fs.readdir(path)).sort()) await visit(rel === '.' ? name : `${rel}/${name}`);
    }
  };
  await visit('.');
  for (const paths of inodes.values()) {
    const leader = [...paths].sort()[0]!;
    for (const p of paths) out[p]!.link = leader;
  }
  const sorted: TreeSnapshot = {};
  for (const k of Object.keys(out).sort()) sorted[k] = out[k]!;
  return sorted;
}

function typeOf(st: import('node:fs').Stats): EntryType {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isFIFO()) return 'fifo';
  if (st.isCharacterDevice()) return 'chardev';
  if (st.isBlockDevice()) return 'blockdev';
  return 'socket';
}

export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: BLOCK })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** What compareTrees may be told to ignore. */
export type IgnoreField =
  | 'mtime' /** all mtimes */
  | 'dirMtime' /** directory mtimes only */
  | 'symlinkMtime'
  | 'owner' /** uid and gid */
  | 'mode'
  | 'sparse'
  | 'hardlinks' /** hard-link groups */
  | 'root'; /** the root directory's own attributes */

export interface CompareOptions {
  ignore?: IgnoreField[];
}

/** compareTrees lists the differences between two snapshots, one line each; [] when equal. */
export function compareTrees(a: TreeSnapshot, b: TreeSnapshot, options: CompareOptions = {}): string[] {
  const ignore = new Set(options.ignore ?? []);
  const diffs: string[] = [];
  const paths = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
  for (const p of paths) {
    const x = a[p];
    const y = b[p];
    if (!x) { diffs.push(`${p}: unexpected ${y!.type}`); continue; }
    if (!y) { diffs.push(`${p}: missing ${x.type}`); continue; }
    if (x.type !== y.type) { diffs.push(`${p}: type ${x.type} became ${y.type}`); continue; }
    if (p === '.' && ignore.has('root')) continue;
    const check = (field: string, u: unknown, v: unknown, show: (z: unknown) => string = String) => {
      if (u !== v) diffs.push(`${p}: ${field} ${show(u)} became ${show(v)}`);
    };
    if (!ignore.has('mode') && x.type !== 'symlink') check('mode', x.mode, y.mode, (m) => (m as number).toString(8).padStart(4, '0'));
    if (!ignore.has('owner')) check('owner', `${x.uid}:${x.gid}`, `${y.uid}:${y.gid}`);
    const mtimeIgnored = ignore.has('mtime') || (x.type === 'dir' && ignore.has('dirMtime')) || (x.type === 'symlink' && ignore.has('symlinkMtime'));
    if (!mtimeIgnored) check('mtime', x.mtime, y.mtime, (t) => new Date((t as number) * 1000).toISOString());
    check('size', x.size, y.size);
    check('content', x.sha256, y.sha256, (h) => String(h).slice(0, 12));
    check('symlink target', x.target, y.target);
    check('device', x.rdev, y.rdev);
    if (!ignore.has('hardlinks')) check('hard-link group', x.link, y.link);
    if (!ignore.has('sparse')) check('sparse', x.sparse, y.sparse);
  }
  return diffs;
}

/** withoutPaths returns a copy of `snap` without the entries `drop` selects (e.g. excluded by a pattern). */
export function withoutPaths(snap: TreeSnapshot, drop: (path: string) => boolean): TreeSnapshot {
  const out: TreeSnapshot = {};
  for (const [p, e] of Object.entries(snap)) if (!drop(p)) out[p] = e;
  return out;
}

/**
 * mutate: changes made between incremental backups. Each works on `root`-relative paths, keeps the
 * change's natural mtime/ctime (now), as a user's edit would, so GNU tar's incremental rules see it.
 */
export const mutate = {
  /** change rewrites a file in place (same inode) with new content. */
  async change(root: string, rel: string, content: string | Buffer): Promise<void> {
    await fs.writeFile(join(root, rel), content);
  },
  /** append adds bytes at the end of a file. */
  async append(root: string, rel: string, content: string | Buffer): Promise<void> {
    await fs.appendFile(join(root, rel), content);
  },
  /** add creates a new file (and its parents). */
  async add(root: string, rel: string, content: string | Buffer): Promise<void> {
    await fs.mkdir(dirname(join(root, rel)), { recursive: true });
    await fs.writeFile(join(root, rel), content);
  },
  /** delete removes a file, link or whole directory. */
  async delete(root: string, rel: string): Promise<void> {
    await fs.rm(join(root, rel), { recursive: true, force: false });
  },
  /** renameFile moves a file (or link) to a new path, creating parents. */
  async renameFile(root: string, from: string, to: string): Promise<void> {
    await fs.mkdir(dirname(join(root, to)), { recursive: true });
    await fs.rename(join(root, from), join(root, to));
  },
  /** renameDir moves a whole directory. */
  async renameDir(root: string, from: string, to: string): Promise<void> {
    await fs.mkdir(dirname(join(root, to)), { recursive: true });
    await fs.rename(join(root, from), join(root, to));
  },
  /** chmod changes permission bits only (content and mtime stay). */
  async chmod(root: string, rel: string, mode: number): Promise<void> {
    await fs.chmod(join(root, rel), mode);
  },
  /** symlink replaces whatever is at `rel` by a symlink to `target` (a type change). */
  async symlink(root: string, rel: string, target: string): Promise<void> {
    await fs.rm(join(root, rel), { recursive: true, force: true });
    await fs.symlink(target, join(root, rel));
  },
};
