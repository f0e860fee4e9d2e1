/**
 * What every action needs: the storages named by the options, the password, dates, the metadata file.
 */
import { IntegrityError, NotFoundError, UsageError } from '../errors.js';
import { AgentOptions } from '../cli/parse.js';
import { StorageDriver } from '../storage/driver.js';
import { createStorage } from '../storage/registry.js';
import { BackupId, listBackups, metadataKey } from '../storage/layout.js';
import { readPassFile } from '../transform/encrypt.js';

/**
 * ENGINES: the engines and so the storage directories (data/<engine>/..., metadata/<engine>/...).
 * tar: GNU tar incremental, Freezer's format. rsync: floe's block-delta engine (docs/rsync-format.md),
 * stored under `rsync` as Freezer's rsync engines are, but in floe's own format.
 */
export const ENGINES = ['tar', 'rsync'] as const;
export type EngineName = (typeof ENGINES)[number];

/** engineOf checks --engine: Freezer's rsyncv2 writes a different format, which floe does not read. */
export function engineOf(o: AgentOptions): EngineName {
  if ((ENGINES as readonly string[]).includes(o.engine)) return o.engine as EngineName;
  if (o.engine === 'rsyncv2') throw new UsageError("--engine rsyncv2 (Freezer's format) is not supported: floe's block engine is --engine rsync");
  throw new UsageError(`--engine ${o.engine} is not supported (supported: ${ENGINES.join(', ')})`);
}

/** A backup found in one of the storages. */
export interface Located {
  id: BackupId;
  storage: StorageDriver;
}

/** openStorages returns one driver per [storage:NAME] section, or the one given by --storage/--container. */
export function openStorages(o: AgentOptions): StorageDriver[] {
  if (o.storages.length > 0) {
    return o.storages.map((s) => createStorage(s.storage, s.container, s.options));
  }
  if (!o.container) throw new UsageError('--container is required');
  return [createStorage(o.storage, o.container, {})];
}

export function hostnameBackupName(o: AgentOptions): string {
  if (!o.backup_name) throw new UsageError('--backup-name is required');
  if (/[/\\]|^\.\.?$/.test(o.backup_name)) throw new UsageError(`--backup-name must not contain '/' : '${o.backup_name}'`);
  if (/[/\\]/.test(o.hostname)) throw new UsageError(`--hostname must not contain '/': '${o.hostname}'`);
  return `${o.hostname}_${o.backup_name}`;
}

/** password reads --encrypt-pass-file, if given. */
export async function password(o: AgentOptions): Promise<Buffer | undefined> {
  return o.encrypt_pass_file ? readPassFile(o.encrypt_pass_file) : undefined;
}

/**
 * listAll gathers the backups of `hbn` from every storage. With several storages the same backup may be in
 * each: the first storage that has it is used (Freezer's MultipleStorage reads chains from all of them).
 */
export async function listAll(storages: StorageDriver[], hbn: string, engine: EngineName): Promise<Located[]> {
  const seen = new Map<string, Located>();
  for (const storage of storages) {
    for (const id of await listBackups(storage, engine, hbn)) {
      const key = `${id.t0}/${id.level}_${id.t}`;
      if (!seen.has(key)) seen.set(key, { id, storage });
    }
  }
  return [...seen.values()].sort((a, b) => a.id.t0 - b.id.t0 || a.id.t - b.id.t || a.id.level - b.id.level);
}

/**
 * parseDate reads Freezer's `YYYY-MM-DDThh:mm:ss` (local time, as Freezer), or an ISO date-time with `Z` or
 * an offset, or `YYYY-MM-DD` (midnight, local), and returns Unix seconds.
 */
export function parseDate(value: string, option: string): number {
  const v = value.trim();
  const local = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?)?$/.exec(v);
  let ms: number;
  if (local) {
    const [y, mo, d, h = '0', mi = '0', s = '0'] = local.slice(1);
    const date = new Date(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s));
    const ok = date.getFullYear() === Number(y) && date.getMonth() === Number(mo) - 1 && date.getDate() === Number(d)
      && Number(h) < 24 && Number(mi) < 60 && Number(s) < 60;
    ms = ok ? date.getTime() : NaN;
  } else if (/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$/.test(v)) {
    ms = Date.parse(v);
  } else {
    ms = NaN;
  }
  if (!Number.isFinite(ms)) {
    throw new UsageError(`${option}: cannot read the date '${value}' (expected YYYY-MM-DDThh:mm:ss)`);
  }
  return Math.floor(ms / 1000);
}

export function formatDate(sec: number): string {
  const d = new Date(sec * 1000);
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

/** The metadata file of a backup: Freezer's keys, plus floe's record when floe wrote it. */
export interface MetadataDoc {
  engine_name?: string;
  compression?: string;
  encryption?: boolean;
  floe?: import('./seal.js').FloeRecord;
  [k: string]: unknown;
}

/** readMetadata loads the one-line JSON metadata file of a backup (Freezer reads its first line). */
export async function readMetadata(l: Located): Promise<MetadataDoc> {
  const key = metadataKey(l.id);
  const raw = await l.storage.getSmall(key);
  const first = raw.toString('utf8').split('\n')[0];
  let doc: unknown;
  try {
    doc = JSON.parse(first);
  } catch {
    throw new IntegrityError(`metadata file ${key} is corrupted (not JSON)`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    throw new IntegrityError(`metadata file ${key} is corrupted (not an object)`);
  }
  return doc as MetadataDoc;
}

export function notFound(o: AgentOptions, hbn: string, storages: StorageDriver[], date?: string): NotFoundError {
  const where = storages.map((s) => s.container).join(', ');
  return new NotFoundError(
    `no backup named '${o.backup_name}' for host '${o.hostname}' in ${where}${date ? ` at or before ${date}` : ''}` +
    ` (looked for ${hbn}; floe info --container ... lists what is there)`,
  );
}

/** sleep resolves after `ms`, or rejects when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolveP, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const t = setTimeout(() => { signal?.removeEventListener('abort', onAbort); resolveP(); }, ms);
    const onAbort = () => { clearTimeout(t); reject(signal?.reason); };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
