/**
 * Engine errors and exit codes.
 *
 * Every error that reaches the user is a FloeError: it carries a stable `code` (FLOE_ERR_*), a one-line
 * message, and the process exit code the CLI returns for it. Codes and exit codes are part of the public
 * contract (docs/exit-codes.md) and are never reused for another meaning.
 */

/** ExitCode lists every exit code the `floe` command can return. Documented in docs/exit-codes.md. */
export const ExitCode = {
  OK: 0,
  /** Unexpected failure (a bug, or an error floe could not classify). */
  FAILURE: 1,
  /** Bad command line, bad option value, bad INI file, unparsable date. */
  USAGE: 2,
  /** The backup (name, host, date) or the chain asked for does not exist. */
  NOT_FOUND: 3,
  /** Wrong or missing password, or a pass file that cannot be read. */
  BAD_PASSWORD: 4,
  /** Stored data is truncated, corrupted or tampered with. */
  INTEGRITY: 5,
  /** The storage cannot be read or written (not writable, disk full, I/O error). */
  STORAGE: 6,
  /** The restore directory is not empty and --overwrite was not given. */
  TARGET_NOT_EMPTY: 7,
  /** The path to back up is missing or unreadable. */
  SOURCE: 8,
  /** A consistency checksum did not match after a restore. */
  CHECKSUM_MISMATCH: 9,
  /** An exec command failed. */
  EXEC_FAILED: 10,
  /** Interrupted by a signal (SIGINT/SIGTERM). */
  INTERRUPTED: 130,
} as const;
export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

/** FloeError is the base of every error floe reports to a user. */
export class FloeError extends Error {
  readonly code: string;
  readonly exitCode: ExitCodeValue;
  constructor(code: string, message: string, exitCode: ExitCodeValue, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
    this.exitCode = exitCode;
  }
}

export class UsageError extends FloeError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('FLOE_ERR_USAGE', message, ExitCode.USAGE, options);
  }
}
export class NotFoundError extends FloeError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('FLOE_ERR_NOT_FOUND', message, ExitCode.NOT_FOUND, options);
  }
}
export class BadPasswordError extends FloeError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('FLOE_ERR_BAD_PASSWORD', message, ExitCode.BAD_PASSWORD, options);
  }
}
/** IntegrityError: stored bytes are not what was written (truncation, corruption, tampering). */
export class IntegrityError extends FloeError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('FLOE_ERR_INTEGRITY', message, ExitCode.INTEGRITY, options);
  }
}
export class StorageError extends FloeError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('FLOE_ERR_STORAGE', message, ExitCode.STORAGE, options);
  }
}
export class TargetNotEmptyError extends FloeError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('FLOE_ERR_TARGET_NOT_EMPTY', message, ExitCode.TARGET_NOT_EMPTY, options);
  }
}
export class SourceError extends FloeError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('FLOE_ERR_SOURCE', message, ExitCode.SOURCE, options);
  }
}
export class ChecksumMismatchError extends FloeError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('FLOE_ERR_CHECKSUM', message, ExitCode.CHECKSUM_MISMATCH, options);
  }
}
export class ExecFailedError extends FloeError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('FLOE_ERR_EXEC', message, ExitCode.EXEC_FAILED, options);
  }
}
export class InterruptedError extends FloeError {
  constructor(message = 'interrupted', options?: { cause?: unknown }) {
    super('FLOE_ERR_INTERRUPTED', message, ExitCode.INTERRUPTED, options);
  }
}

/** errnoMessage turns a Node system error into a short human phrase ("no space left on device"). */
export function errnoMessage(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  switch (e?.code) {
    case 'ENOSPC': return 'no space left on device';
    case 'EDQUOT': return 'disk quota exceeded';
    case 'EACCES': case 'EPERM': return 'permission denied';
    case 'ENOENT': return 'no such file or directory';
    case 'EROFS': return 'read-only file system';
    case 'ENOTDIR': return 'not a directory';
    case 'EISDIR': return 'is a directory';
    case 'EIO': return 'input/output error';
    default: return e?.message ?? String(err);
  }
}
