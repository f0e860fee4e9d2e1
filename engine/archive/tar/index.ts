/**
 * The tar engine: Freezer's archive format, GNU tar with `--listed-incremental`.
 *
 * Model. A backup level is one GNU tar archive plus one snapshot file (Freezer's `engine_metadata`):
 * - writer.ts walks the tree and writes the archive as `tar --create --listed-incremental` 1.34 does: all
 *   directories first as dumpdir ('D') members listing their entries, then the files that changed since
 *   the previous level; it also produces the new snapshot file.
 * - snapshot.ts reads and writes snapshot files (format 2, as tar 1.34; 0 and 1 read) and holds the
 *   incremental rule (which files a level dumps).
 * - reader.ts parses tar streams (GNU, ustar, pax; long names, sparse members).
 * - extract.ts restores one level as `tar --incremental --extract`; dumpdir.ts purges what a level's
 *   dumpdirs no longer list (deletions, renames).
 * - header.ts is the 512-byte header codec shared by both directions.
 * Real GNU tar reads floe's archives and snapshots, and floe reads tar's, in both directions.
 */
export { createTarBackup, estimateTree, type TarBackup, type TarBackupOptions } from './writer.js';
export {
  parseSnapshot, serializeSnapshot, PreviousState, SNAPSHOT_HEADER, SNAPSHOT_FORMAT,
  type Snapshot, type SnapshotDirectory, type Children,
} from './snapshot.js';
export { readTar, type TarEntry, type ReadOptions } from './reader.js';
export { extractTar, type ExtractOptions, type ExtractResult } from './extract.js';
export {
  BLOCK, END_OF_ARCHIVE, encodeHeader, decodeHeader, padding, type TarHeader, type SparseChunk,
} from './header.js';
