/**
 * The agent's options: one table, read by the parser, the INI reader, the help printer and the actions.
 *
 * Names are freezer-agent's (reference/freezer.md §1.1), so a Freezer command line or INI file works as it
 * is. Every option is a command-line flag `--name` and an INI key (`name` or `name_with_underscores`).
 * The `dest` of an option is its name with dashes turned into underscores, as oslo.config does.
 */

export type OptionType = 'string' | 'bool' | 'int' | 'float' | 'size' | 'list';
export type ActionName = 'backup' | 'restore' | 'info' | 'admin' | 'exec';

export interface OptionSpec {
  name: string;
  short?: string;
  type: OptionType;
  metavar?: string;
  default?: unknown;
  choices?: readonly string[];
  help: string;
  /** Actions whose help lists the option; absent = all. */
  actions?: readonly ActionName[];
  /** Accepted for Freezer compatibility, but with no effect in floe (said so in the help). */
  ignored?: boolean;
  /** Group title in the help. */
  group: string;
}

export const ACTIONS: readonly ActionName[] = ['backup', 'restore', 'info', 'admin', 'exec'];
export const COMPRESSIONS = ['gzip', 'bzip2', 'xz', 'zstd', 'none'] as const;
export const DEFAULT_SEGMENT_SIZE = 32 * 1024 * 1024;

const B: readonly ActionName[] = ['backup'];
const R: readonly ActionName[] = ['restore'];
const BR: readonly ActionName[] = ['backup', 'restore'];
const BRA: readonly ActionName[] = ['backup', 'restore', 'admin', 'info'];

export const OPTIONS: readonly OptionSpec[] = [
  // general
  { name: 'action', type: 'string', choices: ACTIONS, default: 'backup', group: 'General', help: 'What to do (the subcommand sets it).' },
  { name: 'mode', short: 'm', type: 'string', default: 'fs', choices: ['fs'], group: 'General', help: 'What to back up: fs (files). Database and cloud modes are not in floe yet.' },
  { name: 'engine', short: 'e', type: 'string', default: 'tar', choices: ['tar', 'rsync'], group: 'General', help: 'Backup engine: tar (GNU tar incremental, Freezer compatible) or rsync (floe\'s block deltas: a changed file stores only its changed blocks; docs/rsync-format.md).' },
  { name: 'path-to-backup', short: 'F', type: 'string', metavar: 'PATH', group: 'General', actions: B, help: 'File or directory to back up.' },
  { name: 'backup-name', short: 'N', type: 'string', metavar: 'NAME', group: 'General', actions: BRA, help: 'Name of the backup; storage paths use <hostname>_<backup-name>.' },
  { name: 'container', short: 'C', type: 'string', metavar: 'DIR', default: 'freezer_backups', group: 'General', actions: BRA, help: 'Where backups are stored: for local storage a directory (relative paths are taken from the current directory).' },
  { name: 'storage', type: 'string', default: 'local', group: 'General', actions: BRA, help: 'Storage medium: local. (Freezer defaults to swift; floe supports local storage for now.)' },
  { name: 'hostname', type: 'string', metavar: 'HOST', group: 'General', actions: BRA, help: 'Host name used in the storage path (default: this host). Lets one host restore or manage another host\'s backups.' },
  { name: 'config', type: 'string', metavar: 'FILE.ini', group: 'General', help: 'Read options from an INI file: [default] or [action] sections, plus one [storage:NAME] section per storage (several = write to all).' },
  { name: 'dry-run', type: 'bool', default: false, group: 'General', help: 'Backup: read and process everything, store nothing. Restore: list the members, write nothing. Admin: say what would be removed.' },
  { name: 'metadata-out', type: 'string', metavar: 'FILE|-', group: 'General', actions: B, help: 'Write Freezer\'s agent result document (JSON) to FILE, or to stdout with -.' },
  { name: 'quiet', short: 'q', type: 'bool', default: false, group: 'General', help: 'No progress and no error messages (the exit code still tells).' },
  { name: 'json', type: 'bool', default: false, group: 'General', help: 'Machine-readable output: one JSON object per line (progress, warnings, result, error) on stdout.' },
  { name: 'log-file', type: 'string', metavar: 'FILE', group: 'General', help: 'Also append warnings and errors to FILE.' },
  { name: 'debug', type: 'bool', default: false, group: 'General', help: 'Print the full error (with its causes) on failure.' },
  // levels
  { name: 'no-incremental', type: 'bool', default: false, group: 'Incremental levels', actions: B, help: 'Make every backup a level 0 (full) backup.' },
  { name: 'incremental', type: 'bool', default: true, group: 'Incremental levels', actions: B, help: 'Chain incremental levels (the default, as freezer-agent 13).' },
  { name: 'max-level', type: 'int', metavar: 'N', group: 'Incremental levels', actions: B, help: 'Levels go 0..N, then a new level 0 starts.' },
  { name: 'always-level', type: 'int', metavar: 'N', group: 'Incremental levels', actions: B, help: 'Levels go 0..N, then stay at N (each a diff against level N-1).' },
  { name: 'restart-always-level', type: 'float', metavar: 'DAYS', group: 'Incremental levels', actions: B, help: 'Start a new level 0 when the newest backup of the chain is older than DAYS.' },
  // data shaping
  { name: 'compression', type: 'string', default: 'gzip', choices: COMPRESSIONS, group: 'Data', actions: B, help: 'gzip (default, as Freezer), bzip2, xz, zstd or none. Restore reads it from the backup.' },
  { name: 'compression-level', type: 'int', metavar: 'N', group: 'Data', actions: B, help: 'Compression level, on the algorithm\'s own scale: gzip 1-9 (default 6, as Freezer), zstd 1-19 (default 1: the fast end; 3 stores ~6% less and takes ~1.5x the time), bzip2 1-9 (9), xz 0-9 (6).' },
  { name: 'encrypt-pass-file', type: 'string', metavar: 'FILE', group: 'Data', actions: BR, help: 'Encrypt with AES-256-CFB (OpenSSL enc compatible); the password is the first line of FILE.' },
  { name: 'crypto-backend', type: 'string', choices: ['native', 'wasm'], default: 'native', group: 'Data', actions: BR, help: 'AES implementation: native (OpenSSL, the fastest here) or wasm (the portable WebAssembly kernel). Both write and read the same bytes.' },
  { name: 'rsync-block-size', type: 'int', metavar: 'BYTES', group: 'Data', actions: B, help: 'rsync engine: block size of the deltas (default: per file, the square root of its size, 700 B to 128 KiB, as rsync).' },
  { name: 'exclude', type: 'list', metavar: 'PATTERN', group: 'Data', actions: B, help: 'Leave out paths matching PATTERN (GNU tar --exclude syntax). Repeatable.' },
  { name: 'dereference-symlink', type: 'string', choices: ['none', 'soft', 'hard', 'all'], default: 'none', group: 'Data', actions: B, help: 'soft: follow symlinks; hard: store hard links as full copies; all: both.' },
  { name: 'max-segment-size', short: 'M', type: 'size', metavar: 'BYTES', default: DEFAULT_SEGMENT_SIZE, group: 'Data', actions: BR, help: 'Segment size for storage writes and reads (default 32 MiB; suffixes K, M, G accepted). Memory use is a small multiple of it.' },
  { name: 'consistency-check', type: 'bool', default: false, group: 'Data', actions: B, help: 'Compute Freezer\'s SHA-256 tree checksum before the backup and store it in the result document.' },
  { name: 'consistency-checksum', type: 'string', metavar: 'SUM', group: 'Data', actions: R, help: 'After restore, check the restored tree against SUM (from a backup made with --consistency-check).' },
  // restore
  { name: 'restore-abs-path', type: 'string', metavar: 'DIR', group: 'Restore', actions: R, help: 'Directory to restore into (created if missing).' },
  { name: 'restore-from-date', type: 'string', metavar: 'DATE', group: 'Restore', actions: R, help: 'Restore the newest backup made at or before DATE (YYYY-MM-DDThh:mm:ss, local time; an ISO date with Z or an offset also works).' },
  { name: 'overwrite', type: 'bool', default: false, group: 'Restore', actions: R, help: 'Restore into a directory that is not empty, replacing what is there.' },
  // admin
  { name: 'remove-older-than', short: 'R', type: 'float', metavar: 'DAYS', group: 'Retention', actions: ['admin'], help: 'Remove chains whose newest backup is older than DAYS. The newest chain is always kept.' },
  { name: 'remove-from-date', type: 'string', metavar: 'DATE', group: 'Retention', actions: ['admin'], help: 'Remove chains whose newest backup is at or before DATE (YYYY-MM-DDThh:mm:ss, local time).' },
  // exec
  { name: 'command', type: 'string', metavar: 'CMD', group: 'Exec', actions: ['exec'], help: 'Command to run: stages split on "|", arguments on spaces, no shell (as freezer-agent).' },
  // API (engine/actions/report.ts)
  { name: 'api', type: 'string', metavar: 'URL', group: 'API', actions: B, help: 'After the backup, post its result document to the floe API at URL (http://host:9090, or http://host:9090/v2/PROJECT). Not on --dry-run.' },
  { name: 'token-file', type: 'string', metavar: 'FILE', group: 'API', actions: B, help: 'The API token: the first line of FILE (else the FLOE_TOKEN environment variable).' },
  { name: 'token', type: 'string', metavar: 'TOKEN', group: 'API', actions: B, help: 'The API token itself. Other users can read it in ps: prefer --token-file or FLOE_TOKEN.' },
  { name: 'api-required', type: 'bool', default: false, group: 'API', actions: B, help: 'Fail (exit 1) when the backup cannot be reported; by default that is a warning (the backup itself is stored).' },
  // accepted for Freezer compatibility
  { name: 'sync', type: 'bool', default: true, group: 'Compatibility', actions: B, help: 'Flush file system buffers (sync) before a backup.' },
  { name: 'timeout', type: 'int', default: 120, group: 'Compatibility', ignored: true, help: 'Seconds to wait on OpenStack operations.' },
  { name: 'os-identity-api-version', type: 'string', group: 'Compatibility', ignored: true, help: 'Keystone API version.' },
  { name: 'insecure', type: 'bool', default: false, group: 'Compatibility', ignored: true, help: 'Skip TLS checks.' },
  { name: 'proxy', type: 'string', group: 'Compatibility', ignored: true, help: 'HTTP(S) proxy.' },
];

const byName = new Map<string, OptionSpec>();
const byShort = new Map<string, OptionSpec>();
for (const o of OPTIONS) {
  byName.set(o.name, o);
  if (o.short) byShort.set(o.short, o);
}

/** findOption looks an option up by its long name, dashes or underscores. */
export function findOption(name: string): OptionSpec | undefined {
  return byName.get(name.replace(/_/g, '-'));
}

export function findShort(letter: string): OptionSpec | undefined {
  return byShort.get(letter);
}

/** dest is the key an option's value is stored under: the name with underscores. */
export function dest(name: string): string {
  return name.replace(/-/g, '_');
}
