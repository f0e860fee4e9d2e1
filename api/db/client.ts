/**
 * Database factory: one Prisma client for either provider, migrated before use.
 *
 * A generated Prisma client is tied to one provider, so there are two (api/db/generated/sqlite and
 * api/db/generated/postgres, from prisma/schema.prisma and prisma/schema.postgres.prisma). Their models
 * are identical field for field (a test compares the two schema files), so the rest of the API types
 * the client as the SQLite one (`Db`) and runs one code path on both.
 *
 * SQLite runs in WAL mode (readers do not block the writer, and `floe api token create` can write while
 * the server runs) with a 10 s busy timeout. PostgreSQL uses a pool of `poolSize` connections.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { PrismaClient as SqliteClient } from './generated/sqlite/client.js';
import { migrate } from './migrate.js';
import { DbTarget } from './url.js';

export type Db = SqliteClient;

export interface Database {
  prisma: Db;
  target: DbTarget;
  /** Migrations this open applied (empty when the schema was current). */
  applied: string[];
  close(): Promise<void>;
}

export interface OpenOptions {
  /** Apply pending migrations first (default true). */
  migrate?: boolean;
  /** PostgreSQL pool size (default 10). */
  poolSize?: number;
}

/** BUSY_TIMEOUT_MS: how long SQLite waits for another writer (another floe process) before failing. */
const BUSY_TIMEOUT_MS = 10_000;

/** openDatabase creates (SQLite), migrates and opens the database. */
export async function openDatabase(target: DbTarget, o: OpenOptions = {}): Promise<Database> {
  if (target.kind === 'sqlite') await mkdir(path.dirname(target.file), { recursive: true, mode: 0o700 });
  const applied = o.migrate === false ? [] : await migrate(target);
  let prisma: Db;
  if (target.kind === 'postgres') {
    const [{ PrismaClient: PgClient }, { PrismaPg }] = await Promise.all([
      import('./generated/postgres/client.js'),
      import('@prisma/adapter-pg'),
    ]);
    const pg = new PgClient({ adapter: new PrismaPg({ connectionString: target.url, max: o.poolSize ?? 10 }) });
    prisma = pg as unknown as Db;
  } else {
    const { PrismaBetterSqlite3 } = await import('@prisma/adapter-better-sqlite3');
    prisma = new SqliteClient({ adapter: new PrismaBetterSqlite3({ url: target.file, timeout: BUSY_TIMEOUT_MS }) });
    await prisma.$queryRawUnsafe('PRAGMA journal_mode = WAL');
    await prisma.$executeRawUnsafe('PRAGMA synchronous = NORMAL');
    await prisma.$executeRawUnsafe('PRAGMA foreign_keys = ON');
  }
  return { prisma, target, applied, close: () => prisma.$disconnect() };
}
