#!/usr/bin/env -S node --max-semi-space-size=4
// (V8 flags: engine/node-flags.ts says why; processes floe spawns get the same.)
// floe: the agent CLI. The TypeScript sources compile to dist/ during `npm install` (the prepare script).
// A reader that closes our stdout early (`floe restore --dry-run | head`) is not an error: stop quietly.
for (const s of [process.stdout, process.stderr]) {
  s.on('error', (err) => {
    if (err && err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw err;
  });
}
import('../dist/engine/cli/main.js')
  .then((m) => m.main(process.argv.slice(2)))
  .then((code) => { process.exitCode = code; })
  .catch((err) => {
    process.stderr.write(`floe: ${err && err.message ? err.message : String(err)}\n`);
    process.exitCode = 1;
  });
