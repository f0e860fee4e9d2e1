/**
 * Offline migrations: Prisma's own schema engine, compiled to WebAssembly (npm package
 * @prisma/schema-engine-wasm), driven through the same driver adapters the API uses. No native
 * schema-engine binary and nothing downloaded (Prisma 7's `migrate` and `db` commands need the native
 * binary, which this project cannot fetch; see ../../../shared/reference/prisma-offline/README.md).
 *
 * The engine reads the committed `prisma/migrations*` folders and keeps Prisma's standard
 * `_prisma_migrations` table, so the normal Prisma CLI can take over on a machine that has the binary.
 * `migrate(url)` runs at every API start (deploy: apply what is pending, never create); the development
 * commands (status, create, check, drift) are in prisma/scripts/db.ts.
 *
 * Adapter bugs worked around here (adapter versions are pinned exactly in package.json):
 * - better-sqlite3's `executeRaw` runs one statement; the engine replays whole migration files with it.
 * - adapter-pg 7.10 cannot decode the catalog type "char" (OID 18) that the engine's introspection
 *   selects: it is relabelled as text (OID 25).
 * - adapter-pg 7.10's shadow database, built from a connection string, replays migrations into the real
 *   database and leaks shadow databases: an own shadow database is created and dropped instead.
 */
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  bindMigrationAwareSqlAdapterFactory,
  type SqlDriverAdapter,
  type SqlMigrationAwareDriverAdapterFactory,
} from '@prisma/driver-adapter-utils';
import type { MigrationList, SchemaEngine, SchemaFilter } from '@prisma/schema-engine-wasm';
import { DbTarget } from './url.js';

/** PACKAGE_ROOT is the folder holding package.json and prisma/ (this file runs from dist/api/db/). */
export const PACKAGE_ROOT = findRoot(path.dirname(fileURLToPath(import.meta.url)));

function findRoot(dir: string): string {
  for (let d = dir; ; d = path.dirname(d)) {
    if (existsSync(path.join(d, 'prisma', 'schema.prisma'))) return d;
    if (path.dirname(d) === d) return path.resolve(dir, '..', '..');
  }
}

export const FILTERS: SchemaFilter = { externalTables: [], externalEnums: [] };

/** Where one provider's schema and migrations live. */
export function prismaPaths(kind: DbTarget['kind']): { schema: string; migrations: string } {
  const p = path.join(PACKAGE_ROOT, 'prisma');
  return kind === 'postgres'
    ? { schema: path.join(p, 'schema.postgres.prisma'), migrations: path.join(p, 'migrations-postgres') }
    : { schema: path.join(p, 'schema.prisma'), migrations: path.join(p, 'migrations') };
}

/** An open schema engine and the adapters it opened (engine.free() does not close them). */
export interface EngineHandle {
  engine: SchemaEngine;
  schemaPath: string;
  schemaContent: string;
  migrationsDir: string;
  close(): Promise<void>;
}

/** openSchemaEngine instantiates the WebAssembly schema engine on the target database. */
export async function openSchemaEngine(target: DbTarget): Promise<EngineHandle> {
  const { schema: schemaPath, migrations: migrationsDir } = prismaPaths(target.kind);
  const schemaContent = await readFile(schemaPath, 'utf8');
  const opened: SqlDriverAdapter[] = [];
  const track = <T extends SqlDriverAdapter>(a: T): T => (opened.push(a), a);
  const factory = target.kind === 'postgres' ? await pgFactory(target.url, track) : await sqliteFactory(target.file, track);
  const bg = await loadWasm();
  const log = (line: string) => { if (process.env.DEBUG_SCHEMA_ENGINE) process.stderr.write(`${line}\n`); };
  const engine: SchemaEngine = await bg.SchemaEngine.new(
    { datamodels: [[schemaPath, schemaContent]] }, log, bindMigrationAwareSqlAdapterFactory(factory));
  return {
    engine, schemaPath, schemaContent, migrationsDir,
    async close() {
      engine.free();
      await Promise.allSettled(opened.map((a) => a.dispose()));
    },
  };
}

let wasm: Promise<Record<string, any>> | undefined;

/**
 * loadWasm instantiates the engine's WebAssembly module once per process: its generated glue keeps
 * module-level state (cached views of the instance's memory), so a second instance would corrupt it.
 * Engines (SchemaEngine.new) are made from the one instance, one per operation.
 */
function loadWasm(): Promise<Record<string, any>> {
  wasm ??= (async () => {
    const g = globalThis as { PRISMA_WASM_PANIC_REGISTRY?: unknown };
    g.PRISMA_WASM_PANIC_REGISTRY ??= { message: '', set_message(this: { message: string }, m: string) { this.message = m; } };
    // The package targets bundlers (`import * as wasm from "./x.wasm"`), which Node cannot import:
    // instantiate the module by hand and hand its exports to the generated glue.
    const bgUrl = import.meta.resolve('@prisma/schema-engine-wasm/schema_engine_bg');
    const bg = (await import(bgUrl)) as Record<string, any>;
    const bytes = await readFile(new URL('./schema_engine_bg.wasm', bgUrl));
    const instance = new WebAssembly.Instance(new WebAssembly.Module(bytes), { './schema_engine_bg.js': unrefTimers(bg) });
    bg.__wbg_set_wasm(instance.exports);
    (instance.exports as { __wbindgen_start(): void }).__wbindgen_start();
    return bg;
  })();
  return wasm;
}

/**
 * unrefTimers: the engine's timers (PostgreSQL's 10 s advisory-lock timeout, which outlives the
 * migration) must not keep a short command such as `floe api token create` alive for 10 s.
 */
function unrefTimers(bg: Record<string, any>): Record<string, any> {
  const imports: Record<string, any> = { ...bg };
  for (const name of Object.keys(bg).filter((k) => k.startsWith('__wbg_setTimeout_'))) {
    imports[name] = (...args: unknown[]) => {
      const t = bg[name](...args);
      (t as { unref?: () => void })?.unref?.();
      return t;
    };
  }
  return imports;
}

/** migrate applies every pending committed migration (like `prisma migrate deploy`); returns their names. */
export async function migrate(target: DbTarget): Promise<string[]> {
  const h = await openSchemaEngine(target);
  try {
    const r = await h.engine.applyMigrations({ migrationsList: await migrationsList(h.migrationsDir, target.kind), filters: FILTERS });
    return r.appliedMigrationNames;
  } finally {
    await h.close();
  }
}

export function lockfileText(kind: DbTarget['kind']): string {
  return '# Please do not edit this file manually\n# It should be added in your version-control system (e.g., Git)\n' +
    `provider = "${kind === 'postgres' ? 'postgresql' : 'sqlite'}"\n`;
}

/** migrationsList reads a migrations folder in the engine's input format. */
export async function migrationsList(dir: string, kind: DbTarget['kind']): Promise<MigrationList> {
  const lockPath = path.join(dir, 'migration_lock.toml');
  const names = existsSync(dir)
    ? (await readdir(dir, { withFileTypes: true })).filter((d) => d.isDirectory()).map((d) => d.name).sort()
    : [];
  return {
    baseDir: dir,
    lockfile: { path: 'migration_lock.toml', content: existsSync(lockPath) ? await readFile(lockPath, 'utf8') : lockfileText(kind) },
    shadowDbInitScript: '',
    migrationDirectories: await Promise.all(names.map(async (name) => ({
      path: name,
      migrationFile: {
        path: 'migration.sql',
        content: await readFile(path.join(dir, name, 'migration.sql'), 'utf8').then(
          (value) => ({ tag: 'ok' as const, value }),
          (e: Error) => ({ tag: 'error' as const, value: e.message }),
        ),
      },
    }))),
  };
}

type Track = <T extends SqlDriverAdapter>(a: T) => T;

async function sqliteFactory(file: string, track: Track): Promise<SqlMigrationAwareDriverAdapterFactory> {
  const { PrismaBetterSqlite3 } = await import('@prisma/adapter-better-sqlite3');
  const factory = new PrismaBetterSqlite3({ url: file, timeout: 10_000 });
  // Migration replay sends whole files through executeRaw(), which better-sqlite3 prepares as one
  // statement: send multi-statement scripts to executeScript() instead.
  const multiStatementSafe = <T extends SqlDriverAdapter>(a: T): T => {
    const executeRaw = a.executeRaw.bind(a);
    a.executeRaw = async (q) => {
      try {
        return await executeRaw(q);
      } catch (e) {
        if (q.args.length > 0 || !/more than one statement/.test((e as Error)?.message ?? '')) throw e;
        await a.executeScript(q.sql);
        return 0;
      }
    };
    return a;
  };
  const connect = factory.connect.bind(factory);
  const connectToShadowDb = factory.connectToShadowDb.bind(factory); // an in-memory database
  factory.connect = async () => track(multiStatementSafe(await connect()));
  factory.connectToShadowDb = async () => multiStatementSafe(await connectToShadowDb());
  return factory;
}

async function pgFactory(url: string, track: Track): Promise<SqlMigrationAwareDriverAdapterFactory> {
  const { PrismaPg } = await import('@prisma/adapter-pg');
  const { default: pg } = await import('pg');
  const { parse } = await import('pg-connection-string');
  // discrete fields, not a connectionString: see connectToShadowDb below
  const config = parse(url) as unknown as import('pg').PoolConfig;
  const factory = new PrismaPg(config);
  const connect = factory.connect.bind(factory);
  factory.connect = async () => track(charAsText(await connect()));
  factory.connectToShadowDb = async () => {
    const admin = new pg.Client(config);
    await admin.connect();
    const name = `prisma_shadow_${randomUUID().replace(/-/g, '')}`;
    await admin.query(`CREATE DATABASE "${name}"`);
    const shadow = charAsText(await new PrismaPg({ ...config, database: name }).connect());
    const dispose = shadow.dispose.bind(shadow);
    shadow.dispose = async () => {
      await dispose();
      await admin.query(`DROP DATABASE IF EXISTS "${name}"`);
      await admin.end();
    };
    return shadow;
  };
  return factory;
}

/** charAsText reports pg's one-byte catalog type "char" (OID 18) as text (OID 25), which adapter-pg decodes. */
function charAsText<T extends object>(q: T): T {
  const any = q as any;
  const performIO = any.performIO.bind(q);
  any.performIO = async (query: unknown) => {
    const r = await performIO(query);
    for (const f of r?.fields ?? []) if (f.dataTypeID === 18) f.dataTypeID = 25;
    return r;
  };
  const startTransaction = any.startTransaction?.bind(q);
  if (startTransaction) any.startTransaction = async (...a: unknown[]) => charAsText(await startTransaction(...a));
  return q;
}
