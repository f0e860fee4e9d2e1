/**
 * Offline Prisma Migrate for floe's two providers (Prisma 7's `migrate` commands need a native binary
 * that cannot be downloaded here; this runs the WebAssembly schema engine, see api/db/migrate.ts).
 *
 *   npm run db:deploy              apply pending migrations          (~ prisma migrate deploy)
 *   npm run db:status              history vs database, exit 1 if behind (~ prisma migrate status)
 *   npm run db:new -- <name>       new migration from schema changes  (~ prisma migrate dev --create-only)
 *   npm run db:check               exit 1 unless migrations == schema (~ migrate diff --exit-code)
 *   npm run db:drift               exit 1 unless the live DB == schema
 *   node dist/prisma/scripts/db.js diff-empty | reset
 *
 * The database: `--db URL`, else DATABASE_URL, else floe's default SQLite file (api/db/url.ts).
 * For PostgreSQL, `create` and `check` need the CREATEDB right (they build a shadow database).
 * Run `npm run build` first: this file runs from dist/.
 */
import { existsSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { FILTERS, PACKAGE_ROOT, lockfileText, migrationsList, openSchemaEngine } from '../../api/db/migrate.js';
import { describeDb, resolveDb } from '../../api/db/url.js';

async function main(argv: string[]): Promise<number> {
  let dbOption: string | undefined;
  const args: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--db') dbOption = argv[++i];
    else if (argv[i].startsWith('--db=')) dbOption = argv[i].slice(5);
    else args.push(argv[i]);
  }
  const [cmd, ...rest] = args;
  const target = resolveDb(dbOption);
  if (target.kind === 'sqlite') await mkdir(path.dirname(target.file), { recursive: true });
  if (cmd === 'reset' && target.kind === 'sqlite') {
    // the wasm engine's reset only deletes rows on SQLite: remove the file instead
    for (const f of ['', '-wal', '-shm', '-journal']) await rm(target.file + f, { force: true });
    console.log(`Database reset (${describeDb(target)}).`);
    return 0;
  }
  const h = await openSchemaEngine(target);
  const schema = { files: [{ path: h.schemaPath, content: h.schemaContent }] };
  const rel = (p: string) => path.relative(PACKAGE_ROOT, p);
  try {
    const list = await migrationsList(h.migrationsDir, target.kind);
    switch (cmd) {
      case 'deploy': {
        const { appliedMigrationNames: a } = await h.engine.applyMigrations({ migrationsList: list, filters: FILTERS });
        console.log(a.length ? `Applied: ${a.join(', ')}` : 'No pending migrations.');
        return 0;
      }
      case 'status':
        return status(h.engine, list);
      case 'create': {
        // createMigration() needs a primed shadow-DB cache: compute diff(migrations -> schema) instead
        const name = (rest[0] ?? 'migration').replace(/[^A-Za-z0-9_]/g, '_');
        const r = await h.engine.diff({ from: { tag: 'migrations', ...list }, to: { tag: 'schemaDatamodel', ...schema }, script: true, exitCode: true, filters: FILTERS });
        if (r.exitCode !== 2) { console.log('No schema changes.'); return 0; }
        const dir = path.join(h.migrationsDir, `${new Date().toISOString().replace(/\D/g, '').slice(0, 14)}_${name}`);
        await mkdir(dir, { recursive: true });
        await writeFile(path.join(dir, 'migration.sql'), r.stdout ?? '');
        const lockPath = path.join(h.migrationsDir, 'migration_lock.toml');
        if (!existsSync(lockPath)) await writeFile(lockPath, lockfileText(target.kind));
        console.log(`Created ${rel(dir)}/migration.sql`);
        return 0;
      }
      case 'check': {
        const r = await h.engine.diff({ from: { tag: 'migrations', ...list }, to: { tag: 'schemaDatamodel', ...schema }, script: true, exitCode: true, filters: FILTERS });
        if (r.exitCode === 2) { console.error(`Migrations do not match ${rel(h.schemaPath)}. Missing:\n${r.stdout ?? ''}`); return 1; }
        console.log('Migrations match schema.');
        return 0;
      }
      case 'drift': {
        const r = await h.engine.diff({ from: { tag: 'schemaDatasource', ...schema, configDir: PACKAGE_ROOT }, to: { tag: 'schemaDatamodel', ...schema }, script: true, exitCode: true, filters: FILTERS });
        if (r.exitCode === 2) { console.error(`Database differs from ${rel(h.schemaPath)}. SQL to fix:\n${r.stdout ?? ''}`); return 1; }
        console.log('Database matches schema.');
        return 0;
      }
      case 'diff-empty': {
        const r = await h.engine.diff({ from: { tag: 'empty' }, to: { tag: 'schemaDatamodel', ...schema }, script: true, exitCode: null, filters: FILTERS });
        process.stdout.write(r.stdout ?? '');
        return 0;
      }
      case 'reset':
        await h.engine.reset({ filter: FILTERS });
        console.log(`Database reset (${describeDb(target)}).`);
        return 0;
      default:
        console.error('usage: node dist/prisma/scripts/db.js [--db URL] deploy|status|create <name>|check|drift|diff-empty|reset');
        return 2;
    }
  } finally {
    await h.close();
  }
}

async function status(engine: Awaited<ReturnType<typeof openSchemaEngine>>['engine'], list: Awaited<ReturnType<typeof migrationsList>>): Promise<number> {
  const r = await engine.diagnoseMigrationHistory({ migrationsList: list, optInToShadowDatabase: false, filters: FILTERS })
    .catch((e: Error) => {
      // SQLite: a missing _prisma_migrations table surfaces as an error, not as "not initialized"
      if (!/_prisma_migrations` does not exist/.test(e.message)) throw e;
      const unappliedMigrationNames = list.migrationDirectories.map((d) => d.path);
      return {
        editedMigrationNames: [], failedMigrationNames: [], hasMigrationsTable: false,
        history: unappliedMigrationNames.length ? { diagnostic: 'databaseIsBehind' as const, unappliedMigrationNames } : null,
      };
    });
  console.log(JSON.stringify(r, null, 2));
  return r.history || r.failedMigrationNames.length || r.editedMigrationNames.length ? 1 : 0;
}

// Exit explicitly: the wasm engine leaves a 10 s timer behind (the advisory-lock timeout of pg deploy).
main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e) => {
    console.error(`db: ${(e as Error)?.message ?? e}`);
    process.exit(1);
  },
);
