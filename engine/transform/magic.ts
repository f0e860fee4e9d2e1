/**
 * Stream magic: what a compressed stream starts with. Apart from compress.ts so that the threads that only
 * decrypt and verify (pipeline/serial-worker.ts, through encrypt.ts's password check) do not load the
 * compressors' modules (zlib, streams, child processes: ~10 ms of each such thread's start).
 */
import type { Compression } from './compress.js';

/**
 * detectCompression recognises a compressed stream by its first bytes (give it at least 6): gzip 1f8b08
 * (deflate), bzip2 "BZh1".."BZh9", xz fd377a585a00, zstd 28b52ffd. Anything else: undefined (which may
 * be an uncompressed tar, or garbage).
 */
export function detectCompression(head: Buffer): Compression | undefined {
  if (head.length >= 3 && head[0] === 0x1f && head[1] === 0x8b && head[2] === 0x08) return 'gzip';
  if (head.length >= 4 && head.subarray(0, 3).toString('latin1') === 'BZh' && head[3] >= 0x31 && head[3] <= 0x39) {
    return 'bzip2';
  }
  if (head.length >= 6 && head.subarray(0, 6).equals(XZ_MAGIC)) return 'xz';
  if (head.length >= 4 && head.readUInt32LE(0) === 0xfd2fb528) return 'zstd';
  return undefined;
}
const XZ_MAGIC = Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]);
