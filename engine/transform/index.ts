/**
 * Transforms: the byte-to-byte stages between the archiver and storage.
 *
 * Backup:  archive -> compress -> encrypt -> rechunk(segment) -> seal -> storage
 * Restore: storage -> verify -> decrypt -> decompress -> unarchive
 *
 * - compress.ts: gzip / bzip2 / xz / zstd / none, as one stream each (what `tar -z|-j|-J` and `zstd` write).
 * - encrypt.ts: OpenSSL `enc -aes-256-cfb` (Freezer's format), one continuous CFB stream after "Salted__".
 * - integrity.ts: per-segment tags recorded in the metadata file, checked before any byte is used.
 * Every transform is a Stage (pipeline/stages.ts): a function from an async stream of Buffers to another,
 * honouring an AbortSignal, with bounded memory. How a stage runs (inline, child process, worker pool) is
 * its own business.
 */
export * from './compress.js';
export * from './encrypt.js';
export * from './integrity.js';
