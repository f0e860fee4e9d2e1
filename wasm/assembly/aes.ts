/**
 * AES-256 forward cipher (T-tables) and CFB128 encryption/decryption, byte-identical to OpenSSL's
 * `aes-256-cfb` (CRYPTO_cfb128_encrypt) (AssemblyScript).
 *
 * NOT constant-time: the T-table and S-box lookups are indexed by secret-dependent bytes, so a local
 * attacker who shares the CPU cache can in principle recover key bits (Bernstein 2005, Osvik-Shamir-Tromer
 * 2006). WebAssembly has no AES instructions; node:crypto (OpenSSL, AES-NI) is both faster and
 * constant-time where the CPU has AES-NI, and stays the default backend where it wins the benchmark.
 *
 * Word layout: a state column is a little-endian u32 (row 0 in the low byte), so plain wasm loads read
 * it; TE is four 1 KiB tables TE_r[x] = rotl(TE_0[x], 8r), TE_0[x] = (2s, s, s, 3s) for s = S[x].
 *
 * Streaming state record (20 bytes, kept by the caller between calls): the 16-byte feedback register at
 * +0 and the position n (0..15) inside it at +16, exactly OpenSSL's (ivec, num): on encryption the
 * register holds E(previous ciphertext block) XOR the ciphertext bytes written so far in this block.
 */

// prettier-ignore
const SBOX: usize = memory.data<u8>([
  0x63, 0x7c, 0x77, 0x7b, 0xf2, 0x6b, 0x6f, 0xc5, 0x30, 0x01, 0x67, 0x2b, 0xfe, 0xd7, 0xab, 0x76,
  0xca, 0x82, 0xc9, 0x7d, 0xfa, 0x59, 0x47, 0xf0, 0xad, 0xd4, 0xa2, 0xaf, 0x9c, 0xa4, 0x72, 0xc0,
  0xb7, 0xfd, 0x93, 0x26, 0x36, 0x3f, 0xf7, 0xcc, 0x34, 0xa5, 0xe5, 0xf1, 0x71, 0xd8, 0x31, 0x15,
  0x04, 0xc7, 0x23, 0xc3, 0x18, 0x96, 0x05, 0x9a, 0x07, 0x12, 0x80, 0xe2, 0xeb, 0x27, 0xb2, 0x75,
  0x09, 0x83, 0x2c, 0x1a, 0x1b, 0x6e, 0x5a, 0xa0, 0x52, 0x3b, 0xd6, 0xb3, 0x29, 0xe3, 0x2f, 0x84,
  0x53, 0xd1, 0x00, 0xed, 0x20, 0xfc, 0xb1, 0x5b, 0x6a, 0xcb, 0xbe, 0x39, 0x4a, 0x4c, 0x58, 0xcf,
  0xd0, 0xef, 0xaa, 0xfb, 0x43, 0x4d, 0x33, 0x85, 0x45, 0xf9, 0x02, 0x7f, 0x50, 0x3c, 0x9f, 0xa8,
  0x51, 0xa3, 0x40, 0x8f, 0x92, 0x9d, 0x38, 0xf5, 0xbc, 0xb6, 0xda, 0x21, 0x10, 0xff, 0xf3, 0xd2,
  0xcd, 0x0c, 0x13, 0xec, 0x5f, 0x97, 0x44, 0x17, 0xc4, 0xa7, 0x7e, 0x3d, 0x64, 0x5d, 0x19, 0x73,
  0x60, 0x81, 0x4f, 0xdc, 0x22, 0x2a, 0x90, 0x88, 0x46, 0xee, 0xb8, 0x14, 0xde, 0x5e, 0x0b, 0xdb,
  0xe0, 0x32, 0x3a, 0x0a, 0x49, 0x06, 0x24, 0x5c, 0xc2, 0xd3, 0xac, 0x62, 0x91, 0x95, 0xe4, 0x79,
  0xe7, 0xc8, 0x37, 0x6d, 0x8d, 0xd5, 0x4e, 0xa9, 0x6c, 0x56, 0xf4, 0xea, 0x65, 0x7a, 0xae, 0x08,
  0xba, 0x78, 0x25, 0x2e, 0x1c, 0xa6, 0xb4, 0xc6, 0xe8, 0xdd, 0x74, 0x1f, 0x4b, 0xbd, 0x8b, 0x8a,
  0x70, 0x3e, 0xb5, 0x66, 0x48, 0x03, 0xf6, 0x0e, 0x61, 0x35, 0x57, 0xb9, 0x86, 0xc1, 0x1d, 0x9e,
  0xe1, 0xf8, 0x98, 0x11, 0x69, 0xd9, 0x8e, 0x94, 0x9b, 0x1e, 0x87, 0xe9, 0xce, 0x55, 0x28, 0xdf,
  0x8c, 0xa1, 0x89, 0x0d, 0xbf, 0xe6, 0x42, 0x68, 0x41, 0x99, 0x2d, 0x0f, 0xb0, 0x54, 0xbb, 0x16,
], 64);

/** TE: the four round tables, 4 x 256 u32, filled once when the instance starts. */
const TE: usize = memory.data(4096, 64);

function initTables(): void {
  for (let x: u32 = 0; x < 256; x++) {
    const s = <u32>load<u8>(SBOX + x);
    const s2 = ((s << 1) ^ ((s & 0x80) != 0 ? 0x1b : 0)) & 0xff;
    const t = s2 | (s << 8) | (s << 16) | ((s2 ^ s) << 24);
    store<u32>(TE + (x << 2), t);
    store<u32>(TE + 1024 + (x << 2), rotl<u32>(t, 8));
    store<u32>(TE + 2048 + (x << 2), rotl<u32>(t, 16));
    store<u32>(TE + 3072 + (x << 2), rotl<u32>(t, 24));
  }
}
initTables();

// @ts-ignore: decorator
@inline function subWord(w: u32): u32 {
  return <u32>load<u8>(SBOX + (w & 0xff)) | (<u32>load<u8>(SBOX + ((w >>> 8) & 0xff)) << 8) |
    (<u32>load<u8>(SBOX + ((w >>> 16) & 0xff)) << 16) | (<u32>load<u8>(SBOX + (w >>> 24)) << 24);
}

/** aesExpandKey256 writes the 60 round-key words (FIPS-197 section 5.2, Nk = 8) of key[0..32) to rk. */
export function aesExpandKey256(key: usize, rk: usize): void {
  for (let i: usize = 0; i < 8; i++) store<u32>(rk + (i << 2), load<u32>(key + (i << 2)));
  let rcon: u32 = 1;
  for (let i: usize = 8; i < 60; i++) {
    let t = load<u32>(rk + ((i - 1) << 2));
    if ((i & 7) == 0) {
      t = subWord(rotr<u32>(t, 8)) ^ rcon;
      rcon = ((rcon << 1) ^ ((rcon & 0x80) != 0 ? 0x1b : 0)) & 0xff;
    } else if ((i & 7) == 4) {
      t = subWord(t);
    }
    store<u32>(rk + (i << 2), load<u32>(rk + ((i - 8) << 2)) ^ t);
  }
}

// @ts-ignore: decorator
@inline function te(r: usize, x: u32): u32 {
  return load<u32>(TE + (r << 10) + (<usize>(x & 0xff) << 2));
}

// @ts-ignore: decorator
@inline function sb(x: u32): u32 {
  return <u32>load<u8>(SBOX + (x & 0xff));
}

/** aesEncryptBlock encrypts the 16 bytes at io in place with the 14-round key schedule rk (AES-256). */
export function aesEncryptBlock(rk: usize, io: usize): void {
  let s0 = load<u32>(io) ^ load<u32>(rk);
  let s1 = load<u32>(io, 4) ^ load<u32>(rk, 4);
  let s2 = load<u32>(io, 8) ^ load<u32>(rk, 8);
  let s3 = load<u32>(io, 12) ^ load<u32>(rk, 12);
  for (let r = 1; r < 14; r++) {
    rk += 16;
    const t0 = te(0, s0) ^ te(1, s1 >>> 8) ^ te(2, s2 >>> 16) ^ te(3, s3 >>> 24) ^ load<u32>(rk);
    const t1 = te(0, s1) ^ te(1, s2 >>> 8) ^ te(2, s3 >>> 16) ^ te(3, s0 >>> 24) ^ load<u32>(rk, 4);
    const t2 = te(0, s2) ^ te(1, s3 >>> 8) ^ te(2, s0 >>> 16) ^ te(3, s1 >>> 24) ^ load<u32>(rk, 8);
    const t3 = te(0, s3) ^ te(1, s0 >>> 8) ^ te(2, s1 >>> 16) ^ te(3, s2 >>> 24) ^ load<u32>(rk, 12);
    s0 = t0; s1 = t1; s2 = t2; s3 = t3;
  }
  rk += 16;
  store<u32>(io, (sb(s0) | (sb(s1 >>> 8) << 8) | (sb(s2 >>> 16) << 16) | (sb(s3 >>> 24) << 24)) ^ load<u32>(rk));
  store<u32>(io, (sb(s1) | (sb(s2 >>> 8) << 8) | (sb(s3 >>> 16) << 16) | (sb(s0 >>> 24) << 24)) ^ load<u32>(rk, 4), 4);
  store<u32>(io, (sb(s2) | (sb(s3 >>> 8) << 8) | (sb(s0 >>> 16) << 16) | (sb(s1 >>> 24) << 24)) ^ load<u32>(rk, 8), 8);
  store<u32>(io, (sb(s3) | (sb(s0 >>> 8) << 8) | (sb(s1 >>> 16) << 16) | (sb(s2 >>> 24) << 24)) ^ load<u32>(rk, 12), 12);
}

/**
 * cfbEncrypt encrypts src[0..len) to dst (dst may equal src) in AES-256-CFB128, continuing from the
 * state record st (register at +0, position at +16) and leaving it ready for the next call.
 */
export function cfbEncrypt(rk: usize, st: usize, src: usize, dst: usize, len: usize): void {
  let n = <usize>load<u32>(st, 16);
  let i: usize = 0;
  while (n != 0 && i < len) {
    const c = load<u8>(st + n) ^ load<u8>(src + i);
    store<u8>(dst + i, c);
    store<u8>(st + n, c);
    i++;
    n = (n + 1) & 15;
  }
  while (i + 16 <= len) {
    aesEncryptBlock(rk, st);
    const c0 = load<u32>(st) ^ load<u32>(src + i);
    const c1 = load<u32>(st, 4) ^ load<u32>(src + i, 4);
    const c2 = load<u32>(st, 8) ^ load<u32>(src + i, 8);
    const c3 = load<u32>(st, 12) ^ load<u32>(src + i, 12);
    store<u32>(dst + i, c0); store<u32>(dst + i, c1, 4); store<u32>(dst + i, c2, 8); store<u32>(dst + i, c3, 12);
    store<u32>(st, c0); store<u32>(st, c1, 4); store<u32>(st, c2, 8); store<u32>(st, c3, 12);
    i += 16;
  }
  if (i < len) {
    aesEncryptBlock(rk, st);
    while (i < len) {
      const c = load<u8>(st + n) ^ load<u8>(src + i);
      store<u8>(dst + i, c);
      store<u8>(st + n, c);
      i++;
      n++;
    }
  }
  store<u32>(st, <u32>n, 16);
}

/**
 * cfbDecrypt decrypts src[0..len) to dst (dst may equal src) in AES-256-CFB128, continuing from the
 * state record st. The register is refilled with ciphertext, as OpenSSL does.
 */
export function cfbDecrypt(rk: usize, st: usize, src: usize, dst: usize, len: usize): void {
  let n = <usize>load<u32>(st, 16);
  let i: usize = 0;
  while (n != 0 && i < len) {
    const c = load<u8>(src + i);
    store<u8>(dst + i, load<u8>(st + n) ^ c);
    store<u8>(st + n, c);
    i++;
    n = (n + 1) & 15;
  }
  while (i + 16 <= len) {
    aesEncryptBlock(rk, st);
    const c0 = load<u32>(src + i);
    const c1 = load<u32>(src + i, 4);
    const c2 = load<u32>(src + i, 8);
    const c3 = load<u32>(src + i, 12);
    store<u32>(dst + i, load<u32>(st) ^ c0); store<u32>(dst + i, load<u32>(st, 4) ^ c1, 4);
    store<u32>(dst + i, load<u32>(st, 8) ^ c2, 8); store<u32>(dst + i, load<u32>(st, 12) ^ c3, 12);
    store<u32>(st, c0); store<u32>(st, c1, 4); store<u32>(st, c2, 8); store<u32>(st, c3, 12);
    i += 16;
  }
  if (i < len) {
    aesEncryptBlock(rk, st);
    while (i < len) {
      const c = load<u8>(src + i);
      store<u8>(dst + i, load<u8>(st + n) ^ c);
      store<u8>(st + n, c);
      i++;
      n++;
    }
  }
  store<u32>(st, <u32>n, 16);
}
