#!/usr/bin/env node
// Stand-in for Prisma's native schema-engine binary, which Prisma 7's CLI would download from a host this
// project cannot reach. `prisma generate|validate|format` never execute it (they only check that it
// exists); anything that does run it gets a clear error and the offline way instead.
if (process.argv.includes('--version')) { console.log('schema-engine-cli offline-stub'); process.exit(0); }
console.error('floe: the native Prisma schema engine is not installed (offline). Use `npm run db:deploy`, `db:status`, `db:new`, `db:check` (they run the WebAssembly schema engine).');
process.exit(1);
