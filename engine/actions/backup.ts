/**
 * The backup action: orchestration only, no byte handling.
 *
 *   walk + tar (archive/tar) -> compress -> encrypt -> segment -> seal -> storage `data`
 * then `engine_metadata` (the new GNU tar snapshot file, encrypted when the data is), then the metadata
 * file, last: a backup exists only once its metadata file does, so an interrupted run is never chosen by
 * a restore or as a parent. A failed run removes what it wrote (admin cleans whatever a crash leaves).
 *
 * One timestamp per backup (Freezer takes two that can differ): it names the storage directory, is the
 * result document's `time_stamp`, and is strictly greater than every earlier backup of the same name.
 */
import { execFile } from 'node:child_process';
import { constants, promises as fsp } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { platform } from 'node:os';
import { BadPasswordError, SourceError, UsageError, errnoMessage } from '../errors.js';
import { AgentOptions } from '../cli/parse.js';
import { Output, formatBytes } from '../cli/output.js';
import { VERSION } from '../cli/help.js';
import { chooseParent } from '../chain/index.js';
import { counted, runStages, Stage } from '../pipeline/stages.js';
import { serialStage } from '../pipeline/serial.js';
import { SlotPool } from '../pipeline/slots.js';
// The tar writer only, and the rsync engine only when asked for: a tar backup loads no reader, extractor
// or WASM kernel (17 modules, ~10 ms of every start).
import { TarBackupOptions, createTarBackup, estimateTree } from '../archive/tar/writer.js';
import { prewarmSharedPool, sharedPool } from '../pipeline/pool.js';
import { compressStage, compressionLevel } from '../transform/compress.js';
import { canParallelCompress, parallelStage } from '../transform/parallel.js';
import { CryptoBackend, encryptBuffer, decryptBuffer, loadCryptoBackend } from '../transform/encrypt.js';
import { IntegrityRecord, sealAlg, sealStage, verifyStage } from '../transform/integrity.js';
import { StorageDriver } from '../storage/driver.js';
import { MultiStorage } from '../storage/multi.js';
import { BackupId, dataKey, engineMetadataKey, formatMetadata, metadataKey } from '../storage/layout.js';
import { treeChecksum } from '../source/checksum.js';
import { EngineName, Located, engineOf, formatDate, hostnameBackupName, listAll, openStorages, password, readMetadata, sleep } from './common.js';
import { FLOE_FORMAT_VERSION, FloeRecord, SealKeys, newSealKeys, objectIds, openRecord, sealDocument } from './seal.js';

export interface BackupResult {
  /** Freezer's agent result document (reference/freezer.md §2.6), with the real level. */
  document: Record<string, unknown>;
  human: string[];
}

/**
 * SEAL_SEGMENT: the largest integrity segment (docs/format.md). A restore holds one whole segment until
 * its tag checks, so the segment is a floor of its memory: 8 MiB instead of Freezer's 32 MiB
 * max_segment_size cut 1 GiB restores' peak RSS, for 34 bytes of metadata per 8 MiB.
 */
const SEAL_SEGMENT = 8 * 1024 * 1024;

/**
 * SLOT_SIZE, SLOT_COUNT: the reused chunks of an uncompressed tar stream, of the tar writer's chunk size.
 * Up to ~14 chunks are between the archiver and the disk at once (stage queues, the sealing thread's
 * window, O_DIRECT writes in flight); when every slot is out the archiver allocates, as without a pool.
 */
const SLOT_SIZE = 2 * 1024 * 1024;
const SLOT_COUNT = 16;

export async function backup(o: AgentOptions, out: Output, signal: AbortSignal): Promise<BackupResult> {
  const started = Date.now();
  if (!o.path_to_backup) throw new UsageError('--path-to-backup is required for a backup');
  if (o.mode !== 'fs') throw new UsageError(`--mode ${o.mode} is not supported (floe backs up files: fs)`);
  if (o.compression_level !== undefined) {
    if (o.compression === 'none') throw new UsageError('--compression-level does not apply to --compression none');
    compressionLevel(o.compression, o.compression_level);
  }
  const engine = engineOf(o);
  const hbn = hostnameBackupName(o);
  const root = await checkSource(o.path_to_backup);
  const pw = await password(o);
  if (pw) await loadCryptoBackend(o.crypto_backend);
  const storages = openStorages(o);
  if (!o.dry_run) for (const s of storages) await s.ensureWritable();
  const sink: StorageDriver = storages.length === 1 ? storages[0] : new MultiStorage(storages);

  const existing = await listAll(storages, hbn, engine);
  const t = await uniqueTimestamp(existing, signal);
  const parent = chooseParent(existing.map((l) => l.id), {
    incremental: o.incremental && !o.no_incremental,
    maxLevel: o.max_level,
    alwaysLevel: o.always_level,
    restartAlwaysLevel: o.restart_always_level,
  }, t);
  const id: BackupId = parent
    ? { engine, hbn, t0: parent.t0, level: parent.level + 1, t }
    : { engine, hbn, t0: t, level: 0, t };
  // A level 0 compresses the whole tree: with zstd its pool's threads start now and load while the tree is
  // scanned (a level 1 starts them only if its changes turn out large: transform/parallel.ts).
  if (!parent && engine === 'tar' && o.compression === 'zstd') prewarmSharedPool('zstd');
  const previous = parent ? await parentSnapshot(existing.find((l) => l.id === parent)!, pw, o.crypto_backend) : undefined;

  if (o.sync) await runSync();
  const consistency = o.consistency_check ? await treeChecksum(root) : undefined;

  const progress = out.progress('backup');
  if ((out.json || process.stderr.isTTY) && !out.quiet) {
    estimateTree(root, o.exclude, signal).then((e) => progress.onTotal?.(e.bytes, e.files), () => undefined);
  }
  // An uncompressed tar stream goes to storage as the archiver packed it: its chunks can be reused slots
  // (pipeline/slots.ts), given back by the one storage that writes them. Compressors make new buffers.
  const slots = engine === 'tar' && o.compression === 'none' && !o.dry_run && storages.length === 1
    ? SlotPool.create(SLOT_SIZE, SLOT_COUNT) : null;
  const archive = await openArchive(engine, { root, exclude: o.exclude, dereference: o.dereference_symlink, previous, progress, signal, slots }, o);
  const keys = newSealKeys(pw);
  const ids = objectIds(id);
  const sealSegment = Math.min(o.max_segment_size, SEAL_SEGMENT);
  const dataRec = emptyRecord(keys, sealSegment);
  const level = o.compression_level;
  const stages: Stage[] = [canParallelCompress(o.compression) ? parallelStage(o.compression, { level }) : compressStage(o.compression, { level })];
  // Encryption and sealing run in a thread of their own (pipeline/serial.ts), off the archiver's. Sealing
  // tags segments of sealSegment bytes at exact offsets but passes the buffers through as they come:
  // cutting them into whole 32 MiB segments here would only hold more memory (local storage appends).
  stages.push(serialStage([
    ...(pw ? [{ kind: 'encrypt' as const, password: pw, backend: o.crypto_backend }] : []),
    { kind: 'seal', object: ids.data, key: keys.key, segmentSize: sealSegment },
  ], { seal: dataRec }));
  const stream = runStages(archive.stream, stages, { signal });

  let stored = 0;
  try {
    if (o.dry_run) {
      for await (const seg of stream) stored += seg.length;
    } else {
      stored = (await sink.put(dataKey(id), counted(stream, (n) => progress.onStored?.(n)), { signal })).size;
      const snapshot = archive.state();
      const em = pw ? encryptBuffer(pw, snapshot, { backend: o.crypto_backend }) : snapshot;
      const emRec = emptyRecord(keys, Math.max(em.length, 1));
      for await (const _ of sealStage(ids.engineMetadata, keys.key, Math.max(em.length, 1), emRec)(one(em), signal)) { /* tags only */ }
      await sink.putSmall(engineMetadataKey(id), em);
      const stats = archive.stats();
      const doc = metadataDocument(o, id, keys, dataRec, emRec, {
        files: stats.files, source_bytes: stats.bytes, stored_bytes: stored, duration_s: (Date.now() - started) / 1000,
      }, consistency);
      await sink.putSmall(metadataKey(id), Buffer.from(formatMetadata(doc)));
    }
  } catch (err) {
    if (!o.dry_run) await removePartial(sink, id);
    throw err;
  }
  const stats = archive.stats();
  const duration = (Date.now() - started) / 1000;
  const document = resultDocument(o, id, consistency, { ...stats, stored, duration, encrypted: !!pw });
  const human = [
    `${o.dry_run ? 'dry run: would back up' : 'backed up'} ${root} as ${hbn} level ${id.level} (${formatDate(t)}, chain ${id.t0})`,
    `${stats.files} files, ${formatBytes(stats.bytes)} read, ${formatBytes(stored)} stored (${o.compression}${pw ? ', encrypted' : ''}) in ${duration.toFixed(1)} s` +
      (stats.warnings ? `, ${stats.warnings} warnings` : ''),
  ];
  if (consistency) human.push(`consistency checksum: ${consistency}`);
  return { document, human };
}

/** Archive: what backup needs of an engine: the stream, then the state for the next level (engine_metadata). */
interface Archive {
  stream: AsyncIterable<Buffer>;
  /** The new engine_metadata; valid once the stream was consumed. */
  state(): Buffer;
  stats(): { files: number; bytes: number; warnings: number };
}

async function openArchive(engine: EngineName, common: TarBackupOptions, o: AgentOptions): Promise<Archive> {
  if (engine === 'rsync') {
    const { createRsyncBackup } = await import('../archive/rsync/backup.js');
    const r = createRsyncBackup({ ...common, blockSize: o.rsync_block_size, pool: sharedPool() });
    return { stream: r.stream, state: () => r.metadata(), stats: () => r.stats() };
  }
  const t = createTarBackup(common);
  return { stream: t.stream, state: () => t.snapshot(), stats: () => t.stats() };
}

async function checkSource(path: string): Promise<string> {
  const root = resolve(path);
  try {
    const st = await fsp.stat(root);
    await fsp.access(root, st.isDirectory() ? constants.R_OK | constants.X_OK : constants.R_OK);
  } catch (err) {
    throw new SourceError(`cannot read path to back up ${root}: ${errnoMessage(err)}`);
  }
  return root;
}

/** uniqueTimestamp waits (at most about a second) so the new backup's time is after every earlier one. */
async function uniqueTimestamp(existing: Located[], signal: AbortSignal): Promise<number> {
  const newest = existing.reduce((m, l) => Math.max(m, l.id.t), 0);
  for (;;) {
    const now = Math.floor(Date.now() / 1000);
    if (now > newest) return now;
    if (newest - now > 5) {
      // the newest backup is from the future (clock moved back): do not wait for it, just come after it
      return newest + 1;
    }
    await sleep(1000 - (Date.now() % 1000) + 5, signal);
  }
}

/** parentSnapshot fetches and checks the parent's engine_metadata (the GNU tar snapshot file). */
async function parentSnapshot(parent: Located, pw: Buffer | undefined, backend: CryptoBackend): Promise<Buffer> {
  const doc = await readMetadata(parent);
  const { record, key } = openRecord(doc, parent.id, pw);
  let raw = await parent.storage.getSmall(engineMetadataKey(parent.id));
  if (record) {
    const ids = objectIds(parent.id);
    const parts: Buffer[] = [];
    for await (const b of verifyStage(ids.engineMetadata, key, record.engine_metadata)(one(raw), new AbortController().signal)) parts.push(b);
    raw = Buffer.concat(parts);
  }
  if (raw.subarray(0, 8).toString('latin1') === 'Salted__') {
    if (!pw) throw new BadPasswordError('the previous backup\'s engine_metadata is encrypted: give --encrypt-pass-file');
    return decryptBuffer(pw, raw, undefined, { backend });
  }
  return raw;
}

function emptyRecord(keys: SealKeys, segmentSize: number): IntegrityRecord {
  return { alg: sealAlg(keys.key), segment_size: segmentSize, size: 0, segments: [] };
}

async function* one(b: Buffer): AsyncIterable<Buffer> {
  yield b;
}

function runSync(): Promise<void> {
  return new Promise((res) => execFile('sync', () => res()));
}

async function removePartial(sink: StorageDriver, id: BackupId): Promise<void> {
  try {
    await sink.remove(dirname(dataKey(id)));
    if (id.level === 0) {
      const chainDir = dirname(dirname(dataKey(id)));
      if ((await sink.list(chainDir)).length === 0) await sink.remove(chainDir);
    }
  } catch {
    // best effort: `floe admin` removes leftovers a failed run could not
  }
}

function metadataDocument(
  o: AgentOptions, id: BackupId, keys: SealKeys, data: IntegrityRecord, em: IntegrityRecord,
  stats: FloeRecord['stats'], consistency?: string,
): Record<string, unknown> & { floe: FloeRecord } {
  const doc = {
    engine_name: id.engine,
    compression: o.compression,
    encryption: !!keys.key,
    floe: {
      version: FLOE_FORMAT_VERSION, hbn: id.hbn, t0: id.t0, level: id.level, time_stamp: id.t,
      data, engine_metadata: em, stats,
      ...(consistency ? { consistency_checksum: consistency } : {}),
    } as FloeRecord,
  };
  sealDocument(doc, keys);
  return doc;
}

/** resultDocument is freezer-agent's result (§2.6): same keys, falsy values as "", the real level. */
function resultDocument(
  o: AgentOptions, id: BackupId, consistency: string | undefined,
  s: { files: number; bytes: number; stored: number; duration: number; encrypted: boolean; warnings: number },
): Record<string, unknown> {
  const pick = (v: unknown) => (v === undefined || v === null || v === false || v === 0 ? '' : v);
  const doc: Record<string, unknown> = {
    curr_backup_level: id.level,
    fs_real_path: o.path_to_backup,
    vol_snap_path: o.path_to_backup,
    client_os: platform(),
    client_version: `floe ${VERSION}`,
    time_stamp: id.t,
  };
  const fields: Array<[string, unknown]> = [
    ['action', 'backup'], ['always_level', o.always_level], ['backup_media', 'fs'], ['backup_name', o.backup_name],
    ['container', o.storages.length ? o.storages[0].container : o.container], ['container_segments', ''],
    ['dry_run', o.dry_run], ['hostname', o.hostname], ['path_to_backup', o.path_to_backup],
    ['max_level', o.max_level], ['mode', o.mode], ['log_file', o.log_file], ['storage', o.storages.length ? o.storages[0].storage : o.storage],
    ['proxy', ''], ['compression', o.compression], ['ssh_key', ''], ['ssh_username', ''], ['ssh_host', ''], ['ssh_port', ''],
    ['consistency_checksum', consistency],
  ];
  for (const [k, v] of fields) doc[k] = pick(v);
  // floe's additions: what Freezer's document lacks and its UI needs
  doc.engine_name = id.engine;
  doc.level_zero_timestamp = id.t0;
  doc.encryption = s.encrypted;
  doc.files = s.files;
  doc.source_bytes = s.bytes;
  doc.stored_bytes = s.stored;
  doc.duration = Math.round(s.duration * 1000) / 1000;
  doc.warnings = s.warnings;
  return doc;
}
