#!/usr/bin/env node
// floe: the agent CLI. The TypeScript sources compile to dist/ during `npm install` (the prepare script).
import('../dist/engine/cli/main.js')
  .then((m) => m.main(process.argv.slice(2)))
  .then((code) => { process.exitCode = code; })
  .catch((err) => {
    process.stderr.write(`floe: ${err && err.message ? err.message : String(err)}\n`);
    process.exitCode = 1;
  });
