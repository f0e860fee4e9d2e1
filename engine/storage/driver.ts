/**
 * StorageDriver: the contract every storage medium implements (local now; ssh, s3, swift later).
 *
 * Drivers know objects and '/'-separated keys relative to the container, never formats. The contract:
 * - `put` MUST write the whole object or fail; a failed put MAY leave a partial object behind, so callers
 *   make a backup visible only by writing its metadata object last (see layout.ts).
 * - `putSmall` MUST be atomic: readers see the old object, nothing, or the whole new one (write + rename).
 * - `get` MUST yield the object's bytes in order, in chunks of at most `chunkSize`, and MUST fail (not end
 *   early) on a read error.
 * - `list` returns the names of the direct children of a key prefix (like listdir), sorted; an absent
 *   prefix lists as empty.
 * - `remove` deletes a key and everything under it; removing an absent key is not an error.
 * Errors are StorageError (or NotFoundError for a missing object on get).
 */

/**
 * ObjectSource: where another thread can read an object by itself (readObjectSource, registry.ts): a
 * restore's verifying thread reads a local file that way, off the main thread's event loop.
 */
export interface ObjectSource {
  kind: 'local';
  container: string;
  key: string;
  /** LocalStorageOptions.direct of the driver that made it. */
  direct: boolean;
}

export interface StorageDriver {
  /** The medium, as given to --storage ("local"). */
  readonly kind: string;
  /** The container (for local: an absolute directory). */
  readonly container: string;
  /** Check the container can be written (creating it if needed). Fails with StorageError otherwise. */
  ensureWritable(): Promise<void>;
  put(key: string, source: AsyncIterable<Buffer>, options?: { signal?: AbortSignal }): Promise<{ size: number }>;
  putSmall(key: string, data: Buffer): Promise<void>;
  get(key: string, options?: { chunkSize?: number; signal?: AbortSignal }): AsyncIterable<Buffer>;
  /**
   * source describes `key` for another thread to read with readObjectSource, or is absent (or resolves
   * to null) where only this driver can read it. The object must exist (NotFoundError otherwise).
   */
  source?(key: string): Promise<ObjectSource | null>;
  /** Whole small object into memory (metadata, engine_metadata). */
  getSmall(key: string): Promise<Buffer>;
  exists(key: string): Promise<boolean>;
  /** Size in bytes of an object. */
  size(key: string): Promise<number>;
  list(prefix: string): Promise<string[]>;
  remove(key: string): Promise<void>;
}
