/**
 * Freezer's storage layout (reference/freezer.md §2.1), byte for byte, so floe and freezer-agent read each
 * other's backups in one container.
 *
 *   data/<engine>/<hostname_backupname>/<T0>/<L>_<T>/data              the backup stream
 *   data/<engine>/<hostname_backupname>/<T0>/<L>_<T>/engine_metadata   the state for the next incremental
 *   metadata/<engine>/<hostname_backupname>/<T0>/<L>_<T>/metadata      one-line JSON, written LAST
 *
 * T0 is the level-0 timestamp of the chain, L the level, T the backup's own timestamp (integer Unix
 * seconds; T == T0 for level 0). A backup exists only once its metadata file exists: a run that dies
 * earlier leaves an orphan data directory, invisible to restore and removed by admin (listOrphans).
 * Keys are '/'-joined and relative to the container.
 */
import type { StorageDriver } from './driver.js';

export interface BackupId {
  /** Engine directory name: "tar" (rsync engines write under "rsync"). */
  engine: string;
  /** `${hostname}_${backupName}` (nova/glance append "/<id>"). */
  hbn: string;
  /** Level-0 timestamp of the chain. */
  t0: number;
  level: number;
  /** This backup's timestamp. */
  t: number;
}

/** backupDir is the "<L>_<T>" directory name of a backup. */
function backupDir(b: BackupId): string {
  return `${b.level}_${b.t}`;
}

/** dataKey: data/<engine>/<hbn>/<t0>/<level>_<t>/data */
export function dataKey(b: BackupId): string {
  return `data/${b.engine}/${b.hbn}/${b.t0}/${backupDir(b)}/data`;
}

/** engineMetadataKey: data/<engine>/<hbn>/<t0>/<level>_<t>/engine_metadata (in the data tree, as Freezer). */
export function engineMetadataKey(b: BackupId): string {
  return `data/${b.engine}/${b.hbn}/${b.t0}/${backupDir(b)}/engine_metadata`;
}

/** metadataKey: metadata/<engine>/<hbn>/<t0>/<level>_<t>/metadata */
export function metadataKey(b: BackupId): string {
  return `metadata/${b.engine}/${b.hbn}/${b.t0}/${backupDir(b)}/metadata`;
}

const T0_NAME = /^\d+$/;
const BACKUP_NAME = /^(\d+)_(\d+)$/;

/** compareBackups orders by chain (t0), then time, then level. */
export function compareBackups(a: BackupId, b: BackupId): number {
  return a.t0 - b.t0 || a.t - b.t || a.level - b.level;
}

/**
 * listBackups returns every backup of `hbn` whose metadata file exists, sorted by t0, t, level. Names that
 * are not numeric ("<T0>", "<L>_<T>") are ignored, as are directories without a metadata file (a backup
 * still being written, or a failed one).
 */
export async function listBackups(s: StorageDriver, engine: string, hbn: string): Promise<BackupId[]> {
  const root = `metadata/${engine}/${hbn}`;
  const out: BackupId[] = [];
  for (const t0Name of await s.list(root)) {
    if (!T0_NAME.test(t0Name)) continue;
    const t0 = Number(t0Name);
    const candidates: BackupId[] = [];
    for (const name of await s.list(`${root}/${t0Name}`)) {
      const m = BACKUP_NAME.exec(name);
      if (m) candidates.push({ engine, hbn, t0, level: Number(m[1]), t: Number(m[2]) });
    }
    // One chain at a time: bounded concurrency on remote storages, and chains are short.
    const present = await Promise.all(candidates.map((b) => s.exists(metadataKey(b))));
    candidates.forEach((b, i) => { if (present[i]) out.push(b); });
  }
  return out.sort(compareBackups);
}

/**
 * listOrphans returns the storage keys (data/<engine>/<hbn>/<t0>/<l>_<t>, directly removable with
 * `s.remove`) of data directories that have no metadata file: leftovers of failed or interrupted runs.
 * A backup being written right now also looks like this: callers remove only orphans older than a cutoff.
 */
export async function listOrphans(s: StorageDriver, engine: string, hbn: string): Promise<string[]> {
  const root = `data/${engine}/${hbn}`;
  const out: string[] = [];
  for (const t0Name of await s.list(root)) {
    if (!T0_NAME.test(t0Name)) continue;
    const t0 = Number(t0Name);
    for (const name of await s.list(`${root}/${t0Name}`)) {
      const m = BACKUP_NAME.exec(name);
      if (!m) continue;
      const b: BackupId = { engine, hbn, t0, level: Number(m[1]), t: Number(m[2]) };
      if (!(await s.exists(metadataKey(b)))) out.push(`${root}/${t0Name}/${name}`);
    }
  }
  return out;
}

/**
 * formatMetadata writes a document as Python's `json.dumps(doc)` does: separators ", " and ": ", one line,
 * no trailing newline, every character outside printable ASCII escaped as \uXXXX (UTF-16 units, lower-case
 * hex), keys in insertion order. Numbers: safe integers as integers; other numbers as Python's float
 * repr (1e-07, 1e+22, 0.1). JavaScript cannot tell 1.0 from 1, so a Python float with a small integral
 * value comes out as an integer: Freezer's documents carry none. Members that are undefined (or functions) are left out,
 * like JSON.stringify; `toJSON` is honoured.
 */
export function formatMetadata(doc: Record<string, unknown>): string {
  return pyJson(doc);
}

function pyJson(v: unknown): string {
  if (v !== null && typeof v === 'object' && typeof (v as { toJSON?: unknown }).toJSON === 'function') {
    v = (v as { toJSON: () => unknown }).toJSON();
  }
  switch (typeof v) {
    case 'string': return pyString(v);
    case 'number': return pyNumber(v);
    case 'boolean': return v ? 'true' : 'false';
    case 'bigint': return v.toString();
    case 'object':
      if (v === null) return 'null';
      if (Array.isArray(v)) return `[${v.map((x) => (skipped(x) ? 'null' : pyJson(x))).join(', ')}]`;
      return `{${Object.entries(v).filter(([, x]) => !skipped(x)).map(([k, x]) => `${pyString(k)}: ${pyJson(x)}`).join(', ')}}`;
    default: return 'null';
  }
}

function skipped(x: unknown): boolean {
  return x === undefined || typeof x === 'function' || typeof x === 'symbol';
}

const SHORT_ESCAPES: Record<string, string> = { '"': '\\"', '\\': '\\\\', '\n': '\\n', '\r': '\\r', '\t': '\\t', '\b': '\\b', '\f': '\\f' };

/** pyString: Python's ensure_ascii encoder (escapes everything but ' '..'~'). */
function pyString(s: string): string {
  // eslint-disable-next-line no-control-regex
  return `"${s.replace(/[^ -~]|["\\]/g, (c) => SHORT_ESCAPES[c] ?? `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)}"`;
}

/** pyNumber: Python's int str / float repr (scientific below 1e-4 and from 1e16, exponent of 2+ digits). */
function pyNumber(n: number): string {
  if (Number.isNaN(n)) return 'NaN';
  if (!Number.isFinite(n)) return n > 0 ? 'Infinity' : '-Infinity';
  if (Number.isSafeInteger(n)) return String(n);
  const [mant, expStr] = n.toExponential().split('e');
  const exp = Number(expStr);
  const neg = mant.startsWith('-');
  const digits = mant.replace('-', '').replace('.', '');
  let body: string;
  if (exp >= -4 && exp < 16) {
    if (exp < 0) body = `0.${'0'.repeat(-exp - 1)}${digits}`;
    else if (digits.length > exp + 1) body = `${digits.slice(0, exp + 1)}.${digits.slice(exp + 1)}`;
    else body = `${digits}${'0'.repeat(exp + 1 - digits.length)}.0`;
  } else {
    const m = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
    body = `${m}e${exp < 0 ? '-' : '+'}${String(Math.abs(exp)).padStart(2, '0')}`;
  }
  return neg ? `-${body}` : body;
}
