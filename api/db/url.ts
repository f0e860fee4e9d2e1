/**
 * Which database the API uses, from `--db`, then `DATABASE_URL`, then the default SQLite file in floe's
 * data directory (`$FLOE_HOME/floe.db`, else `~/.floe/floe.db`).
 *
 *   postgres://... | postgresql://...   PostgreSQL through `pg`
 *   file:PATH | PATH                     SQLite through better-sqlite3 (relative paths from the cwd)
 *
 * A PostgreSQL URL may hold a password: never log `url`, log `describeDb(target)`; and prefer
 * `DATABASE_URL` to `--db`, which other users can read in `ps`.
 */
import { homedir } from 'node:os';
import path from 'node:path';
import { UsageError } from '../../engine/errors.js';

export type DbTarget =
  | { kind: 'sqlite'; file: string; url: string }
  | { kind: 'postgres'; url: string };

/** dataDir is floe's data directory: $FLOE_HOME, else ~/.floe. */
export function dataDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.FLOE_HOME ? path.resolve(env.FLOE_HOME) : path.join(homedir(), '.floe');
}

/** resolveDb picks the database: the option, else DATABASE_URL, else `<dataDir>/floe.db`. */
export function resolveDb(option?: string, env: NodeJS.ProcessEnv = process.env): DbTarget {
  const raw = option || env.DATABASE_URL || path.join(dataDir(env), 'floe.db');
  if (/^postgres(ql)?:\/\//i.test(raw)) {
    try {
      new URL(raw);
    } catch {
      throw new UsageError('the PostgreSQL URL is not a valid URL (postgres://user:password@host:port/database)');
    }
    return { kind: 'postgres', url: raw };
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(raw)) {
    throw new UsageError(`unsupported database URL scheme '${raw.split(':')[0]}' (use postgres://... or a SQLite file path)`);
  }
  const file = path.resolve(raw.replace(/^file:/, ''));
  return { kind: 'sqlite', file, url: `file:${file}` };
}

/** describeDb names the database for logs and messages, without any password. */
export function describeDb(t: DbTarget): string {
  if (t.kind === 'sqlite') return `sqlite ${t.file}`;
  const u = new URL(t.url);
  return `postgres ${u.username ? `${decodeURIComponent(u.username)}@` : ''}${u.host}${u.pathname}`;
}
