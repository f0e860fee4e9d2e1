/**
 * Errors of the WASM kernels, and the plain-object form every error takes to cross a worker boundary.
 *
 * An Error subclass posted from a worker (postMessage / structuredClone, which Piscina uses) arrives as
 * a plain Error and loses `code` (checked on Node 20). A worker therefore catches, sends
 * `toTransferable(err)`, and the main thread rebuilds the typed error with `fromTransferable(obj)`.
 */
import {
  BadPasswordError, ChecksumMismatchError, ExecFailedError, ExitCode, FloeError, IntegrityError,
  InterruptedError, NotFoundError, SourceError, StorageError, TargetNotEmptyError, UsageError,
  type ExitCodeValue,
} from '../engine/errors.js';

/** KernelErrorCode lists the codes of KernelError; like every FLOE_ERR_* code, never reused. */
export const KernelErrorCode = {
  /** The .wasm file is missing, unreadable, invalid or of another ABI version (rebuild: npm run build:wasm). */
  LOAD: 'FLOE_ERR_KERNEL_LOAD',
  /** A kernel was called with an invalid argument (block size, key length, sizes...). */
  INPUT: 'FLOE_ERR_KERNEL_INPUT',
  /** The instance could not grow its memory to the size a call needs. */
  MEMORY: 'FLOE_ERR_KERNEL_MEMORY',
  /** The module trapped; the instance is unusable afterwards. */
  TRAP: 'FLOE_ERR_KERNEL_TRAP',
  /** The object (kernel, table, segmenter, cipher) was used after dispose(). */
  DISPOSED: 'FLOE_ERR_KERNEL_DISPOSED',
} as const;
export type KernelErrorCodeValue = (typeof KernelErrorCode)[keyof typeof KernelErrorCode];

/** KernelError is the one error class the kernel facade throws. It exits with ExitCode.FAILURE. */
export class KernelError extends FloeError {
  declare readonly code: KernelErrorCodeValue;
  constructor(code: KernelErrorCodeValue, message: string, options?: { cause?: unknown }) {
    super(code, message, ExitCode.FAILURE, options);
  }
}

/** TransferableError is what a worker sends instead of an Error: structured-clone safe, no prototype. */
export interface TransferableError {
  code: string;
  message: string;
  /** The class name on the sending side (informational). */
  name?: string;
  /** Present for FloeErrors: the exit code the CLI returns. */
  exitCode?: number;
}

/** INTERNAL_CODE marks an error that carried no code (a bug, or an error floe could not classify). */
export const INTERNAL_CODE = 'FLOE_ERR_INTERNAL';

/**
 * toTransferable turns anything thrown into a TransferableError. FloeErrors keep code and exit code,
 * Node system errors keep their errno code (ENOSPC...), anything else gets FLOE_ERR_INTERNAL.
 */
export function toTransferable(err: unknown): TransferableError {
  if (err instanceof FloeError) {
    return { code: err.code, message: err.message, name: err.name, exitCode: err.exitCode };
  }
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    return { code: typeof code === 'string' ? code : INTERNAL_CODE, message: err.message, name: err.name };
  }
  return { code: INTERNAL_CODE, message: String(err), name: 'Error' };
}

type FloeErrorClass = new (message: string) => FloeError;

/** KNOWN maps the codes of engine/errors.ts to their classes, so `instanceof` works after a transfer. */
const KNOWN: Record<string, FloeErrorClass> = {
  FLOE_ERR_USAGE: UsageError,
  FLOE_ERR_NOT_FOUND: NotFoundError,
  FLOE_ERR_BAD_PASSWORD: BadPasswordError,
  FLOE_ERR_INTEGRITY: IntegrityError,
  FLOE_ERR_STORAGE: StorageError,
  FLOE_ERR_TARGET_NOT_EMPTY: TargetNotEmptyError,
  FLOE_ERR_SOURCE: SourceError,
  FLOE_ERR_CHECKSUM: ChecksumMismatchError,
  FLOE_ERR_EXEC: ExecFailedError,
  FLOE_ERR_INTERRUPTED: InterruptedError,
};

const KERNEL_CODES = new Set<string>(Object.values(KernelErrorCode));

/**
 * fromTransferable rebuilds the error a worker sent: KernelError or the matching engine/errors.ts class
 * for their codes, a FloeError with the same code and exit code for other FLOE_ERR_* codes, and a plain
 * Error carrying `code` (as Node's system errors do) for anything else.
 */
export function fromTransferable(obj: TransferableError): Error {
  const code = String(obj?.code ?? INTERNAL_CODE);
  const message = String(obj?.message ?? '');
  if (KERNEL_CODES.has(code)) return new KernelError(code as KernelErrorCodeValue, message);
  const known = KNOWN[code];
  if (known) return new known(message);
  if (code.startsWith('FLOE_ERR_')) {
    const exit = (Object.values(ExitCode) as number[]).includes(obj.exitCode ?? -1)
      ? (obj.exitCode as ExitCodeValue)
      : ExitCode.FAILURE;
    return new FloeError(code, message, exit);
  }
  const err = new Error(message) as NodeJS.ErrnoException;
  err.code = code;
  if (obj?.name) err.name = obj.name;
  return err;
}
