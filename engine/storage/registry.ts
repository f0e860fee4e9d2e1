/**
 * Storage registry: the one place a `--storage` name becomes a driver. Drivers register by kind; options
 * are the storage's own keys (from the CLI or an INI `[storage:NAME]` section), each driver validating its
 * own. Only `local` exists so far; ssh, s3, swift, ftp register here when they arrive.
 */
import { UsageError } from '../errors.js';
import type { ObjectSource, StorageDriver } from './driver.js';
import { LocalStorage } from './local/index.js';

type Factory = (container: string, options: Record<string, unknown>) => StorageDriver;

const drivers = new Map<string, Factory>([
  ['local', (container) => new LocalStorage(container)],
]);

/** supportedStorages lists the kinds createStorage accepts, sorted. */
export function supportedStorages(): string[] {
  return [...drivers.keys()].sort();
}

/** createStorage returns the driver for `kind` at `container`; an unknown kind is a UsageError. */
export function createStorage(kind: string, container: string, options: Record<string, unknown> = {}): StorageDriver {
  const make = drivers.get(kind);
  if (!make) {
    throw new UsageError(`storage '${kind}' is not supported yet (supported: ${supportedStorages().join(', ')})`);
  }
  return make(container, options);
}

/** readObjectSource reads the object `src` names (StorageDriver.source), as its driver's get() would. */
export function readObjectSource(src: ObjectSource, options: { chunkSize: number; signal?: AbortSignal }): AsyncIterable<Buffer> {
  return new LocalStorage(src.container, { direct: src.direct }).get(src.key, options);
}
