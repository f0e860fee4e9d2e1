/**
 * GNU tar header codec.
 *
 * Model: a tar archive is a sequence of 512-byte blocks. Each member is one header block followed by its data
 * padded to a block boundary. floe writes the GNU format exactly as GNU tar 1.34 does with `--format=gnu`
 * (its default) and `--listed-incremental`, so archives are byte-compatible with Freezer's tar engine:
 *
 * - magic "ustar  \0" (the old GNU magic/version pair, 8 bytes at offset 257);
 * - numbers in octal, zero-padded to the field width minus one and NUL-terminated ("0000644\0"); a number that
 *   does not fit (sizes of 8 GiB and more, uids from 2^21) uses base-256: first byte 0x80 (0xff when negative),
 *   then the value big-endian in the remaining bytes;
 * - names longer than 100 bytes go in a preceding "././@LongLink" member of type 'L' (name) or 'K' (link
 *   name), and the header itself keeps the first 100 bytes;
 * - devmajor/devminor only for character and block devices (all NUL otherwise);
 * - in incremental mode, atime and ctime in the old GNU fields at offsets 345 and 357;
 * - old GNU sparse members ('S'): four (offset, size) pairs in the header, more in extension blocks of 21
 *   pairs each, chained by an "isextended" byte; `size` is the stored byte count and `realsize` the file size.
 *
 * The decoder also accepts POSIX ustar headers (prefix field) and the small deviations of old archivers
 * (space-terminated numbers, NUL typeflag, signed checksums).
 */
import { IntegrityError } from '../../errors.js';

/** BLOCK: the tar block size, fixed by the format. */
export const BLOCK = 512;

export interface SparseChunk { offset: number; size: number }

export interface TarHeader {
  /** Member name as stored, e.g. './', './sub/', './a.txt' (directories end with '/'). */
  name: string;
  /** Permission bits incl. setuid/setgid/sticky (no file-type bits). */
  mode: number;
  uid: number;
  gid: number;
  /** Bytes of data following the header (for 'S': stored bytes; for 'D': dumpdir length). */
  size: number;
  /** Seconds (integer). */
  mtime: number;
  /**
   * Typeflag char: '0' file, '1' hard link, '2' symlink, '3' char dev, '4' block dev, '5' dir, '6' fifo,
   * 'D' GNU dumpdir, 'S' GNU old sparse ('L'/'K' are internal).
   */
  type: string;
  /** Symlink target or hard link target member name. */
  linkname: string;
  uname: string;
  gname: string;
  devmajor: number;
  devminor: number;
  /** GNU incremental headers carry them (old GNU atime/ctime fields). */
  atime?: number;
  ctime?: number;
  /** For type 'S'. GNU tar ends the map with a (realSize, 0) entry; the encoder writes the map as given. */
  sparse?: { realSize: number; map: SparseChunk[] };
}

/** Field offsets and widths of the ustar / old GNU header (see GNU tar's tar.h). */
const F = {
  name: [0, 100], mode: [100, 8], uid: [108, 8], gid: [116, 8], size: [124, 12], mtime: [136, 12],
  chksum: [148, 8], typeflag: [156, 1], linkname: [157, 100], magic: [257, 8], uname: [265, 32],
  gname: [297, 32], devmajor: [329, 8], devminor: [337, 8], prefix: [345, 155],
  atime: [345, 12], ctime: [357, 12], sparse: [386, 96], isextended: [482, 1], realsize: [483, 12],
} as const satisfies Record<string, readonly [number, number]>;

/** GNU_MAGIC: "ustar  \0", magic and version of the old GNU format that GNU tar still writes. */
const GNU_MAGIC = Buffer.from('ustar  \0', 'latin1');
/** Sparse pairs: 4 in the header, 21 per extension block (21 x 24 = 504, isextended at 504). */
const SPARSES_IN_HEADER = 4;
const SPARSES_IN_EXTENSION = 21;
/** NAME_FIELD: names up to 100 bytes fit the header (GNU format stores exactly 100 without a NUL). */
const NAME_FIELD = 100;
const LONGLINK_NAME = '././@LongLink';

/** padding(size) = number of zero bytes to append after `size` data bytes to reach a 512 boundary. */
export function padding(size: number): number {
  const r = size % BLOCK;
  return r === 0 ? 0 : BLOCK - r;
}

/** END_OF_ARCHIVE: two zero blocks. GNU tar also pads the archive to its 10240-byte record (writer decides). */
export const END_OF_ARCHIVE: Buffer = Buffer.alloc(2 * BLOCK);

// ---------------------------------------------------------------------------------------------- encoding

/** OCTAL_LIMIT[len]: 8 ** (len - 1), the first value an octal field of `len` bytes cannot hold. */
const OCTAL_LIMIT = Array.from({ length: 13 }, (_, len) => 8 ** Math.max(0, len - 1));

/** writeNumber stores `value` in the field at [off, off+len): octal when it fits, base-256 otherwise. */
function writeNumber(buf: Buffer, off: number, len: number, value: number, field: string): void {
  if (!Number.isInteger(value)) value = Math.floor(value);
  if (value >= 0 && value < OCTAL_LIMIT[len]) {
    // Digit by digit: toString(8) + padStart + buf.write cost ~10x more, for 8 numbers per member.
    buf[off + len - 1] = 0;
    for (let i = off + len - 2; i >= off; i--) {
      buf[i] = 0x30 + (value % 8);
      value = Math.floor(value / 8);
    }
    return;
  }
  let v = BigInt(value);
  const limit = 1n << BigInt(8 * (len - 1));
  if (v >= limit || v < -limit) throw new RangeError(`tar header: ${field} ${value} does not fit ${len} bytes`);
  if (v < 0n) v += 1n << BigInt(8 * len); // two's complement; the top byte becomes 0xff
  for (let i = len - 1; i >= 1; i--) {
    buf[off + i] = Number(v & 0xffn);
    v >>= 8n;
  }
  buf[off] = value < 0 ? 0xff : 0x80;
}

/**
 * writeString copies the UTF-8 bytes of `s`, truncated to the field (GNU tar uses strncpy: no NUL if
 * full), into a field that holds zeros. Returns the full UTF-8 length of `s`, so the caller can tell a
 * truncated name. ASCII, nearly every name, is copied char by char without making a Buffer.
 */
function writeString(buf: Buffer, off: number, len: number, s: string | Buffer): number {
  if (typeof s === 'string') {
    const n = s.length;
    let i = 0;
    for (; i < n && i < len; i++) {
      const c = s.charCodeAt(i);
      if (c > 0x7f) break;
      buf[off + i] = c;
    }
    if (i === n) return n;
    if (i === len) {
      let j = i;
      while (j < n && s.charCodeAt(j) <= 0x7f) j++;
      if (j === n) return n; // all ASCII, longer than the field
    }
    s = Buffer.from(s, 'utf8');
  }
  s.copy(buf, off, 0, Math.min(len, s.length));
  return s.length;
}

/** setChecksum computes the POSIX checksum (bytes summed with the field as spaces): 6 octal digits, NUL, space. */
function setChecksum(buf: Buffer, off = 0): void {
  const at = off + F.chksum[0];
  for (let i = at; i < at + F.chksum[1]; i++) buf[i] = 0x20;
  let sum = 0;
  for (let i = off; i < off + BLOCK; i++) sum += buf[i];
  writeNumber(buf, at, 7, sum, 'checksum'); // at most 512 x 255 = 0o377000: 6 digits and a NUL
  buf[at + 7] = 0x20;
}

/** longLinkMember builds the ././@LongLink header ('L' or 'K') and its NUL-terminated, padded name. */
function longLinkMember(type: 'L' | 'K', value: Buffer): Buffer {
  const block = Buffer.alloc(BLOCK);
  writeString(block, F.name[0], F.name[1], LONGLINK_NAME);
  writeNumber(block, F.mode[0], F.mode[1], 0o644, 'mode');
  writeNumber(block, F.uid[0], F.uid[1], 0, 'uid');
  writeNumber(block, F.gid[0], F.gid[1], 0, 'gid');
  writeNumber(block, F.size[0], F.size[1], value.length + 1, 'size');
  writeNumber(block, F.mtime[0], F.mtime[1], 0, 'mtime');
  block[F.typeflag[0]] = type.charCodeAt(0);
  GNU_MAGIC.copy(block, F.magic[0]);
  // GNU tar 1.34 names the owner of its private headers "root" (verified with od).
  writeString(block, F.uname[0], F.uname[1], 'root');
  writeString(block, F.gname[0], F.gname[1], 'root');
  setChecksum(block);
  const data = Buffer.alloc(value.length + 1 + padding(value.length + 1));
  value.copy(data);
  return Buffer.concat([block, data]);
}

function writeSparsePairs(buf: Buffer, off: number, map: SparseChunk[]): void {
  map.forEach((c, i) => {
    writeNumber(buf, off + i * 24, 12, c.offset, 'sparse offset');
    writeNumber(buf, off + i * 24 + 12, 12, c.size, 'sparse size');
  });
}

/** sparseExtensions builds the extension blocks for the map entries beyond the first four. */
function sparseExtensions(rest: SparseChunk[]): Buffer[] {
  const blocks: Buffer[] = [];
  for (let i = 0; i < rest.length; i += SPARSES_IN_EXTENSION) {
    const block = Buffer.alloc(BLOCK);
    writeSparsePairs(block, 0, rest.slice(i, i + SPARSES_IN_EXTENSION));
    block[504] = i + SPARSES_IN_EXTENSION < rest.length ? 1 : 0;
    blocks.push(block);
  }
  return blocks;
}

/**
 * headerBlock fills the 512 bytes at `off` with the member's header block, names truncated to their
 * fields, sparse map included. Returns false when a name or link name is longer than its field (the
 * member then needs a ././@LongLink member first); the block is complete either way.
 */
function headerBlock(h: TarHeader, buf: Buffer, off: number): boolean {
  buf.fill(0, off, off + BLOCK);
  const nameBytes = writeString(buf, off + F.name[0], F.name[1], h.name);
  const linkBytes = writeString(buf, off + F.linkname[0], F.linkname[1], h.linkname ?? '');
  writeNumber(buf, off + F.mode[0], F.mode[1], h.mode & 0o7777, 'mode');
  writeNumber(buf, off + F.uid[0], F.uid[1], h.uid, 'uid');
  writeNumber(buf, off + F.gid[0], F.gid[1], h.gid, 'gid');
  writeNumber(buf, off + F.size[0], F.size[1], h.size, 'size');
  writeNumber(buf, off + F.mtime[0], F.mtime[1], h.mtime, 'mtime');
  buf[off + F.typeflag[0]] = h.type.charCodeAt(0);
  GNU_MAGIC.copy(buf, off + F.magic[0]);
  // GNU tar ends the owner names with a NUL: at most 31 bytes, cut even inside a UTF-8 character.
  writeString(buf, off + F.uname[0], F.uname[1] - 1, h.uname ?? '');
  writeString(buf, off + F.gname[0], F.gname[1] - 1, h.gname ?? '');
  if (h.type === '3' || h.type === '4') {
    writeNumber(buf, off + F.devmajor[0], F.devmajor[1], h.devmajor, 'devmajor');
    writeNumber(buf, off + F.devminor[0], F.devminor[1], h.devminor, 'devminor');
  }
  if (h.atime !== undefined) writeNumber(buf, off + F.atime[0], F.atime[1], h.atime, 'atime');
  if (h.ctime !== undefined) writeNumber(buf, off + F.ctime[0], F.ctime[1], h.ctime, 'ctime');
  if (h.sparse) {
    const map = h.sparse.map;
    writeSparsePairs(buf, off + F.sparse[0], map.slice(0, SPARSES_IN_HEADER));
    buf[off + F.isextended[0]] = map.length > SPARSES_IN_HEADER ? 1 : 0;
    writeNumber(buf, off + F.realsize[0], F.realsize[1], h.sparse.realSize, 'realsize');
  }
  setChecksum(buf, off);
  return nameBytes <= NAME_FIELD && linkBytes <= NAME_FIELD;
}

/**
 * encodeHeaderInto writes the member's header into the 512 bytes of `buf` at `off` when that one block is
 * the whole header (names within their fields, no sparse extension blocks) and returns true; else it
 * returns false and the caller uses encodeHeader. For the archiver: one block straight into its output.
 * Throws RangeError as encodeHeader.
 */
export function encodeHeaderInto(h: TarHeader, buf: Buffer, off: number): boolean {
  if (h.sparse && h.sparse.map.length > SPARSES_IN_HEADER) return false;
  return headerBlock(h, buf, off);
}

/**
 * encodeHeader returns the complete header blocks for one member, in GNU format (magic "ustar  \0"):
 * a ././@LongLink 'K' member when linkname > 100 bytes, an 'L' member when name > 100 bytes (each with its
 * NUL-terminated name padded to 512), then the header block, then for 'S' the sparse extension headers when
 * the map has more than 4 entries. Numbers too big for octal use base-256 (sizes over 8 GiB, big uids).
 * Names are UTF-8. Checksum per POSIX. Data blocks are NOT included.
 * Throws RangeError when a number does not fit even in base-256.
 */
export function encodeHeader(h: TarHeader): Buffer {
  const block = Buffer.allocUnsafe(BLOCK);
  const single = headerBlock(h, block, 0);
  const extensions = h.sparse ? sparseExtensions(h.sparse.map.slice(SPARSES_IN_HEADER)) : [];
  if (single && extensions.length === 0) return block;
  const parts: Buffer[] = [];
  const link = Buffer.from(h.linkname ?? '', 'utf8');
  const name = Buffer.from(h.name, 'utf8');
  if (link.length > NAME_FIELD) parts.push(longLinkMember('K', link));
  if (name.length > NAME_FIELD) parts.push(longLinkMember('L', name));
  parts.push(block, ...extensions);
  return Buffer.concat(parts);
}

// ---------------------------------------------------------------------------------------------- decoding

/**
 * readNumber parses an octal (space/NUL padded) or base-256 field. Returns NaN for a malformed field so the
 * caller can report which field is bad.
 */
export function readNumber(buf: Buffer, off: number, len: number): number {
  const first = buf[off];
  if (first === 0x80 || first === 0xff) {
    let v = BigInt(first === 0xff ? -1 : 0);
    for (let i = 1; i < len; i++) v = (v << 8n) | BigInt(buf[off + i]);
    if (first === 0x80) v &= (1n << BigInt(8 * (len - 1))) - 1n;
    return Number(v);
  }
  let i = off;
  const end = off + len;
  while (i < end && (buf[i] === 0x20 || buf[i] === 0)) {
    if (buf[i] === 0) { // a leading NUL means an empty field
      return 0;
    }
    i++;
  }
  let v = 0;
  let digits = 0;
  for (; i < end; i++) {
    const c = buf[i];
    if (c >= 0x30 && c <= 0x37) { v = v * 8 + (c - 0x30); digits++; continue; }
    if (c === 0 || c === 0x20) break;
    return NaN;
  }
  return digits === 0 ? 0 : v;
}

function readString(buf: Buffer, off: number, len: number): string {
  let end = buf.indexOf(0, off);
  if (end < 0 || end > off + len) end = off + len;
  return buf.toString('utf8', off, end);
}

function isZeroBlock(block: Buffer): boolean {
  for (let i = 0; i < BLOCK; i++) if (block[i] !== 0) return false;
  return true;
}

/** verifyChecksum accepts the unsigned POSIX sum and the signed sum some old archivers wrote. */
function verifyChecksum(block: Buffer): void {
  const stored = readNumber(block, F.chksum[0], F.chksum[1]);
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const b = i >= F.chksum[0] && i < F.chksum[0] + F.chksum[1] ? 0x20 : block[i];
    unsigned += b;
    signed += b > 127 ? b - 256 : b;
  }
  if (stored !== unsigned && stored !== signed) {
    throw new IntegrityError('corrupted archive: bad tar header checksum');
  }
}

function readSparsePairs(buf: Buffer, off: number, count: number): SparseChunk[] {
  const map: SparseChunk[] = [];
  for (let i = 0; i < count; i++) {
    const o = off + i * 24;
    if (buf[o] === 0) break; // an empty offset field ends the list
    const offset = readNumber(buf, o, 12);
    const size = readNumber(buf, o + 12, 12);
    if (Number.isNaN(offset) || Number.isNaN(size)) throw new IntegrityError('corrupted archive: bad sparse map');
    map.push({ offset, size });
  }
  return map;
}

/** sparseExtended tells whether an 'S' header (or a sparse extension block) is followed by an extension block. */
export function sparseExtended(block: Buffer, isExtensionBlock = false): boolean {
  return block[isExtensionBlock ? 504 : F.isextended[0]] !== 0;
}

/** decodeSparseExtension parses one old GNU sparse extension block (21 pairs, isextended at 504). */
export function decodeSparseExtension(block: Buffer): { map: SparseChunk[]; extended: boolean } {
  return { map: readSparsePairs(block, 0, SPARSES_IN_EXTENSION), extended: sparseExtended(block, true) };
}

function num(block: Buffer, field: keyof typeof F): number {
  const [off, len] = F[field];
  const v = readNumber(block, off, len);
  if (Number.isNaN(v)) throw new IntegrityError(`corrupted archive: bad ${field} field in tar header`);
  return v;
}

/**
 * decodeHeader parses one 512-byte block (returns null for an all-zero block). Throws IntegrityError on a
 * bad checksum or a malformed number. Long names ('L'/'K'), pax records and sparse extension blocks are
 * resolved by the reader, which sees the following blocks.
 */
export function decodeHeader(block: Buffer): TarHeader | null {
  if (block.length < BLOCK) throw new IntegrityError('truncated archive: short tar header');
  if (isZeroBlock(block)) return null;
  verifyChecksum(block);
  const magic = block.toString('latin1', F.magic[0], F.magic[0] + 6);
  const gnu = block.toString('latin1', F.magic[0], F.magic[0] + 8) === 'ustar  \0';
  const ustar = magic === 'ustar\0';
  let type = String.fromCharCode(block[F.typeflag[0]]);
  if (type === '\0' || type === '7') type = '0'; // old archivers / contiguous files
  let name = readString(block, F.name[0], F.name[1]);
  if (ustar && block[F.prefix[0]] !== 0) name = `${readString(block, F.prefix[0], F.prefix[1])}/${name}`;
  const h: TarHeader = {
    name,
    mode: num(block, 'mode') & 0o7777,
    uid: num(block, 'uid'),
    gid: num(block, 'gid'),
    size: num(block, 'size'),
    mtime: num(block, 'mtime'),
    type,
    linkname: readString(block, F.linkname[0], F.linkname[1]),
    uname: gnu || ustar ? readString(block, F.uname[0], F.uname[1]) : '',
    gname: gnu || ustar ? readString(block, F.gname[0], F.gname[1]) : '',
    devmajor: gnu || ustar ? num(block, 'devmajor') : 0,
    devminor: gnu || ustar ? num(block, 'devminor') : 0,
  };
  if (gnu) {
    if (block[F.atime[0]] !== 0) h.atime = num(block, 'atime');
    if (block[F.ctime[0]] !== 0) h.ctime = num(block, 'ctime');
    if (type === 'S') {
      h.sparse = { realSize: num(block, 'realsize'), map: readSparsePairs(block, F.sparse[0], SPARSES_IN_HEADER) };
    }
  }
  // Old (pre-POSIX) archives mark directories only by a trailing slash.
  if (type === '0' && name.endsWith('/')) h.type = '5';
  return h;
}
