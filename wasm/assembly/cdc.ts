/**
 * Content-defined segmenter: FastCDC gear hash with normalized chunking (AssemblyScript).
 *
 * Model (Xia et al., "FastCDC", USENIX ATC 2016, with the cut taken after the matching byte): inside a
 * chunk, the bytes at index j < minSize are not hashed; for minSize <= j < maxSize,
 *   h = (h << 1) + gear[x[j]]   (u64, wrapping)
 * and the chunk ends after byte j when (h & mask) == 0, with mask = maskS (more bits: cuts are rarer)
 * while j < avgSize and maskL (fewer bits) from avgSize on; it ends after byte maxSize - 1 otherwise.
 * h restarts at 0 for each chunk. Because h is shifted left once per byte, bit k of h depends only on the
 * last k + 1 bytes: the masks therefore take the TOP bits of h, which depend on the last 64 bytes.
 *
 * Resumable: the chunk state (h, bytes already in the current chunk) lives in an 16-byte state record
 * (h: u64 at +0, pos: u32 at +8) that the caller keeps between calls, so a stream can be fed in buffers
 * split anywhere and the cut points are the same as for one buffer.
 */

/**
 * cdcCuts scans p[0..len) and writes the offset just past each chunk end (relative to p, ascending) to
 * out (u32 each); returns their count (at most floor(len / minSize) + 1). gear is 256 u64; state is the
 * 16-byte record above, read on entry and written on exit; bitsS/bitsL are the widths of maskS/maskL
 * (1..63). Requires 0 < minSize <= avgSize <= maxSize.
 */
export function cdcCuts(p: usize, len: u32, gear: usize, state: usize, minSize: u32, avgSize: u32,
                        maxSize: u32, bitsS: u32, bitsL: u32, out: usize): u32 {
  const maskS: u64 = ~(<u64>0) << (64 - <u64>bitsS);
  const maskL: u64 = ~(<u64>0) << (64 - <u64>bitsL);
  let h = load<u64>(state);
  let pos = load<u32>(state, 8);
  let i: u32 = 0;
  let cuts: u32 = 0;
  while (i < len) {
    if (pos < minSize) {
      const skip = minSize - pos < len - i ? minSize - pos : len - i;
      pos += skip;
      i += skip;
      continue;
    }
    const small = pos < avgSize;
    const mask = small ? maskS : maskL;
    const room = (small ? avgSize : maxSize) - pos;
    const stop = room < len - i ? i + room : len;
    const start = i;
    let cut = false;
    while (i < stop) {
      h = (h << 1) + load<u64>(gear + (<usize>load<u8>(p + i) << 3));
      i++;
      if ((h & mask) == 0) {
        cut = true;
        break;
      }
    }
    pos += i - start;
    if (cut || pos >= maxSize) {
      store<u32>(out + (<usize>cuts << 2), i);
      cuts++;
      pos = 0;
      h = 0;
    }
  }
  store<u64>(state, h);
  store<u32>(state, pos, 8);
  return cuts;
}
