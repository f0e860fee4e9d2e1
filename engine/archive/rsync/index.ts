/**
 * The rsync engine: block-based incremental backups with a real rolling-checksum delta.
 *
 * Model. Level 0 stores every entry of the tree and, for each regular file of SIG_MIN bytes or more, a
 * signature (per block: a rolling weak sum and a truncated SHA-256; the block size is rsync's square-root
 * rule unless --rsync-block-size) in the level's engine_metadata. Level N compares each path with that
 * state: unchanged paths (same mode, inode, size, mtime, ctime) are not read; a changed file is sent as a
 * delta against its version at level N-1 (copy-block and literal ops, found by the WASM scan in the worker
 * pool), or whole when it had no signature; paths gone since N-1 are deleted. Restore applies levels 0..N
 * in order; each delta is checked against the exact basis it was made from and each rebuilt file against
 * its recorded hash before it replaces anything.
 * - format.ts: the stream and engine_metadata formats (spec: docs/rsync-format.md), block size rule;
 * - backup.ts: createRsyncBackup (walk, change detection, renames, deletions, engine_metadata);
 * - filerun.ts: one regular file: whole or delta ops, new signature, SHA-256;
 * - kernels.ts: the worker-side signature and match search (engine/pipeline/worker.ts task kinds);
 * - restore.ts: extractRsync.
 * User xattrs (`user.*`) of files and directories are kept (source/xattr.ts, through fs-xattr): in the
 * entries, and a change of them alone is an attributes-only record (no data). Not kept: other xattr
 * namespaces and ACLs.
 */
export { createRsyncBackup, SIG_MIN, type RsyncBackupOptions, type RsyncBackup } from './backup.js';
export { extractRsync, type RsyncRestoreOptions, type RsyncRestoreResult } from './restore.js';
export { sqrtBlockSize, parseMeta, MAGIC, META_MAGIC, MIN_BLOCK, MAX_BLOCK } from './format.js';
