/**
 * floe's record in a backup's metadata file: what makes tampering detectable.
 *
 * Freezer's metadata file holds `{"engine_name", "compression", "encryption"}`; Freezer reads those keys and
 * ignores the rest, so floe adds one key, `floe`, holding per-segment tags of `data` and `engine_metadata`
 * (transform/integrity.ts), the level and timestamps, and a MAC over the whole document. With encryption
 * the tags and the MAC are keyed (HKDF of the password and a random salt): nobody without the password can
 * alter a byte of a backup undetected. Without encryption they are plain SHA-256: accidental corruption and
 * truncation are detected, a deliberate rewrite is not (there is no secret). The record also binds a
 * backup to its place (host, name, chain, level, time), so objects cannot be swapped between backups.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { BadPasswordError, IntegrityError } from '../errors.js';
import { BackupId, dataKey, engineMetadataKey } from '../storage/layout.js';
import { IntegrityRecord, deriveIntegrityKey, macMetadata } from '../transform/integrity.js';

export const FLOE_FORMAT_VERSION = 1;

export interface FloeRecord {
  version: number;
  hbn: string;
  t0: number;
  level: number;
  time_stamp: number;
  kdf?: { alg: 'hkdf-sha256'; salt: string };
  pwcheck?: string;
  data: IntegrityRecord;
  engine_metadata: IntegrityRecord;
  stats: { files: number; source_bytes: number; stored_bytes: number; duration_s: number };
  consistency_checksum?: string;
  mac?: string;
}

/** Keys for one backup: the integrity key (undefined without encryption) and the KDF salt. */
export interface SealKeys {
  key?: Buffer;
  salt?: Buffer;
}

export function newSealKeys(password?: Buffer): SealKeys {
  if (!password) return {};
  const salt = randomBytes(16);
  return { key: deriveIntegrityKey(password, salt), salt };
}

function pwcheck(key: Buffer): string {
  return createHmac('sha256', key).update('floe password check').digest('hex').slice(0, 16);
}

/** objectIds are the names segment tags are bound to: the storage keys, relative to the container. */
export function objectIds(id: BackupId): { data: string; engineMetadata: string } {
  return { data: dataKey(id), engineMetadata: engineMetadataKey(id) };
}

/** sealDocument adds the MAC to a metadata document whose `floe` record is complete but for it. */
export function sealDocument(doc: Record<string, unknown> & { floe: FloeRecord }, keys: SealKeys): void {
  if (keys.key && keys.salt) {
    doc.floe.kdf = { alg: 'hkdf-sha256', salt: keys.salt.toString('hex') };
    doc.floe.pwcheck = pwcheck(keys.key);
  }
  delete doc.floe.mac;
  doc.floe.mac = macMetadata(keys.key, doc);
}

/**
 * openRecord checks a backup's metadata document before any of its data is used and returns the key to
 * verify its segments with. Freezer's backups have no record: `undefined` (nothing to verify against).
 */
export function openRecord(
  doc: Record<string, unknown> & { floe?: FloeRecord; encryption?: boolean },
  id: BackupId,
  password: Buffer | undefined,
): { record?: FloeRecord; key?: Buffer } {
  const where = `${id.hbn} level ${id.level} (${id.t0}/${id.level}_${id.t})`;
  if (doc.encryption && !password) {
    throw new BadPasswordError(`backup ${where} is encrypted: give --encrypt-pass-file`);
  }
  const rec = doc.floe;
  if (!rec) return {};
  if (typeof rec !== 'object' || typeof rec.mac !== 'string' || !rec.data || !rec.engine_metadata) {
    throw new IntegrityError(`metadata of backup ${where} is corrupted (floe record incomplete)`);
  }
  let key: Buffer | undefined;
  if (rec.kdf) {
    if (!password) throw new BadPasswordError(`backup ${where} is encrypted: give --encrypt-pass-file`);
    key = deriveIntegrityKey(password, Buffer.from(rec.kdf.salt, 'hex'));
    if (!rec.pwcheck || !safeEqual(rec.pwcheck, pwcheck(key))) {
      throw new BadPasswordError(`wrong password for backup ${where}`);
    }
  } else if (doc.encryption) {
    throw new IntegrityError(`metadata of backup ${where} was altered (encrypted backup without its key record)`);
  }
  const copy = { ...doc, floe: { ...rec } } as Record<string, unknown> & { floe: FloeRecord };
  delete copy.floe.mac;
  if (!safeEqual(rec.mac, macMetadata(key, copy))) {
    throw new IntegrityError(`metadata of backup ${where} is corrupted or was tampered with`);
  }
  if (rec.hbn !== id.hbn || rec.t0 !== id.t0 || rec.level !== id.level || rec.time_stamp !== id.t) {
    throw new IntegrityError(`metadata of backup ${where} belongs to another backup (${rec.hbn} ${rec.t0}/${rec.level}_${rec.time_stamp})`);
  }
  return { record: rec, key };
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
