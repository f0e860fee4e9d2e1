/**
 * Plain-TypeScript references for the WASM kernels: the tests check every kernel against these, and
 * `npm run bench:kernels` times the kernels against them.
 *
 * They follow the definitions, not the kernels' tricks: the rolling checksum rolls one byte at a time,
 * the scan looks windows up in a Map, FastCDC keeps its 64-bit hash as two 32-bit halves, and AES is the
 * byte-oriented cipher of FIPS-197 with its S-box derived from GF(2^8) inverses (so it shares no table
 * with the WASM T-table code). Definitions and their sources are documented next to each kernel in
 * wasm/assembly/.
 */
import { cdcParams, type CdcOptions } from './segmenter.js';

// ---------------------------------------------------------------------------------------------------
// rsync weak rolling checksum (librsync rollsum, ROLLSUM_CHAR_OFFSET = 0: unsigned bytes, no offset)

/** weakSumRef: a = sum of bytes, b = sum of (n - i) * byte, both mod 2^16; weak = (b << 16) | a. */
export function weakSumRef(buf: Uint8Array, start = 0, n = buf.length - start): number {
  let a = 0;
  let b = 0;
  for (let i = 0; i < n; i++) {
    a = (a + buf[start + i]) & 0xffff;
    b = (b + a) & 0xffff;
  }
  return ((b << 16) | a) >>> 0;
}

/** rollingChecksumsRef returns the weak sum of the window at every offset 0..len-n, rolled byte by byte. */
export function rollingChecksumsRef(buf: Uint8Array, n: number): Uint32Array {
  if (buf.length < n) return new Uint32Array(0);
  const out = new Uint32Array(buf.length - n + 1);
  let a = 0;
  let b = 0;
  for (let i = 0; i < n; i++) {
    a = (a + buf[i]) & 0xffff;
    b = (b + a) & 0xffff;
  }
  out[0] = ((b << 16) | a) >>> 0;
  for (let k = 1; k < out.length; k++) {
    const xo = buf[k - 1];
    a = (a - xo + buf[k - 1 + n]) & 0xffff;
    b = (b - n * xo + a) & 0xffff;
    out[k] = ((b << 16) | a) >>> 0;
  }
  return out;
}

/** blockSignatureRef returns the weak sums of consecutive blocks of n bytes (the last may be short). */
export function blockSignatureRef(buf: Uint8Array, n: number): Uint32Array {
  const out = new Uint32Array(Math.ceil(buf.length / n));
  for (let i = 0; i < out.length; i++) out[i] = weakSumRef(buf, i * n, Math.min(n, buf.length - i * n));
  return out;
}

/**
 * scanRef reports every offset whose n-byte window has a weak sum present in `weaks`, with the index of
 * the first block of that weak sum (the kernel's contract); ascending offsets, no skipping.
 */
export function scanRef(buf: Uint8Array, n: number, weaks: Uint32Array): { offsets: number[]; blocks: number[] } {
  const first = new Map<number, number>();
  for (let i = weaks.length - 1; i >= 0; i--) first.set(weaks[i], i);
  const offsets: number[] = [];
  const blocks: number[] = [];
  const sums = rollingChecksumsRef(buf, n);
  for (let k = 0; k < sums.length; k++) {
    const idx = first.get(sums[k]);
    if (idx !== undefined) {
      offsets.push(k);
      blocks.push(idx);
    }
  }
  return { offsets, blocks };
}

// ---------------------------------------------------------------------------------------------------
// FastCDC with normalized chunking (model in wasm/assembly/cdc.ts)

/** CdcRef is the streaming FastCDC reference: push() returns the chunk ends inside each buffer. */
export class CdcRef {
  readonly #gearHi = new Uint32Array(256);
  readonly #gearLo = new Uint32Array(256);
  readonly #min: number;
  readonly #avg: number;
  readonly #max: number;
  readonly #maskS: number;
  readonly #maskL: number;
  #hi = 0;
  #lo = 0;
  #pos = 0;

  /** gear: 2048 bytes, 256 little-endian u64 (see gearTable in wasm/segmenter.ts). */
  constructor(gear: Uint8Array, options: CdcOptions) {
    const p = cdcParams(options);
    this.#min = p.minSize;
    this.#avg = p.avgSize;
    this.#max = p.maxSize;
    // Masks on the top bits of the u64 hash; bitsS <= 32 and bitsL <= 32 are enforced by cdcParams, so
    // both fit in the high half.
    this.#maskS = ((0xffffffff << (32 - p.bitsS)) >>> 0);
    this.#maskL = ((0xffffffff << (32 - p.bitsL)) >>> 0);
    const dv = new DataView(gear.buffer, gear.byteOffset, gear.byteLength);
    for (let i = 0; i < 256; i++) {
      this.#gearLo[i] = dv.getUint32(i * 8, true);
      this.#gearHi[i] = dv.getUint32(i * 8 + 4, true);
    }
  }

  get pending(): number {
    return this.#pos;
  }

  push(buf: Uint8Array): number[] {
    const cuts: number[] = [];
    let hi = this.#hi;
    let lo = this.#lo;
    let pos = this.#pos;
    for (let i = 0; i < buf.length; i++) {
      if (pos >= this.#min) {
        const x = buf[i];
        const nlo = ((lo << 1) >>> 0) + this.#gearLo[x];
        hi = (((hi << 1) | (lo >>> 31)) + this.#gearHi[x] + (nlo > 0xffffffff ? 1 : 0)) >>> 0;
        lo = nlo >>> 0;
        const mask = pos < this.#avg ? this.#maskS : this.#maskL;
        pos++;
        if ((hi & mask) === 0 || pos >= this.#max) {
          cuts.push(i + 1);
          hi = lo = pos = 0;
        }
      } else {
        pos++;
      }
    }
    this.#hi = hi;
    this.#lo = lo;
    this.#pos = pos;
    return cuts;
  }
}

// ---------------------------------------------------------------------------------------------------
// AES-256 (FIPS-197, byte-oriented) and CFB128 (NIST SP 800-38A section 6.3, OpenSSL's streaming)

const SBOX = makeSbox();

/** makeSbox derives the S-box: multiplicative inverse in GF(2^8) then the affine map (FIPS-197 5.1.1). */
function makeSbox(): Uint8Array {
  const exp = new Uint8Array(256);
  const log = new Uint8Array(256);
  let x = 1;
  for (let i = 0; i < 255; i++) {
    exp[i] = x;
    log[x] = i;
    x ^= xtime(x); // multiply by the generator 3
  }
  const s = new Uint8Array(256);
  for (let v = 0; v < 256; v++) {
    const inv = v === 0 ? 0 : exp[(255 - log[v]) % 255];
    let r = inv;
    for (let k = 1; k <= 4; k++) r ^= ((inv << k) | (inv >>> (8 - k))) & 0xff;
    s[v] = r ^ 0x63;
  }
  return s;
}

function xtime(b: number): number {
  return ((b << 1) ^ (b & 0x80 ? 0x1b : 0)) & 0xff;
}

/** expandKey256Ref returns the 240-byte key schedule (15 round keys) of a 32-byte key. */
export function expandKey256Ref(key: Uint8Array): Uint8Array {
  const w = new Uint8Array(240);
  w.set(key.subarray(0, 32));
  let rcon = 1;
  for (let i = 8; i < 60; i++) {
    const t = w.slice((i - 1) * 4, i * 4);
    if (i % 8 === 0) {
      const t0 = t[0];
      t[0] = SBOX[t[1]] ^ rcon; t[1] = SBOX[t[2]]; t[2] = SBOX[t[3]]; t[3] = SBOX[t0];
      rcon = xtime(rcon);
    } else if (i % 8 === 4) {
      for (let k = 0; k < 4; k++) t[k] = SBOX[t[k]];
    }
    for (let k = 0; k < 4; k++) w[i * 4 + k] = w[(i - 8) * 4 + k] ^ t[k];
  }
  return w;
}

/** encryptBlockRef encrypts one 16-byte block in place (state byte r + 4c = row r, column c). */
export function encryptBlockRef(rk: Uint8Array, s: Uint8Array): void {
  for (let i = 0; i < 16; i++) s[i] ^= rk[i];
  const t = new Uint8Array(16);
  for (let round = 1; round <= 14; round++) {
    for (let c = 0; c < 4; c++) {
      for (let r = 0; r < 4; r++) t[r + 4 * c] = SBOX[s[r + 4 * ((c + r) % 4)]]; // SubBytes + ShiftRows
    }
    if (round < 14) {
      for (let c = 0; c < 4; c++) { // MixColumns
        const a0 = t[4 * c], a1 = t[4 * c + 1], a2 = t[4 * c + 2], a3 = t[4 * c + 3];
        const all = a0 ^ a1 ^ a2 ^ a3;
        t[4 * c] ^= all ^ xtime(a0 ^ a1);
        t[4 * c + 1] ^= all ^ xtime(a1 ^ a2);
        t[4 * c + 2] ^= all ^ xtime(a2 ^ a3);
        t[4 * c + 3] ^= all ^ xtime(a3 ^ a0);
      }
    }
    for (let i = 0; i < 16; i++) s[i] = t[i] ^ rk[round * 16 + i];
  }
}

/**
 * AesCfbRef is AES-256-CFB128 with OpenSSL's streaming state (register + position), one byte at a time:
 * at position 0 the register is encrypted; each output byte is register[n] ^ input; the ciphertext byte
 * is fed back into register[n].
 */
export class AesCfbRef {
  readonly #rk: Uint8Array;
  readonly #reg = new Uint8Array(16);
  readonly #decrypt: boolean;
  #n = 0;

  constructor(key: Uint8Array, iv: Uint8Array, direction: 'encrypt' | 'decrypt') {
    this.#rk = expandKey256Ref(key);
    this.#reg.set(iv.subarray(0, 16));
    this.#decrypt = direction === 'decrypt';
  }

  update(input: Uint8Array): Uint8Array {
    const out = new Uint8Array(input.length);
    for (let i = 0; i < input.length; i++) {
      if (this.#n === 0) encryptBlockRef(this.#rk, this.#reg);
      const x = input[i];
      out[i] = this.#reg[this.#n] ^ x;
      this.#reg[this.#n] = this.#decrypt ? x : out[i];
      this.#n = (this.#n + 1) & 15;
    }
    return out;
  }
}

// ---------------------------------------------------------------------------------------------------
// XXH64 (xxHash, 64-bit) and the rsync engine's fine sums

const M64 = (1n << 64n) - 1n;
const XP1 = 0x9e3779b185ebca87n;
const XP2 = 0xc2b2ae3d27d4eb4fn;
const XP3 = 0x165667b19e3779f9n;
const XP4 = 0x85ebca77c2b2ae63n;
const XP5 = 0x27d4eb2f165667c5n;
const rotl64 = (x: bigint, r: bigint) => ((x << r) | (x >> (64n - r))) & M64;
const round64 = (acc: bigint, input: bigint) => (rotl64((acc + input * XP2) & M64, 31n) * XP1) & M64;
const merge64 = (acc: bigint, val: bigint) => (((acc ^ round64(0n, val)) * XP1) + XP4) & M64;

function le(buf: Uint8Array, at: number, bytes: number): bigint {
  let v = 0n;
  for (let i = bytes - 1; i >= 0; i--) v = (v << 8n) | BigInt(buf[at + i]);
  return v;
}

/** xxh64Ref is XXH64 as its specification defines it (xxhash.com, doc/xxhash_spec.md), in BigInt. */
export function xxh64Ref(buf: Uint8Array, seed = 0n, start = 0, len = buf.length - start): bigint {
  const end = start + len;
  let p = start;
  let h: bigint;
  if (len >= 32) {
    let v1 = (seed + XP1 + XP2) & M64;
    let v2 = (seed + XP2) & M64;
    let v3 = seed & M64;
    let v4 = (seed - XP1) & M64;
    for (; p + 32 <= end; p += 32) {
      v1 = round64(v1, le(buf, p, 8));
      v2 = round64(v2, le(buf, p + 8, 8));
      v3 = round64(v3, le(buf, p + 16, 8));
      v4 = round64(v4, le(buf, p + 24, 8));
    }
    h = (rotl64(v1, 1n) + rotl64(v2, 7n) + rotl64(v3, 12n) + rotl64(v4, 18n)) & M64;
    for (const v of [v1, v2, v3, v4]) h = merge64(h, v);
  } else {
    h = (seed + XP5) & M64;
  }
  h = (h + BigInt(len)) & M64;
  for (; p + 8 <= end; p += 8) h = (rotl64(h ^ round64(0n, le(buf, p, 8)), 27n) * XP1 + XP4) & M64;
  if (p + 4 <= end) { h = (rotl64(h ^ ((le(buf, p, 4) * XP1) & M64), 23n) * XP2 + XP3) & M64; p += 4; }
  for (; p < end; p++) h = (rotl64(h ^ ((BigInt(buf[p]) * XP5) & M64), 11n) * XP1) & M64;
  h ^= h >> 33n;
  h = (h * XP2) & M64;
  h ^= h >> 29n;
  h = (h * XP3) & M64;
  h ^= h >> 32n;
  return h;
}

/**
 * fineSumsRef: XXH64(seed) of each sub-block (blocks of n bytes from the buffer's start, each cut into
 * f-byte pieces from its own start), as 8 little-endian bytes each.
 */
export function fineSumsRef(buf: Uint8Array, n: number, f: number, seed: bigint): Uint8Array {
  const sums: bigint[] = [];
  for (let b = 0; b < buf.length; b += n) {
    const blockEnd = Math.min(buf.length, b + n);
    for (let s = b; s < blockEnd; s += f) sums.push(xxh64Ref(buf, seed, s, Math.min(f, blockEnd - s)));
  }
  const out = new Uint8Array(sums.length * 8);
  const v = new DataView(out.buffer);
  sums.forEach((x, i) => v.setBigUint64(i * 8, x, true));
  return out;
}
