/**
 * LocalStorage: a container that is a directory (Freezer's `--storage local`), keys are relative paths.
 *
 * Model: one file per object, written in place as it streams (Freezer appends each segment to `data`),
 * fsynced before put() returns so a metadata file written afterwards never points at data still in the
 * page cache. put() writes and get() reads with O_DIRECT where the file system allows it (direct.ts says
 * why and how; FLOE_DIRECT_IO=0 in the environment turns it off). Small objects (metadata,
 * engine_metadata) are written atomically: temp file, fsync, rename, fsync of the directory. Reads come
 * in `chunkSize` pieces (Freezer reads back in max_segment_size).
 * Keys never leave the container: absolute keys, '..', '.', empty components and NUL are rejected.
 * System errors become StorageError with a short reason ("no space left on device").
 */
import { randomBytes } from 'node:crypto';
import { constants, promises as fsp } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { NotFoundError, StorageError, UsageError, errnoMessage } from '../../errors.js';
import { giveBack } from '../../pipeline/slots.js';
import type { ObjectSource, StorageDriver } from '../driver.js';
import { DirectWriter, openDirect, openDirectRead, readDirect } from './direct.js';

/** DEFAULT_CHUNK: 32 MiB, Freezer's default max_segment_size, used when get() is given no chunkSize. */
const DEFAULT_CHUNK = 32 * 1024 * 1024;
/** EOF_PROBE: read size used past the size seen at open, to find the end without a chunk-sized buffer. */
const EOF_PROBE = 64 * 1024;

/**
 * FLUSH_EVERY: bytes written between two background fdatasync calls (buffered writes only). Writing
 * 256 MiB then one fsync stalled a backup ~0.6 s on this machine's disk; flushing in 64 MiB steps
 * overlaps that with the work.
 */
const FLUSH_EVERY = 64 * 1024 * 1024;

export interface LocalStorageOptions {
  /**
   * direct: write put() objects and read get() objects with O_DIRECT where the file system allows it
   * (default true; see direct.ts). False goes through the page cache.
   */
  direct?: boolean;
}

export class LocalStorage implements StorageDriver {
  readonly kind = 'local';
  readonly container: string;
  readonly #direct: boolean;

  /** `container` must be an absolute directory path (it is created by ensureWritable). */
  constructor(container: string, options: LocalStorageOptions = {}) {
    this.#direct = options.direct ?? process.env.FLOE_DIRECT_IO !== '0';
    if (typeof container !== 'string' || container.length === 0 || !isAbsolute(container)) {
      throw new UsageError(`local storage needs an absolute container directory, not '${String(container)}'`);
    }
    this.container = resolve(container);
  }

  /** path maps a key to its file, refusing anything that could leave the container. */
  #path(key: string, allowRoot = false): string {
    if (typeof key !== 'string' || key.includes('\0') || key.startsWith('/')) throw badKey(key);
    if (key === '' || key === '/') {
      if (allowRoot) return this.container;
      throw badKey(key);
    }
    const parts = key.replace(/\/+$/, '').split('/');
    if (parts.some((p) => p === '' || p === '.' || p === '..')) throw badKey(key);
    return join(this.container, ...parts);
  }

  async ensureWritable(): Promise<void> {
    try {
      await fsp.mkdir(this.container, { recursive: true });
      await fsp.access(this.container, constants.W_OK | constants.X_OK);
    } catch (err) {
      throw new StorageError(`container ${this.container} is not writable: ${errnoMessage(err)}`, { cause: err });
    }
  }

  async put(key: string, source: AsyncIterable<Buffer>, options: { signal?: AbortSignal } = {}): Promise<{ size: number }> {
    const file = this.#path(key);
    const signal = options.signal;
    const what = `cannot write ${key}`;
    await io(what, fsp.mkdir(dirname(file), { recursive: true }));
    const direct = this.#direct ? await io(what, openDirect(file)) : null;
    let fh: fsp.FileHandle | undefined = direct ? undefined : await io(what, fsp.open(file, 'w'));
    try {
      // Errors of `source` (upstream stages, abort) pass through as they are; only file I/O is wrapped.
      const size = direct ? await putDirect(direct, source, what, signal) : await putBuffered(fh!, source, what, signal);
      await io(what, direct ? direct.close() : fh!.close());
      fh = undefined;
      await io(what, syncDir(dirname(file)));
      return { size };
    } catch (err) {
      await (direct ? direct.close() : fh?.close())?.catch(() => undefined);
      // A failed put leaves no partial object behind (it would only waste space: nothing refers to it).
      await fsp.rm(file, { force: true }).catch(() => undefined);
      throw err;
    }
  }

  async putSmall(key: string, data: Buffer): Promise<void> {
    const file = this.#path(key);
    const dir = dirname(file);
    const tmp = join(dir, `.${file.slice(dir.length + 1)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
    try {
      await fsp.mkdir(dir, { recursive: true });
      const fh = await fsp.open(tmp, 'w');
      try {
        await writeAll(fh, data);
        await fh.sync();
      } finally {
        await fh.close();
      }
      await fsp.rename(tmp, file);
      await syncDir(dir);
    } catch (err) {
      await fsp.rm(tmp, { force: true }).catch(() => undefined);
      throw storageError(`cannot write ${key}`, err);
    }
  }

  get(key: string, options: { chunkSize?: number; signal?: AbortSignal } = {}): AsyncIterable<Buffer> {
    const file = this.#path(key);
    const chunk = options.chunkSize ?? DEFAULT_CHUNK;
    if (!Number.isSafeInteger(chunk) || chunk < 1) throw new RangeError('chunkSize must be a positive integer');
    const signal = options.signal;
    const direct = this.#direct;
    return {
      async *[Symbol.asyncIterator]() {
        if (direct && (yield* getDirect(file, key, chunk, signal))) return;
        let fh: fsp.FileHandle;
        let left: number;
        try {
          fh = await fsp.open(file, 'r');
          left = (await fh.stat()).size;
        } catch (err) {
          throw missingOr(key, err);
        }
        try {
          for (;;) {
            if (signal?.aborted) throw signal.reason;
            // A fresh buffer per chunk (the consumer keeps it), sized to what is left so a small object
            // does not cost a whole chunk; past the size seen at open, small probes find EOF (or growth).
            const buf = Buffer.allocUnsafe(left > 0 ? Math.min(chunk, left) : Math.min(chunk, EOF_PROBE));
            let n = 0;
            while (n < buf.length) {
              const { bytesRead } = await readOrFail(fh, buf, n, key);
              if (bytesRead === 0) break;
              n += bytesRead;
            }
            left -= n;
            if (n > 0) yield n === buf.length ? buf : Buffer.from(buf.subarray(0, n));
            if (n < buf.length) return;
          }
        } finally {
          await fh.close().catch(() => undefined);
        }
      },
    };
  }

  async source(key: string): Promise<ObjectSource> {
    await this.size(key); // NotFoundError now, not in the thread that reads it
    return { kind: 'local', container: this.container, key, direct: this.#direct };
  }

  async getSmall(key: string): Promise<Buffer> {
    const file = this.#path(key);
    try {
      return await fsp.readFile(file);
    } catch (err) {
      throw missingOr(key, err);
    }
  }

  async exists(key: string): Promise<boolean> {
    try {
      await fsp.lstat(this.#path(key));
      return true;
    } catch (err) {
      if (isMissing(err)) return false;
      throw storageError(`cannot read ${key}`, err);
    }
  }

  async size(key: string): Promise<number> {
    try {
      return (await fsp.stat(this.#path(key))).size;
    } catch (err) {
      throw missingOr(key, err);
    }
  }

  async list(prefix: string): Promise<string[]> {
    try {
      // Dot names are floe's temp files (putSmall); Freezer's layout has none.
      const names = await fsp.readdir(this.#path(prefix, true));
      return names.filter((n) => !n.startsWith('.')).sort();
    } catch (err) {
      if (isMissing(err)) return [];
      throw storageError(`cannot list ${prefix || '/'}`, err);
    }
  }

  async remove(key: string): Promise<void> {
    try {
      await fsp.rm(this.#path(key), { recursive: true, force: true });
    } catch (err) {
      throw storageError(`cannot remove ${key}`, err);
    }
  }
}

/**
 * getDirect yields the object read with O_DIRECT (see readDirect) and returns true, or returns false,
 * having yielded nothing, where O_DIRECT is refused: the caller then reads through the page cache.
 */
async function* getDirect(file: string, key: string, chunk: number, signal?: AbortSignal): AsyncGenerator<Buffer, boolean> {
  let fh: fsp.FileHandle | null;
  try {
    fh = await openDirectRead(file);
  } catch (err) {
    throw missingOr(key, err);
  }
  if (!fh) return false;
  const it = readDirect(fh, chunk, signal);
  try {
    for (;;) {
      let r: IteratorResult<Buffer, boolean>;
      try {
        r = await it.next();
      } catch (err) {
        throw storageError(`cannot read ${key}`, err);
      }
      if (r.done) return r.value;
      yield r.value;
    }
  } finally {
    await it.return(false).catch(() => undefined); // a consumer that stops early: reads in flight end first
    await fh.close().catch(() => undefined);
  }
}

/** putDirect streams `source` through an O_DIRECT writer (see direct.ts) and makes it durable. */
async function putDirect(w: DirectWriter, source: AsyncIterable<Buffer>, what: string, signal?: AbortSignal): Promise<number> {
  for await (const buf of source) {
    if (signal?.aborted) throw signal.reason;
    await io(what, w.write(buf));
  }
  await io(what, w.finish());
  return w.size;
}

/**
 * putBuffered streams `source` through the page cache. Durability is flushed as it goes (FLUSH_EVERY):
 * one fdatasync runs in the background while writing continues, so the final fsync only has the last
 * stretch left to wait for.
 */
async function putBuffered(fh: fsp.FileHandle, source: AsyncIterable<Buffer>, what: string, signal?: AbortSignal): Promise<number> {
  let flushing: Promise<void> | undefined;
  let unflushed = 0;
  let size = 0;
  try {
    for await (const buf of source) {
      if (signal?.aborted) throw signal.reason;
      await io(what, writeAll(fh, buf));
      giveBack(buf);
      size += buf.length;
      unflushed += buf.length;
      if (unflushed >= FLUSH_EVERY) {
        await flushing;
        flushing = io(what, fh.datasync());
        flushing.catch(() => undefined); // awaited before the next flush or at the end
        unflushed = 0;
      }
    }
    await flushing;
  } finally {
    await flushing?.catch(() => undefined);
  }
  await io(what, fh.sync());
  return size;
}

/** io awaits a file operation and turns its system error into a StorageError ("cannot write X: ..."). */
async function io<T>(what: string, op: Promise<T>): Promise<T> {
  try {
    return await op;
  } catch (err) {
    throw storageError(what, err);
  }
}

async function writeAll(fh: fsp.FileHandle, buf: Buffer): Promise<void> {
  let off = 0;
  while (off < buf.length) {
    const { bytesWritten } = await fh.write(buf, off, buf.length - off);
    off += bytesWritten;
  }
}

async function readOrFail(fh: fsp.FileHandle, buf: Buffer, at: number, key: string): Promise<{ bytesRead: number }> {
  try {
    return await fh.read(buf, at, buf.length - at);
  } catch (err) {
    throw storageError(`cannot read ${key}`, err);
  }
}

/** syncDir makes a new or renamed directory entry durable. Filesystems that cannot fsync a directory are skipped. */
async function syncDir(dir: string): Promise<void> {
  let fh: fsp.FileHandle | undefined;
  try {
    fh = await fsp.open(dir, 'r');
    await fh.sync();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EINVAL' && code !== 'ENOTSUP' && code !== 'EISDIR' && code !== 'EBADF') throw err;
  } finally {
    await fh?.close().catch(() => undefined);
  }
}

function badKey(key: string): UsageError {
  return new UsageError(`invalid storage key '${key}': keys are relative paths inside the container`);
}

function isMissing(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

function missingOr(key: string, err: unknown): Error {
  if (isMissing(err)) return new NotFoundError(`object ${key} not found in storage`, { cause: err });
  return storageError(`cannot read ${key}`, err);
}

/** storageError wraps a system error; FloeErrors and aborts (from the source stream) pass through unchanged. */
function storageError(what: string, err: unknown): Error {
  const e = err as NodeJS.ErrnoException;
  if (typeof e?.code === 'string' && typeof e.syscall === 'string') {
    return new StorageError(`${what}: ${errnoMessage(err)}`, { cause: err });
  }
  return err as Error;
}
