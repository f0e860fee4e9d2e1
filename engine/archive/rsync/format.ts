/**
 * The rsync engine's on-storage formats: the data stream and the engine_metadata (docs/rsync-format.md).
 *
 * Model. A level's stream is `MAGIC`, then records, then one trailer record:
 *   record  := kind:u8  jsonLength:u32le  json:UTF-8  [data, for 'E' records whose json has `d`]
 *   data    := op* OP_END  size:u64le  sha256:32       (the new file's size and whole-content hash)
 *   op      := OP_LITERAL n:u32le bytes[n] | OP_COPY block:u32le count:u32le | OP_HOLE n:u64le
 *            | OP_RANGE offset:u64le n:u64le      (bytes [offset, offset + n) of the old file)
 * Kinds: 'E' entry (a path and its attributes), 'A' attributes of a regular file whose content did not
 * change (no data), 'D' deletion, 'T' trailer ({entries}: the count of E, A and D records; a stream
 * without it is truncated). All integers are little-endian. User xattrs ride in the JSON (`x`); streams
 * from before them have neither `x` nor 'A' records and read the same.
 *
 * engine_metadata is one zstd frame (with content checksum) of raw = META_MAGIC then one record per path:
 *   u16 pathLength, path, u8 flags (bit 0: has signature, bit 1: has xattr digest), u32 st_mode, u64 ino,
 *   u64 size, i64 mtimeNs, i64 ctimeNs, [if signature: sha256:32, blockSize:u32, blocks:u32,
 *   weak:u32 x blocks, strong:16 x blocks, [if bit 2 (fine sums): fineSize:u32, seed:8,
 *   fine:8 x fineCount]], [if xattr digest: 16 bytes]
 * Version 1 (before xattrs) is version 3 without bits 1 and 2, version 2 (before fine sums) without
 * bit 2: all three are read, version 3 is written.
 * Identifiers here are persisted: never reuse one for another meaning.
 */
import { createRequire } from 'node:module';
import { FINE_LEN, fineCount } from '../../../wasm/index.js';
import { IntegrityError } from '../../errors.js';
import type { Xattr } from '../../source/xattr.js';

/** MAGIC opens every data stream: "FLOERSY" and the format version 1. */
export const MAGIC = Buffer.from('FLOERSY\x01', 'latin1');
/** META_MAGIC opens the (inflated) engine_metadata: "FLOERSM" and version 3 (fine sums). Versions 1
 * (no xattr digests) and 2 (no fine sums) are read too; a floe that knows only an older version refuses
 * a newer one as "bad magic" instead of misreading its records. */
export const META_MAGIC = Buffer.from('FLOERSM\x03', 'latin1');
const META_MAGIC_OLD = [Buffer.from('FLOERSM\x01', 'latin1'), Buffer.from('FLOERSM\x02', 'latin1')];

export const KIND_ENTRY = 0x45; // 'E'
export const KIND_DELETE = 0x44; // 'D'
export const KIND_TRAILER = 0x54; // 'T'
export const KIND_ATTRS = 0x41; // 'A'

export const OP_END = 0x00;
export const OP_LITERAL = 0x01;
export const OP_COPY = 0x02;
export const OP_HOLE = 0x03;
export const OP_RANGE = 0x04;

/** STRONG_LEN: bytes of SHA-256 kept per block (128 bits: a false block match is out of reach). */
export const STRONG_LEN = 16;
/** MAX_JSON: a record's JSON is a path and a few attributes; more than 1 MiB means corruption. */
export const MAX_JSON = 1 << 20;
/** MAX_LITERAL: the largest literal op the writer emits and the reader accepts (memory bound). */
export const MAX_LITERAL = 1 << 20;

export type EntryType = 'file' | 'dir' | 'symlink' | 'hardlink' | 'fifo' | 'chardev' | 'blockdev';

/** EntryHeader: the JSON of an 'E' record. Times are decimal strings of ns since the epoch. */
export interface EntryHeader {
  /** Path relative to the restore target, '/'-separated; '' is the target itself (a directory). */
  p: string;
  t: EntryType;
  /** Permission bits (st_mode & 0o7777). */
  m: number;
  u: number;
  g: number;
  un: string;
  gn: string;
  mt: string;
  /** symlink target, or the path a hard link points to (an earlier entry, or a path kept unchanged). */
  l?: string;
  /** Device major and minor. */
  rd?: [number, number];
  /** Data follows: 'full' (literals and holes only) or 'delta' (against `base`). */
  d?: 'full' | 'delta';
  /** The file the delta applies to, as the previous level left it: size, sha256 (hex), block size, and
   * its path when it is not the entry's own (a rename: `p` is then deleted later in the same level). */
  base?: { sz: number; sha: string; bs: number; p?: string };
  /** Restore zero ranges as holes (the source file was sparse). */
  sp?: boolean;
  /** User xattrs, sorted by name: [full name, base64 value]. On 'file' and 'A': all of them (absent: none
   * or unknown). On 'dir': the exact set, [] for none; absent: unknown (restore leaves them as they are). */
  x?: [string, string][];
}

/** encodeXattrs: the `x` field for a list of attributes. */
export function encodeXattrs(attrs: readonly Xattr[]): [string, string][] {
  return attrs.map(([n, v]) => [n, v.toString('base64')]);
}

/** decodeXattrs reads an `x` field; IntegrityError when it is not a list of [name, base64] pairs. */
export function decodeXattrs(x: unknown, p: string): Xattr[] {
  const bad = () => new IntegrityError(`corrupted rsync stream: ${p}: bad extended attributes`);
  if (!Array.isArray(x)) throw bad();
  return x.map((e: unknown) => {
    if (!Array.isArray(e) || e.length !== 2 || typeof e[0] !== 'string' || typeof e[1] !== 'string' || e[0] === '') throw bad();
    return [e[0], Buffer.from(e[1], 'base64')] as Xattr;
  });
}

export function encodeRecord(kind: number, json: object): Buffer {
  const body = Buffer.from(JSON.stringify(json), 'utf8');
  const head = Buffer.allocUnsafe(5);
  head[0] = kind;
  head.writeUInt32LE(body.length, 1);
  return Buffer.concat([head, body]);
}

export function literalHead(n: number): Buffer {
  const b = Buffer.allocUnsafe(5);
  b[0] = OP_LITERAL;
  b.writeUInt32LE(n, 1);
  return b;
}

export function copyOp(block: number, count: number): Buffer {
  const b = Buffer.allocUnsafe(9);
  b[0] = OP_COPY;
  b.writeUInt32LE(block, 1);
  b.writeUInt32LE(count, 5);
  return b;
}

/** rangeOp copies bytes [offset, offset + n) of the old file (the unchanged sub-blocks of a block). */
export function rangeOp(offset: number, n: number): Buffer {
  const b = Buffer.allocUnsafe(17);
  b[0] = OP_RANGE;
  b.writeBigUInt64LE(BigInt(offset), 1);
  b.writeBigUInt64LE(BigInt(n), 9);
  return b;
}

export function holeOp(n: number): Buffer {
  const b = Buffer.allocUnsafe(9);
  b[0] = OP_HOLE;
  b.writeBigUInt64LE(BigInt(n), 1);
  return b;
}

export function endOp(size: number, sha: Buffer): Buffer {
  const b = Buffer.allocUnsafe(41);
  b[0] = OP_END;
  b.writeBigUInt64LE(BigInt(size), 1);
  sha.copy(b, 9);
  return b;
}

// ------------------------------------------------------------------------------------ block size

/** MIN_BLOCK / MAX_BLOCK: rsync's BLOCK_SIZE (700) and MAX_BLOCK_SIZE for protocol >= 30 (128 KiB). */
export const MIN_BLOCK = 700;
export const MAX_BLOCK = 128 << 10;

/**
 * sqrtBlockSize is rsync's rule (generator.c sum_sizes_sqroot): 700 bytes up to 490000-byte files, then
 * the square root of the length rounded down to a multiple of 8, at most 128 KiB. The square root
 * balances the signature (length / bs entries) against the literal cost of a change (~bs bytes).
 */
export function sqrtBlockSize(len: number): number {
  if (len <= MIN_BLOCK * MIN_BLOCK) return MIN_BLOCK;
  const r = Math.floor(Math.sqrt(len)) & ~7;
  return Math.min(MAX_BLOCK, Math.max(MIN_BLOCK, r));
}

/**
 * Fine sums: blocks of FINE_MIN_BLOCK bytes and more are cut into sub-blocks of fineSizeFor(bs) bytes,
 * each with a seeded XXH64 (wasm/fine.ts), so a change of a few KiB inside a 32 KiB block costs about
 * what changed, not the whole block: the delta copies the unchanged sub-blocks at each end of a block
 * that did not match whole. The price is FINE_LEN bytes of state per sub-block (1.6% of a 1 GiB file
 * at 512 bytes, 0.4% from 16 GiB on).
 */
export const FINE_MIN_BLOCK = 4096;
/** FINE_MIN: the smallest sub-block; FINE_PER_BLOCK: at most this many sub-blocks per block. */
export const FINE_MIN = 512;
export const FINE_PER_BLOCK = 64;

/** fineSizeFor is the sub-block size for a block size, 0 when such blocks get no fine sums. */
export function fineSizeFor(bs: number): number {
  if (bs < FINE_MIN_BLOCK) return 0;
  return Math.max(FINE_MIN, Math.floor(bs / FINE_PER_BLOCK) & ~7);
}

// ------------------------------------------------------------------------------------ engine_metadata

/** FineSums of one file version: sub-block size, the XXH64 seed, FINE_LEN bytes per sub-block. */
export interface FineSums {
  size: number;
  seed: Buffer;
  sums: Buffer;
}

/** Signature of one file version: whole-content hash plus per-block weak and strong sums. */
export interface Signature {
  sha: Buffer;
  blockSize: number;
  /** Weak sums of the blocks; the last block may be short (size % blockSize bytes). */
  weaks: Uint32Array;
  /** STRONG_LEN bytes per block. */
  strongs: Buffer;
  /** Sums of the sub-blocks (see fineSizeFor), when the block size has them. */
  fine?: FineSums;
}

/** MetaRecord: what the next level knows about one path. */
export interface MetaRecord {
  path: string;
  mode: number;
  ino: bigint;
  size: number;
  mtimeNs: bigint;
  ctimeNs: bigint;
  sig?: Signature;
  /** xattrDigest (source/xattr.ts) of the path's user xattrs when it has some and they were read. */
  xh?: Buffer;
  /** The record's encoded bytes (carried forward as is when the path is unchanged). */
  raw?: Buffer;
}

const FIXED = 1 + 4 + 8 + 8 + 8 + 8;
/** XH_LEN: bytes of an xattr digest (a truncated SHA-256, see xattrDigest). */
export const XH_LEN = 16;
const F_SIG = 1;
const F_XH = 2;
const F_FINE = 4;

export function encodeMeta(r: MetaRecord): Buffer {
  if (r.raw) return r.raw;
  const path = Buffer.from(r.path, 'utf8');
  const n = r.sig ? r.sig.weaks.length : 0;
  const fine = r.sig?.fine;
  const sigLen = r.sig ? 32 + 8 + n * (4 + STRONG_LEN) + (fine ? 12 + fine.sums.length : 0) : 0;
  const xh = r.xh?.length === XH_LEN ? r.xh : undefined;
  const b = Buffer.allocUnsafe(2 + path.length + FIXED + sigLen + (xh ? XH_LEN : 0));
  let o = b.writeUInt16LE(path.length, 0);
  o += path.copy(b, o);
  o = b.writeUInt8((r.sig ? F_SIG : 0) | (xh ? F_XH : 0) | (fine ? F_FINE : 0), o);
  o = b.writeUInt32LE(r.mode >>> 0, o);
  o = b.writeBigUInt64LE(r.ino, o);
  o = b.writeBigUInt64LE(BigInt(r.size), o);
  o = b.writeBigInt64LE(r.mtimeNs, o);
  o = b.writeBigInt64LE(r.ctimeNs, o);
  if (r.sig) {
    o += r.sig.sha.copy(b, o);
    o = b.writeUInt32LE(r.sig.blockSize, o);
    o = b.writeUInt32LE(n, o);
    o += Buffer.from(r.sig.weaks.buffer, r.sig.weaks.byteOffset, n * 4).copy(b, o);
    o += r.sig.strongs.copy(b, o, 0, n * STRONG_LEN);
    if (fine) {
      o = b.writeUInt32LE(fine.size, o);
      o += fine.seed.copy(b, o, 0, 8);
      o += fine.sums.copy(b, o);
    }
  }
  if (xh) o += xh.copy(b, o);
  return b;
}

/**
 * MetaWriter collects records in order; a record may still be computing (its signature in the pool).
 * finish() waits for them and returns the compressed engine_metadata.
 */
export class MetaWriter {
  readonly #parts: (Buffer | Promise<MetaRecord>)[] = [META_MAGIC];
  add(r: MetaRecord | Promise<MetaRecord>): void {
    if (r instanceof Promise) r.catch(() => undefined); // awaited by finish(); not unhandled meanwhile
    this.#parts.push(r instanceof Promise ? r : encodeMeta(r));
  }
  async finish(): Promise<Buffer> {
    const parts: Buffer[] = [];
    for (const p of this.#parts) parts.push(p instanceof Promise ? encodeMeta(await p) : p);
    // zstd level 1: it stores the random weak/strong sums at memory speed (deflate spent ~20 ms per MB
    // on them) and still compresses paths and attributes well; zstd is already a dependency (transforms)
    return zstd().compress(Buffer.concat(parts), { compressionLevel: 1, checksumFlag: true });
  }
}

/** parseMeta reads an engine_metadata; IntegrityError when it is not one of ours or is damaged. */
export function parseMeta(buf: Buffer): Map<string, MetaRecord> {
  let raw: Buffer;
  try {
    raw = zstd().decompress(buf);
  } catch (err) {
    throw new IntegrityError('rsync engine_metadata: cannot decompress (damaged or not an rsync engine state)', { cause: err });
  }
  const magic = raw.subarray(0, META_MAGIC.length);
  if (raw.length < META_MAGIC.length || !(magic.equals(META_MAGIC) || META_MAGIC_OLD.some((m) => magic.equals(m)))) {
    throw new IntegrityError('rsync engine_metadata: bad magic (not written by floe\'s rsync engine)');
  }
  const out = new Map<string, MetaRecord>();
  let o = META_MAGIC.length;
  const need = (n: number) => {
    if (o + n > raw.length) throw new IntegrityError('rsync engine_metadata: truncated');
  };
  while (o < raw.length) {
    const start = o;
    need(2);
    const pl = raw.readUInt16LE(o);
    o += 2;
    need(pl + FIXED);
    const path = raw.toString('utf8', o, o + pl);
    o += pl;
    const flags = raw[o++];
    const mode = raw.readUInt32LE(o); o += 4;
    const ino = raw.readBigUInt64LE(o); o += 8;
    const size = Number(raw.readBigUInt64LE(o)); o += 8;
    const mtimeNs = raw.readBigInt64LE(o); o += 8;
    const ctimeNs = raw.readBigInt64LE(o); o += 8;
    let sig: Signature | undefined;
    if (flags & F_SIG) {
      need(40);
      const sha = raw.subarray(o, o + 32); o += 32;
      const blockSize = raw.readUInt32LE(o); o += 4;
      const n = raw.readUInt32LE(o); o += 4;
      need(n * (4 + STRONG_LEN));
      if (blockSize < 1 || Math.ceil(size / blockSize) !== n) throw new IntegrityError(`rsync engine_metadata: ${path}: bad signature`);
      const weaks = new Uint32Array(n);
      Buffer.from(weaks.buffer).set(raw.subarray(o, o + n * 4));
      o += n * 4;
      const strongs = raw.subarray(o, o + n * STRONG_LEN); o += n * STRONG_LEN;
      sig = { sha, blockSize, weaks, strongs };
      if (flags & F_FINE) {
        need(12);
        const fineSize = raw.readUInt32LE(o); o += 4;
        const seed = raw.subarray(o, o + 8); o += 8;
        if (fineSize < 1 || fineSize > blockSize) throw new IntegrityError(`rsync engine_metadata: ${path}: bad fine sums`);
        const len = fineCount(size, blockSize, fineSize) * FINE_LEN;
        need(len);
        sig.fine = { size: fineSize, seed, sums: raw.subarray(o, o + len) };
        o += len;
      }
    }
    let xh: Buffer | undefined;
    if (flags & F_XH) {
      need(XH_LEN);
      xh = raw.subarray(o, o + XH_LEN); o += XH_LEN;
    }
    out.set(path, { path, mode, ino, size, mtimeNs, ctimeNs, sig, xh, raw: raw.subarray(start, o) });
  }
  return out;
}

/** zstd loads zstd-napi on first use (only rsync state needs it on this thread; ~10 ms of every start). */
function zstd(): typeof import('zstd-napi') {
  return createRequire(import.meta.url)('zstd-napi') as typeof import('zstd-napi');
}
