#!/usr/bin/env -S FLOE_TUNED=1 MALLOC_MMAP_THRESHOLD_=3145728 MALLOC_TRIM_THRESHOLD_=16777216 node --max-semi-space-size=4
// How floe starts (a V8 flag, glibc settings): engine/node-flags.ts says why. All are read at start; the
// commands floe runs must not inherit the glibc ones.
if (process.env.FLOE_TUNED) {
  delete process.env.FLOE_TUNED;
  delete process.env.MALLOC_MMAP_THRESHOLD_;
  delete process.env.MALLOC_TRIM_THRESHOLD_;
}
// floe: the agent CLI. The TypeScript sources compile to dist/ during `npm install` (the prepare script).
/** settled: main() has returned its exit code (or failed). */
let settled = false;
// A reader that closes our stdout early (`floe restore --dry-run | head`, a --json consumer that died): while
// the command runs, engine/cli/main.ts stops it as interrupted (exit 130) through its own cleanup; once it
// has finished, what is left of its output is dropped and its exit code stands. Never a silent exit 0 for
// work cut short. A closed stderr loses only diagnostics: the command goes on.
const readerGone = (err) => err && (err.code === 'EPIPE' || err.code === 'ERR_STREAM_DESTROYED');
process.stdout.on('error', (err) => {
  if (!readerGone(err)) throw err;
  if (settled) process.exit(process.exitCode ?? 0);
});
process.stderr.on('error', (err) => {
  if (!readerGone(err)) throw err;
});
import('../dist/engine/cli/main.js')
  .then((m) => m.main(process.argv.slice(2)))
  .then((code) => { settled = true; process.exitCode = code; })
  .catch((err) => {
    settled = true;
    process.stderr.write(`floe: ${err && err.message ? err.message : String(err)}\n`);
    process.exitCode = 1;
  });
// Node ends a process whose event loop has nothing left to wait for, with exit code 0, even while a promise
// it awaits is pending: a command waiting on something that can no longer happen (a thread that vanished
// unnoticed) would stop there and look successful. That is a bug of floe's; it must not read as success.
process.on('beforeExit', () => {
  if (settled) return;
  settled = true;
  process.stderr.write('floe: internal error: the command stopped before it finished (nothing left to wait for); what it was writing is incomplete\n');
  process.exitCode = 1;
});
