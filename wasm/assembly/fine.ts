/**
 * Fine sums for the rsync engine: XXH64 with a seed, over the sub-blocks of blocks.
 *
 * XXH64 is Yann Collet's 64-bit xxHash (the reference `xxhsum -H1` prints it; XXH64("", 0) =
 * ef46db3751d8e999, XXH64("abc", 0) = 44bc2cf5ad770999). The rsync engine keeps one per sub-block of
 * a large file's blocks so a delta can copy the unchanged parts of a block that did not match whole
 * (docs/rsync-format.md): the seed is random per signature, so crafted data cannot aim at a collision.
 *
 * Sub-blocks: each block of n bytes is cut into sub-blocks of f bytes from its start; the last one of a
 * block is shorter when f does not divide n, and the last one of the data when the data ends first.
 */

const P1: u64 = 0x9e3779b185ebca87;
const P2: u64 = 0xc2b2ae3d27d4eb4f;
const P3: u64 = 0x165667b19e3779f9;
const P4: u64 = 0x85ebca77c2b2ae63;
const P5: u64 = 0x27d4eb2f165667c5;

// @ts-ignore: decorator
@inline function round(acc: u64, input: u64): u64 {
  return rotl<u64>(acc + input * P2, 31) * P1;
}

// @ts-ignore: decorator
@inline function merge(acc: u64, val: u64): u64 {
  return (acc ^ round(0, val)) * P1 + P4;
}

/** xxh64 returns XXH64(p[0..len), seed). */
export function xxh64(p: usize, len: u32, seed: u64): u64 {
  const end = p + <usize>len;
  let h: u64;
  if (len >= 32) {
    const limit = end - 32;
    let v1 = seed + P1 + P2;
    let v2 = seed + P2;
    let v3 = seed;
    let v4 = seed - P1;
    do {
      v1 = round(v1, load<u64>(p));
      v2 = round(v2, load<u64>(p, 8));
      v3 = round(v3, load<u64>(p, 16));
      v4 = round(v4, load<u64>(p, 24));
      p += 32;
    } while (p <= limit);
    h = rotl<u64>(v1, 1) + rotl<u64>(v2, 7) + rotl<u64>(v3, 12) + rotl<u64>(v4, 18);
    h = merge(h, v1);
    h = merge(h, v2);
    h = merge(h, v3);
    h = merge(h, v4);
  } else {
    h = seed + P5;
  }
  h += <u64>len;
  while (p + 8 <= end) {
    h ^= round(0, load<u64>(p));
    h = rotl<u64>(h, 27) * P1 + P4;
    p += 8;
  }
  if (p + 4 <= end) {
    h ^= <u64>load<u32>(p) * P1;
    h = rotl<u64>(h, 23) * P2 + P3;
    p += 4;
  }
  while (p < end) {
    h ^= <u64>load<u8>(p) * P5;
    h = rotl<u64>(h, 11) * P1;
    p++;
  }
  h ^= h >> 33;
  h *= P2;
  h ^= h >> 29;
  h *= P3;
  h ^= h >> 32;
  return h;
}

/**
 * fineSums writes XXH64(seed) of each sub-block of p[0..len) to out (8 bytes each, little-endian) and
 * returns their count. p starts `first` bytes into a block of n bytes; `first` is a multiple of f below
 * n (the facade checks). The seed arrives as two halves (no BigInt at the boundary).
 */
export function fineSums(p: usize, len: u32, n: u32, f: u32, first: u32, seedLo: u32, seedHi: u32, out: usize): u32 {
  const seed = (<u64>seedHi << 32) | <u64>seedLo;
  let inBlock = first;
  let off: u32 = 0;
  let count: u32 = 0;
  while (off < len) {
    let m = n - inBlock;
    if (m > f) m = f;
    if (m > len - off) m = len - off;
    store<u64>(out + (<usize>count << 3), xxh64(p + <usize>off, m, seed));
    count++;
    off += m;
    inBlock += m;
    if (inBlock == n) inBlock = 0;
  }
  return count;
}
