/**
 * Progress: how the engine reports what it is doing. The engine never prints; the CLI (and later the
 * scheduler and API) render these events. Every method is optional and MUST be cheap: it is called on the
 * data path.
 */
export interface Progress {
  /** A file (or other member) is about to be archived or extracted. `size` is its data size in bytes. */
  onFile?(path: string, size: number): void;
  /** `n` more source bytes were read (backup) or written (restore). */
  onBytes?(n: number): void;
  /** Bytes written to (backup) or read from (restore) storage. */
  onStored?(n: number): void;
  /** A non-fatal problem (a file vanished, changed while read, could not set owner...). */
  onWarning?(message: string): void;
  /** The total size to process, when known (for the ETA). */
  onTotal?(bytes: number, files: number): void;
}

/** noProgress is the Progress that ignores everything. */
export const noProgress: Progress = {};
