/**
 * Prisma CLI configuration for the PostgreSQL client: `npx prisma generate --config prisma.postgres.config.ts`.
 *
 * Offline: Prisma 7's CLI downloads its native schema-engine binary before `generate`, `validate` and
 * `format`, although they never run it. Pointing the documented custom-engine variable at a stub skips the
 * download (`||=`: an empty value must be replaced too). Migrations never use the native engine: see
 * prisma/scripts/db.ts (`npm run db:*`) and api/db/migrate.ts (applied when the API starts).
 */
import path from 'node:path';
import { defineConfig } from 'prisma/config';

process.env.PRISMA_SCHEMA_ENGINE_BINARY ||= path.resolve(import.meta.dirname, 'prisma/no-schema-engine.cjs');

export default defineConfig({
  schema: 'prisma/schema.postgres.prisma',
  migrations: { path: 'prisma/migrations-postgres' },
});
