/**
 * The restore action: storage -> verify -> decrypt -> decompress -> extract, level 0..N in order.
 *
 * Every level's metadata is checked (password, MAC) before the first byte is written, and every segment is
 * checked before it is decrypted (transform/integrity.ts), so tampered or truncated data stops the restore
 * before it reaches a file. The extractor writes each file under a temporary name and renames it only
 * when complete, so a failed restore never leaves a half-written file under a real name.
 */
import { promises as fsp } from 'node:fs';
import { resolve } from 'node:path';
import { ChecksumMismatchError, FloeError, IntegrityError, TargetNotEmptyError, UsageError, errnoMessage, StorageError } from '../errors.js';
import { AgentOptions } from '../cli/parse.js';
import { Output, formatBytes } from '../cli/output.js';
import { chooseRestore } from '../chain/index.js';
import { counted, runStages, Stage } from '../pipeline/stages.js';
import { SerialSpec, serialSource, serialStage } from '../pipeline/serial.js';
import { extractTar } from '../archive/tar/index.js';
import { extractRsync } from '../archive/rsync/index.js';
import { Compression, decompressStage } from '../transform/compress.js';
import { decryptStage } from '../transform/encrypt.js';
import { sharedPool } from '../pipeline/pool.js';
import { verifyStage } from '../transform/integrity.js';
import { dataKey } from '../storage/layout.js';
import { checksumMatches, checksumTargetPath, treeChecksum } from '../source/checksum.js';
import { COMPRESSIONS } from '../cli/options.js';
import { ENGINES, Located, engineOf, formatDate, hostnameBackupName, listAll, notFound, openStorages, parseDate, password, readMetadata } from './common.js';
import { FloeRecord, objectIds, openRecord } from './seal.js';

/**
 * READ_CHUNK: storage reads of 4 MiB. The verifier holds one whole segment (it must check a segment's tag
 * before releasing any of its bytes) but passes it on in these pieces, so nothing downstream copies or
 * queues whole segments.
 */
const READ_CHUNK = 4 * 1024 * 1024;

interface Plan {
  l: Located;
  compression: Compression;
  encrypted: boolean;
  record?: FloeRecord;
  key?: Buffer;
}

export async function restore(o: AgentOptions, out: Output, signal: AbortSignal): Promise<{ document: Record<string, unknown>; human: string[] }> {
  const started = Date.now();
  if (!o.restore_abs_path) throw new UsageError('--restore-abs-path is required for a restore');
  const hbn = hostnameBackupName(o);
  const date = o.restore_from_date !== undefined ? parseDate(o.restore_from_date, '--restore-from-date') : undefined;
  const target = resolve(o.restore_abs_path);
  const pw = await password(o);
  const storages = openStorages(o);
  // --engine names where to look first; a name with backups under the other engine only restores from it
  const first = engineOf(o);
  let all = await listAll(storages, hbn, first);
  for (const e of ENGINES) if (all.length === 0 && e !== first) all = await listAll(storages, hbn, e);
  if (all.length === 0) throw notFound(o, hbn, storages);
  let chain: Located[];
  try {
    const ids = chooseRestore(all.map((l) => l.id), date);
    chain = ids.map((id) => all.find((l) => l.id === id)!);
  } catch (err) {
    if (err instanceof FloeError && err.code === 'FLOE_ERR_NOT_FOUND') throw notFound(o, hbn, storages, o.restore_from_date);
    throw err;
  }
  // Check every level before writing anything: a wrong password or altered metadata stops here.
  const plans: Plan[] = [];
  for (const l of chain) {
    const doc = await readMetadata(l);
    const compression = (doc.compression ?? 'gzip') as Compression;
    if (!COMPRESSIONS.includes(compression)) throw new IntegrityError(`backup ${l.id.t0}/${l.id.level}_${l.id.t} has an unknown compression '${String(compression)}'`);
    const { record, key } = openRecord(doc, l.id, pw);
    plans.push({ l, compression, encrypted: !!doc.encryption, record, key });
  }
  if (!o.dry_run) await prepareTarget(target, o.overwrite);

  const progress = out.progress('restore');
  let files = 0;
  let bytes = 0;
  for (const p of plans) {
    const { l } = p;
    const label = `level ${l.id.level} (${formatDate(l.id.t)})`;
    try {
      const stages: Stage[] = [];
      const object = objectIds(l.id).data;
      const chunkSize = Math.min(READ_CHUNK, o.max_segment_size);
      // A verified level is read and verified in a thread of its own where its storage can say where the
      // object is (local files: pipeline/serial.ts serialSource). Reads issued from the main thread waited
      // for its runs of synchronous file creation, so the disk and the extraction took turns; measured
      // (1 GiB into tmpfs, alternating runs): uncompressed 1.44-1.53 -> 1.38-1.45 s, zstd 2.27-2.34 ->
      // 2.13-2.17 s, zstd encrypted 3.33-5.01 -> 2.90-3.49 s (peak RSS +8-17 MiB there, 230 MB).
      const where = p.record ? await l.storage.source?.(dataKey(l.id)) ?? null : null;
      let source: AsyncIterable<Buffer>;
      // What that thread also does, besides reading and verifying: it was idle ~80% of a restore while the
      // main thread extracted and decompressed. Measured (1 GiB bench tree, cold store, 3 alternating runs
      // each): zstd 2.58-2.82 -> 2.03-2.16 s decompressing there; zstd encrypted 3.14-3.34 -> 2.63-2.84 s
      // decrypting and decompressing there; uncompressed encrypted 3.38-3.48 -> 2.92-3.32 s decrypting
      // there; peak RSS within 15 MB. gzip is inflated by zlib's own threads already: no faster there
      // (2.89-3.00 vs 2.93-3.07 s), and encrypted gzip decrypted there was 6% faster for 38 MB more RSS.
      const inThread = where
        ? { decompress: p.compression === 'zstd', decrypt: p.encrypted && (p.compression === 'zstd' || p.compression === 'none') }
        : { decompress: false, decrypt: false };
      if (where) {
        const specs: SerialSpec[] = [{ kind: 'verify', object, key: p.key, record: p.record!.data }];
        if (inThread.decrypt) specs.push({ kind: 'decrypt', password: pw!, backend: o.crypto_backend });
        if (inThread.decompress) specs.push({ kind: 'decompress', compression: p.compression });
        source = serialSource(where, specs, { chunkSize, signal, onRead: (n) => progress.onStored?.(n) });
      } else {
        // Other storages: a clear level verifies in a thread of its own, an encrypted one on the main
        // thread (its decryption takes a pool worker).
        if (p.record) {
          stages.push(p.encrypted
            ? verifyStage(object, p.key, p.record.data)
            : serialStage([{ kind: 'verify', object, key: p.key, record: p.record.data }]));
        }
        source = counted(l.storage.get(dataKey(l.id), { chunkSize, signal }), (n) => progress.onStored?.(n));
      }
      // Elsewhere, one block at a time in one worker: native AES-CFB decrypts at 450+ MB/s there, faster
      // than the extraction on the main thread consumes, and a second busy worker only added ~60 MB of peak
      // RSS (measured: 1 GiB encrypted restores, 285 vs 345 MB, and no slower).
      if (p.encrypted && !inThread.decrypt) stages.push(decryptStage(pw!, undefined, { backend: o.crypto_backend, pool: sharedPool(), inflight: 1 }));
      if (!inThread.decompress) stages.push(decompressStage(p.compression));
      const input = runStages(source, stages, { signal });
      const list = (name: string, size?: number, kind?: string) => (out.json
        ? out.emit({ type: 'member', level: l.id.level, name, size, kind })
        : out.info(name));
      const r = l.id.engine === 'rsync'
        ? await extractRsync(input, { target, dryRun: o.dry_run, progress, signal, onList: o.dry_run ? (name) => list(name) : undefined })
        : await extractTar(input, {
          target, incremental: true, dryRun: o.dry_run, progress, signal,
          onList: o.dry_run ? (h) => list(h.name, h.size, h.type) : undefined,
        });
      files += r.files;
      bytes += r.bytes;
    } catch (err) {
      if (err instanceof FloeError) {
        err.message = `restore of ${label} failed: ${err.message}${o.dry_run ? '' : `; ${target} is incomplete`}`;
      }
      throw err;
    }
  }
  let checked = '';
  if (o.consistency_checksum && !o.dry_run) {
    const actual = await treeChecksum(checksumTargetPath(target, o.consistency_checksum));
    if (!checksumMatches(o.consistency_checksum, actual)) {
      throw new ChecksumMismatchError(`consistency check failed: restored tree checksum ${actual} differs from ${o.consistency_checksum}`);
    }
    checked = 'consistency checksum verified';
  }
  const last = chain[chain.length - 1].id;
  const duration = (Date.now() - started) / 1000;
  const document = {
    action: 'restore', backup_name: o.backup_name, hostname: o.hostname, restore_abs_path: target,
    level: last.level, level_zero_timestamp: last.t0, time_stamp: last.t, levels: chain.length,
    files, bytes, duration: Math.round(duration * 1000) / 1000, dry_run: o.dry_run,
    consistency_checked: !!checked,
  };
  const human = o.dry_run ? [] : [
    `restored ${hbn} level ${last.level} (${formatDate(last.t)}, ${chain.length} level${chain.length > 1 ? 's' : ''}) into ${target}`,
    `${files} files, ${formatBytes(bytes)} in ${duration.toFixed(1)} s${checked ? `; ${checked}` : ''}`,
  ];
  return { document, human };
}

/** prepareTarget creates the restore directory, or checks it is empty unless --overwrite. */
async function prepareTarget(target: string, overwrite: boolean): Promise<void> {
  let entries: string[];
  try {
    const st = await fsp.stat(target);
    if (!st.isDirectory()) throw new UsageError(`restore path ${target} is not a directory`);
    entries = await fsp.readdir(target);
  } catch (err) {
    if (err instanceof FloeError) throw err;
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new StorageError(`cannot use restore path ${target}: ${errnoMessage(err)}`);
    try {
      await fsp.mkdir(target, { recursive: true });
    } catch (e) {
      throw new StorageError(`cannot create restore path ${target}: ${errnoMessage(e)}`);
    }
    return;
  }
  if (entries.length > 0 && !overwrite) {
    throw new TargetNotEmptyError(`restore path ${target} is not empty (use --overwrite to restore over it)`);
  }
}
