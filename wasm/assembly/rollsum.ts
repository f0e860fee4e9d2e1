/**
 * rsync weak rolling checksum, block signatures and weak-match scanning (AssemblyScript).
 *
 * The weak sum of a window x[0..n) is, with unsigned bytes and no character offset:
 *   a = sum(x[i]) mod 2^16,  b = sum((n - i) * x[i]) mod 2^16,  weak = (b << 16) | a
 * This is librsync's rollsum with ROLLSUM_CHAR_OFFSET = 0 and the "rolling checksum" of the rsync
 * technical report (Tridgell & Mackerras, TR-CS-96-05). It is NOT byte-identical to rsync's
 * get_checksum1(), which sign-extends bytes >= 0x80 (schar). Rolling one byte to the right:
 *   a' = a - x[i] + x[i+n],  b' = b - n * x[i] + a'
 * All arithmetic is done on u32 (or i16 lanes) and masked at the end: mod 2^32 arithmetic reduced mod
 * 2^16 equals mod 2^16 arithmetic, so no intermediate reduction is needed.
 *
 * Memory contract: every pointer is a byte offset into this module's memory, owned by the caller (the
 * TypeScript facade, wasm/instance.ts). No function allocates.
 */

/** Window state left by roll(): a and b of the last window written. */
let lastA: u32 = 0;
let lastB: u32 = 0;

/** EMPTY marks a free slot in the signature hash table (block index field). */
const EMPTY: u32 = 0xffffffff;
/** HASH_MUL: Knuth's multiplicative hash constant (2^32 / golden ratio); the top bits index tables. */
const HASH_MUL: u32 = 0x9e3779b1;
/** SCAN_CHUNK: positions rolled into the scratch area before they are looked up (16 KiB of sums and
 * 16 KiB of candidates: they stay in L1 between the two passes). */
const SCAN_CHUNK: u32 = 4096;

/** weakSum returns the weak sum of the window p[0..n). */
export function weakSum(p: usize, n: u32): u32 {
  let a: u32 = 0;
  let b: u32 = 0;
  for (let i: u32 = 0; i < n; i++) {
    a += <u32>load<u8>(p + i);
    b += a;
  }
  return (b << 16) | (a & 0xffff);
}

/** windowA/windowB: the a and b sums of p[0..n) as weakSum computes them (exported to seed roll()). */
function sumsOf(p: usize, n: u32): void {
  let a: u32 = 0;
  let b: u32 = 0;
  for (let i: u32 = 0; i < n; i++) {
    a += <u32>load<u8>(p + i);
    b += a;
  }
  lastA = a;
  lastB = b;
}

/**
 * rollScalar writes out[k] = weak sum of the window p[k..k+n) for k in [0, count), given (a, b) of the
 * window at p. Reads p[0 .. count-1+n). Leaves lastA/lastB = sums of the window at p + count - 1.
 */
function rollScalar(p: usize, n: u32, count: u32, out: usize, a: u32, b: u32): void {
  store<u32>(out, (b << 16) | (a & 0xffff));
  for (let k: u32 = 1; k < count; k++) {
    const xo = <u32>load<u8>(p + k - 1);
    const xi = <u32>load<u8>(p + k - 1 + n);
    a += xi - xo;
    b += a - n * xo;
    store<u32>(out + (<usize>k << 2), (b << 16) | (a & 0xffff));
  }
  lastA = a;
  lastB = b;
}

/**
 * scan8 turns 8 u16 lanes into their inclusive prefix sums (mod 2^16). Two shift-and-add steps inside
 * each 64-bit half (i64x2.shl: no cross-lane shuffle), then lane 3 is added to the upper half (one
 * shuffle). Shuffles compete for one execution port on x86, shifts do not: this halves the loop's cost.
 */
// @ts-ignore: decorator
@inline function scan8(v: v128): v128 {
  v = i16x8.add(v, i64x2.shl(v, 16));
  v = i16x8.add(v, i64x2.shl(v, 32));
  return i16x8.add(v, i16x8.shuffle(v, i16x8.splat(0), 8, 8, 8, 8, 3, 3, 3, 3));
}

/**
 * rollSimd is rollScalar computed 8 windows at a time in i16 lanes. From the state at window k, with
 * d[j] = x[k+j+n] - x[k+j]:  a[k+1+j] = a[k] + prefix(d)[j],  b[k+1+j] = b[k] + prefix(a[k+1..] - n*x[k..])[j].
 * The prefix sums depend only on loaded bytes, so the loop-carried chain is one add and one lane splat.
 */
function rollSimd(p: usize, n: u32, count: u32, out: usize, a: u32, b: u32): void {
  store<u32>(out, (b << 16) | (a & 0xffff));
  let va = i16x8.splat(<i16>a);
  let vb = i16x8.splat(<i16>b);
  const vn = i16x8.splat(<i16>n);
  let k: u32 = 0;
  while (k + 8 < count) {
    const xo = v128.load8x8_u(p + k);
    const xi = v128.load8x8_u(p + k + n);
    const sa = i16x8.add(va, scan8(i16x8.sub(xi, xo)));
    const sb = i16x8.add(vb, scan8(i16x8.sub(sa, i16x8.mul(xo, vn))));
    const o = out + ((<usize>k + 1) << 2);
    v128.store(o, i16x8.shuffle(sa, sb, 0, 8, 1, 9, 2, 10, 3, 11));
    v128.store(o, i16x8.shuffle(sa, sb, 4, 12, 5, 13, 6, 14, 7, 15), 16);
    va = i16x8.shuffle(sa, sa, 7, 7, 7, 7, 7, 7, 7, 7);
    vb = i16x8.shuffle(sb, sb, 7, 7, 7, 7, 7, 7, 7, 7);
    k += 8;
  }
  a = <u32>i16x8.extract_lane_u(va, 0);
  b = <u32>i16x8.extract_lane_u(vb, 0);
  for (k = k + 1; k < count; k++) {
    const xo = <u32>load<u8>(p + k - 1);
    const xi = <u32>load<u8>(p + k - 1 + n);
    a += xi - xo;
    b += a - n * xo;
    store<u32>(out + (<usize>k << 2), (b << 16) | (a & 0xffff));
  }
  lastA = a;
  lastB = b;
}

// @ts-ignore: decorator
@inline function roll(p: usize, n: u32, count: u32, out: usize, a: u32, b: u32): void {
  if (ASC_FEATURE_SIMD) rollSimd(p, n, count, out, a, b);
  else rollScalar(p, n, count, out, a, b);
}

/**
 * rollingChecksums writes out[k] = weak sum of p[k..k+n) for every k in [0, len - n].
 * Requires 1 <= n <= len; out has room for len - n + 1 u32.
 */
export function rollingChecksums(p: usize, len: u32, n: u32, out: usize): void {
  sumsOf(p, n);
  roll(p, n, len - n + 1, out, lastA, lastB);
}

/**
 * blockSums writes the weak sums of the consecutive blocks p[i*n .. min(len, (i+1)*n)) to out and
 * returns their count, ceil(len / n). The last block may be short (its sum is over its own length).
 */
export function blockSums(p: usize, len: u32, n: u32, out: usize): u32 {
  let count: u32 = 0;
  for (let off: u32 = 0; off < len; off += n) {
    const m = len - off < n ? len - off : n;
    store<u32>(out + (<usize>count << 2), weakSum(p + off, m));
    count++;
  }
  return count;
}

/**
 * tableBuild fills an open-addressing hash table of 2^slotBits slots (8 bytes each: weak, first block
 * index) and a Bloom-style filter of 2^filterBits bits from weaks[0..count). Blocks that share a weak
 * sum are chained through next[] (i32, -1 ends) in ascending order, the slot holding the first one.
 * Requires 2^slotBits > count (the facade uses >= 2 * count, so probes stay short).
 */
export function tableBuild(weaks: usize, count: u32, table: usize, slotBits: u32, filter: usize,
                           filterBits: u32, next: usize): void {
  const slotMask: u32 = (1 << slotBits) - 1;
  memory.fill(table, 0xff, <usize>8 << slotBits);
  memory.fill(filter, 0, filterBits >= 3 ? <usize>1 << (filterBits - 3) : 1);
  for (let i = <i32>count - 1; i >= 0; i--) {
    const w = load<u32>(weaks + (<usize>i << 2));
    const h = w * HASH_MUL;
    const f = h >>> (32 - filterBits);
    const fp = filter + (f >>> 3);
    store<u8>(fp, load<u8>(fp) | <u8>(<u32>1 << (f & 7)));
    let slot = h >>> (32 - slotBits);
    while (true) {
      const sp = table + (<usize>slot << 3);
      const idx = load<u32>(sp, 4);
      if (idx == EMPTY) {
        store<u32>(sp, w);
        store<u32>(sp, <u32>i, 4);
        store<i32>(next + (<usize>i << 2), -1);
        break;
      }
      if (load<u32>(sp) == w) {
        store<u32>(next + (<usize>i << 2), idx);
        store<u32>(sp, <u32>i, 4);
        break;
      }
      slot = (slot + 1) & slotMask;
    }
  }
}

/**
 * lookup appends (position, first block index) to out for each sums[j] found in the table, j in
 * [0, count), position = base + j. Returns the new number of pairs. Two passes: a branch-free filter
 * pass compacts the candidate positions into cand[] (a filter hit is unpredictable, so a branch on it
 * would mispredict on every false positive), then the few candidates probe the hash table.
 */
function lookup(sums: usize, count: u32, base: u32, table: usize, slotBits: u32, filter: usize,
                filterBits: u32, out: usize, found: u32): u32 {
  const slotMask: u32 = (1 << slotBits) - 1;
  const fShift = 32 - filterBits;
  const sShift = 32 - slotBits;
  const cand = sums + (<usize>SCAN_CHUNK << 2);
  let c: usize = 0;
  for (let j: u32 = 0; j < count; j++) {
    const f = (load<u32>(sums + (<usize>j << 2)) * HASH_MUL) >>> fShift;
    store<u32>(cand + (c << 2), j);
    c += (<usize>load<u8>(filter + (f >>> 3)) >>> (f & 7)) & 1;
  }
  for (let i: usize = 0; i < c; i++) {
    const j = load<u32>(cand + (i << 2));
    const w = load<u32>(sums + (<usize>j << 2));
    let slot = (w * HASH_MUL) >>> sShift;
    while (true) {
      const sp = table + (<usize>slot << 3);
      const idx = load<u32>(sp, 4);
      if (idx == EMPTY) break;
      if (load<u32>(sp) == w) {
        const op = out + (<usize>found << 3);
        store<u32>(op, base + j);
        store<u32>(op, idx, 4);
        found++;
        break;
      }
      slot = (slot + 1) & slotMask;
    }
  }
  return found;
}

/**
 * scan reports every window p[k..k+n), k in [0, len - n], whose weak sum is in the table, as pairs
 * (k, first block index) written to out (8 bytes each, ascending k); returns the number of pairs.
 * It never skips: the caller checks the strong hash and applies rsync's skip-by-a-block itself.
 * Requires 1 <= n <= len; out has room for len - n + 1 pairs; sums has scanScratchBytes() bytes.
 */
export function scan(p: usize, len: u32, n: u32, table: usize, slotBits: u32, filter: usize,
                     filterBits: u32, sums: usize, out: usize): u32 {
  const total = len - n + 1;
  let found: u32 = 0;
  sumsOf(p, n);
  let a = lastA;
  let b = lastB;
  for (let s: u32 = 0; s < total; s += SCAN_CHUNK) {
    if (s > 0) {
      const xo = <u32>load<u8>(p + s - 1);
      a += <u32>load<u8>(p + s - 1 + n) - xo;
      b += a - n * xo;
    }
    const c = total - s < SCAN_CHUNK ? total - s : SCAN_CHUNK;
    roll(p + s, n, c, sums, a, b);
    a = lastA;
    b = lastB;
    found = lookup(sums, c, s, table, slotBits, filter, filterBits, out, found);
  }
  return found;
}

/** scanScratchBytes is the size of the scan() scratch area: SCAN_CHUNK sums, then SCAN_CHUNK candidates. */
export function scanScratchBytes(): u32 {
  return SCAN_CHUNK * 8;
}
