/**
 * GNU tar snapshot files (`--listed-incremental`), and the incremental model built on them.
 *
 * The snapshot file is Freezer's `engine_metadata`: it tells the next level what the previous one saw.
 * Format 2, byte for byte as GNU tar 1.34 writes it (incremen.c, write_directory_file):
 *
 *   "GNU tar-1.34-2\n"
 *   <sec>\0<nsec>\0                                   the snapshot time
 *   then per directory:
 *   <nfs 0|1>\0<mtime sec>\0<mtime nsec>\0<dev>\0<ino>\0<name>\0 <entry>\0 <entry>\0 ... \0\0
 *
 * where `name` is the directory as tar named it (`.`, `./sub`), and each entry is one dumpdir record:
 * a letter then a file name (`Yname` dumped by that archive, `Nname` not dumped, `Dname` a subdirectory),
 * sorted by strcmp (tar looks names up with bsearch, both in the next level and at restore). Formats 0 and 1
 * (tar before 1.16: text lines, no dumpdirs) are read too; a directory from them has no dumpdir, so
 * everything in it counts as new, which is what tar does. floe always writes format 2.
 *
 * The incremental rule (GNU tar's, with Freezer's `--no-check-device`): a directory is *new* when the
 * previous snapshot does not list it under the same name and inode; everything below a new directory is
 * dumped. In a known directory, a file is dumped when its name is absent from the previous dumpdir or its
 * mtime or ctime is at or after the previous snapshot time.
 */
import { IntegrityError } from '../../errors.js';

/** SNAPSHOT_HEADER: the first line GNU tar 1.34 writes; tar only checks "GNU tar-" and the trailing "-2". */
export const SNAPSHOT_HEADER = 'GNU tar-1.34-2\n';
/** SNAPSHOT_FORMAT: the snapshot format version floe writes (TAR_INCREMENTAL_VERSION in tar 1.34). */
export const SNAPSHOT_FORMAT = 2;

const BILLION = 1_000_000_000n;
/** CHANGED_MARGIN_MS: how far before the snapshot time changedMs counts a time as changed (2 us). */
const CHANGED_MARGIN_MS = 0.002;

/** SnapshotDirectory is one directory record. */
export interface SnapshotDirectory {
  /** Set by tar for NFS directories (device numbers are then not compared). */
  nfs: boolean;
  /** Directory mtime, ns since the epoch (informational: tar 1.34 takes no decision on it). */
  mtimeNs: bigint;
  dev: bigint;
  ino: bigint;
  /** Directory name as tar writes it: '.', './sub', './sub/deeper' (no trailing slash). */
  name: string;
  /**
   * The dumpdir records, each `<letter><name>\0`, sorted, without the list's final NUL; `null` when the
   * snapshot format had none (formats 0/1): every entry of the directory then counts as new.
   */
  dumpdir: Buffer | null;
}

export interface Snapshot {
  /** Format version read (0, 1 or 2); serializeSnapshot always writes 2. */
  version: number;
  /** Snapshot time, ns since the epoch: files changed at or after it are dumped by the next level. */
  timeNs: bigint;
  directories: SnapshotDirectory[];
}

/** DumpdirRecord is one parsed dumpdir record. */
export interface DumpdirRecord {
  /** 'Y' dumped, 'N' not dumped, 'D' directory (tar also knows R/T/X rename records; floe writes none). */
  kind: string;
  name: string;
}

// ------------------------------------------------------------------------------------------------ times

/** splitNs turns ns since the epoch into (sec, nsec) with 0 <= nsec < 1e9, also for times before 1970. */
export function splitNs(ns: bigint): { sec: bigint; nsec: bigint } {
  let sec = ns / BILLION;
  let nsec = ns % BILLION;
  if (nsec < 0n) {
    sec -= 1n;
    nsec += BILLION;
  }
  return { sec, nsec };
}

// -------------------------------------------------------------------------------------------- dumpdirs

/** buildDumpdir builds dumpdir records (no final NUL) from entries already in strcmp order. */
export function buildDumpdir(entries: DumpdirRecord[]): Buffer {
  return Buffer.from(entries.map((e) => `${e.kind}${e.name}\0`).join(''), 'utf8');
}

/** readDumpdir splits dumpdir records (with or without the final NUL) into entries. */
export function readDumpdir(buf: Buffer): DumpdirRecord[] {
  const out: DumpdirRecord[] = [];
  let start = 0;
  while (start < buf.length) {
    let end = buf.indexOf(0, start);
    if (end < 0) end = buf.length;
    if (end === start) break; // the list terminator
    out.push({ kind: String.fromCharCode(buf[start]), name: buf.toString('utf8', start + 1, end) });
    start = end + 1;
  }
  return out;
}

/** dumpdirNames returns the set of names a dumpdir lists (any letter): "was this name here before?". */
export function dumpdirNames(buf: Buffer): Set<string> {
  const names = new Set<string>();
  for (const e of readDumpdir(buf)) if (e.kind === 'Y' || e.kind === 'N' || e.kind === 'D') names.add(e.name);
  return names;
}

// ------------------------------------------------------------------------------------------- serialize

/** serializeSnapshot writes format 2 exactly as tar 1.34 does (directories in the given order). */
export function serializeSnapshot(s: Snapshot): Buffer {
  const parts: Buffer[] = [];
  const t = splitNs(s.timeNs);
  parts.push(Buffer.from(`${SNAPSHOT_HEADER}${t.sec}\0${t.nsec}\0`, 'latin1'));
  for (const d of s.directories) {
    const m = splitNs(d.mtimeNs);
    parts.push(Buffer.from(`${d.nfs ? 1 : 0}\0${m.sec}\0${m.nsec}\0${d.dev}\0${d.ino}\0${d.name}\0`, 'utf8'));
    if (d.dumpdir && d.dumpdir.length > 0) parts.push(d.dumpdir);
    parts.push(Buffer.from([0, 0]));
  }
  return Buffer.concat(parts);
}

// ----------------------------------------------------------------------------------------------- parse

function corrupt(what: string): IntegrityError {
  return new IntegrityError(`corrupted snapshot file (engine_metadata): ${what}`);
}

/** parseSnapshot reads formats 0, 1 and 2. Throws IntegrityError on a malformed file. */
export function parseSnapshot(buf: Buffer): Snapshot {
  if (buf.length === 0) return { version: SNAPSHOT_FORMAT, timeNs: -(1n << 63n), directories: [] };
  const nl = buf.indexOf(0x0a);
  const first = buf.toString('latin1', 0, nl < 0 ? buf.length : nl);
  const m = /^GNU tar-[^-]*-(\d+)$/.exec(first);
  if (first.startsWith('GNU tar') && !m) throw corrupt('bad format line');
  const version = m ? Number(m[1]) : 0;
  if (version === 2) return parseFormat2(buf, nl + 1);
  if (version === 0 || version === 1) return parseFormat01(buf, version);
  throw corrupt(`unsupported format version ${version}`);
}

/** NulReader walks NUL-terminated fields. */
class NulReader {
  constructor(private readonly buf: Buffer, public pos: number) {}
  get done(): boolean {
    return this.pos >= this.buf.length;
  }
  /** next returns the bytes up to the next NUL and moves past it. */
  next(what: string): Buffer {
    const end = this.buf.indexOf(0, this.pos);
    if (end < 0) throw corrupt(`unexpected end of file in ${what}`);
    const field = this.buf.subarray(this.pos, end);
    this.pos = end + 1;
    return field;
  }
  int(what: string, min?: bigint): bigint {
    const s = this.next(what).toString('latin1');
    if (!/^-?\d+$/.test(s)) throw corrupt(`bad ${what} "${s.slice(0, 40)}"`);
    const v = BigInt(s);
    if (min !== undefined && v < min) throw corrupt(`bad ${what} ${s}`);
    return v;
  }
  timeNs(what: string): bigint {
    const sec = this.int(`${what} seconds`);
    const nsec = this.int(`${what} nanoseconds`, 0n);
    if (nsec >= BILLION) throw corrupt(`bad ${what} nanoseconds ${nsec}`);
    return sec * BILLION + nsec;
  }
}

function parseFormat2(buf: Buffer, start: number): Snapshot {
  const r = new NulReader(buf, start);
  const timeNs = r.timeNs('snapshot time');
  const directories: SnapshotDirectory[] = [];
  while (!r.done) {
    const nfs = r.int('nfs flag', 0n);
    if (nfs > 1n) throw corrupt('bad nfs flag');
    const mtimeNs = r.timeNs('directory mtime');
    const dev = r.int('device number');
    const ino = r.int('inode number');
    const name = r.next('directory name').toString('utf8');
    const begin = r.pos;
    let end = begin;
    for (;;) {
      const field = r.next('dumpdir');
      if (field.length === 0) break;
      end = r.pos;
    }
    if (r.next('record terminator').length !== 0) throw corrupt('missing record terminator');
    directories.push({ nfs: nfs === 1n, mtimeNs, dev, ino, name, dumpdir: Buffer.from(buf.subarray(begin, end)) });
  }
  return { version: 2, timeNs, directories };
}

/** parseFormat01 reads the text formats of tar < 1.16: "[+][mtime_sec mtime_nsec ]dev ino name" lines. */
function parseFormat01(buf: Buffer, version: number): Snapshot {
  const lines = buf.toString('utf8').split('\n');
  let i = 0;
  if (version === 1) i++; // the "GNU tar-x.y-1" line
  const time = /^(-?\d+)(?:[ .](\d+))?/.exec(lines[i++] ?? '');
  if (!time) throw corrupt('bad snapshot time');
  const timeNs = BigInt(time[1]) * BILLION + (version === 1 && time[2] ? BigInt(time[2]) : 0n);
  const directories: SnapshotDirectory[] = [];
  const re = version === 1 ? /^(\+?)(-?\d+) (\d+) (-?\d+) (\d+) (.*)$/ : /^(\+?)(-?\d+) (\d+) (.*)$/;
  for (; i < lines.length; i++) {
    if (lines[i] === '') continue;
    const f = re.exec(lines[i]);
    if (!f) throw corrupt(`bad line ${i + 1}`);
    const v1 = version === 1;
    directories.push({
      nfs: f[1] === '+',
      mtimeNs: v1 ? BigInt(f[2]) * BILLION + BigInt(f[3]) : 0n,
      dev: BigInt(v1 ? f[4] : f[2]),
      ino: BigInt(v1 ? f[5] : f[3]),
      name: unquote(v1 ? f[6] : f[4]),
      dumpdir: null,
    });
  }
  return { version, timeNs, directories };
}

/** unquote undoes tar's quote_copy_string (C escapes) used by the text formats. */
function unquote(s: string): string {
  if (!s.includes('\\')) return s;
  const map: Record<string, string> = { a: '\x07', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v', '\\': '\\' };
  return s.replace(/\\([0-7]{1,3}|.)/g, (_, c: string) =>
    /^[0-7]/.test(c) ? String.fromCharCode(parseInt(c, 8)) : map[c] ?? c);
}

// --------------------------------------------------------------------------------- incremental model

/** Children says which entries of a directory are dumped: tar's ALL_CHILDREN / CHANGED_CHILDREN / NO_CHILDREN. */
export type Children = 'all' | 'changed' | 'none';

/**
 * PreviousState answers the incremental questions against the parent level's snapshot. With no previous
 * snapshot (level 0) every directory is new, so everything is dumped.
 */
export class PreviousState {
  readonly #dirs = new Map<string, SnapshotDirectory>();
  readonly #timeNs: bigint | null;
  readonly #checkDevice: boolean;
  /** The snapshot time in ms less CHANGED_MARGIN_MS, for changedMs (made on first use). */
  #timeMs: number | undefined;

  /**
   * @param checkDevice compare device numbers too. Freezer runs tar with `--no-check-device` (an LVM
   *   snapshot is mounted on a new device at every level), so the default compares inodes only.
   */
  constructor(previous: Snapshot | null, checkDevice = false) {
    this.#timeNs = previous ? previous.timeNs : null;
    this.#checkDevice = checkDevice;
    for (const d of previous?.directories ?? []) this.#dirs.set(d.name, d);
  }

  /** timeNs is the previous snapshot time, or null at level 0. */
  get timeNs(): bigint | null {
    return this.#timeNs;
  }

  /** directory returns the previous record of directory `name` ('.', './sub'), if any. */
  directory(name: string): SnapshotDirectory | undefined {
    return this.#dirs.get(name);
  }

  /**
   * classify decides how a directory's entries are treated. `parent` is the parent's decision (null for the
   * top directory). Returns the previous names when entries must be compared one by one.
   */
  classify(name: string, dev: bigint, ino: bigint, parent: Children | null): { children: Children; previous: Set<string> | null } {
    if (parent === 'all') return { children: 'all', previous: null };
    const prev = this.#dirs.get(name);
    if (!prev || prev.dumpdir === null) return { children: 'all', previous: null };
    const sameDevice = !this.#checkDevice || prev.nfs || prev.dev === dev;
    if (!sameDevice || prev.ino !== ino) return { children: 'all', previous: null };
    return { children: 'changed', previous: dumpdirNames(prev.dumpdir) };
  }

  /** changed: mtime or ctime at or after the previous snapshot time (always true at level 0). */
  changed(mtimeNs: bigint, ctimeNs: bigint): boolean {
    return this.#timeNs === null || mtimeNs >= this.#timeNs || ctimeNs >= this.#timeNs;
  }

  /**
   * changedMs is `changed` for the millisecond times of a plain (not bigint) stat, which the scan uses for
   * files: a bigint stat makes ~20 BigInts and Dates per entry. A double holds today's times in ms to
   * ~0.25 us, and the snapshot time is taken to the whole microsecond, so a file counts as changed from
   * CHANGED_MARGIN_MS before the snapshot time on: the error can only re-dump a file, never miss one.
   */
  changedMs(mtimeMs: number, ctimeMs: number): boolean {
    if (this.#timeNs === null) return true;
    if (this.#timeMs === undefined) {
      const ms = Number(this.#timeNs / 1000n) / 1000;
      // far from 1970 (before ~1691, after ~2248) a double's step passes 0.5 us: 4 steps cover both roundings
      this.#timeMs = ms - Math.max(CHANGED_MARGIN_MS, 4 * Math.abs(ms) * 2 ** -52);
    }
    return mtimeMs >= this.#timeMs || ctimeMs >= this.#timeMs;
  }
}
