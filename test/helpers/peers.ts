/**
 * Peers and processes for the integration and interop suites: which external tools exist, how a test
 * that needs a missing one skips (or, under CI, fails), and how to run floe and freezer-agent as child
 * processes with a timeout, collecting {code, stdout, stderr}.
 *
 * Model: a peer is a name (`tar`, `openssl`, `freezer-agent`, `python-freezer`, `root`, or any command).
 * Locally a missing peer skips the tests that need it, with the reason printed; with CI=true it fails
 * them, because CI installs every peer (.ci/run) and a silent skip would hide a broken set-up.
 * Also here: temp dirs, and reading the Freezer storage layout that both floe and freezer-agent write.
 */
import { execFileSync, spawn } from 'node:child_process';
import { accessSync, constants, existsSync, readdirSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Callback, Test } from 'uvu';
import { isRoot } from './tree.js';

/** REPO_ROOT: this file runs as dist/test/helpers/peers.js. */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
export const FLOE_BIN = join(REPO_ROOT, 'bin', 'floe.js');
export const inCI = process.env.CI === 'true';
/** PYTHON: Debian's interpreter, the one python3-freezer is installed for (a pyenv python3 may shadow it). */
export const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
/** FREEZER_ENV: freezer-agent refuses to run without OS_AUTH_URL, even for local storage; nothing connects. */
export const FREEZER_ENV = { OS_AUTH_URL: 'http://127.0.0.1:1/v3' };

/** hasCommand: `cmd` is an executable file on PATH (or an executable path). */
export function hasCommand(cmd: string): boolean {
  const candidates = cmd.includes('/') ? [cmd] : (process.env.PATH ?? '').split(delimiter).filter(Boolean).map((d) => join(d, cmd));
  return candidates.some((p) => {
    try {
      accessSync(p, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

const probes: Record<string, () => string | undefined> = {
  tar: () => {
    if (!hasCommand('tar')) return 'no tar on PATH';
    const version = quiet('tar', ['--version']);
    return version.includes('GNU tar') ? undefined : 'tar is not GNU tar';
  },
  'freezer-agent': () => (hasCommand('freezer-agent') ? (hasCommand('timeout') ? undefined : 'no timeout command') : 'no freezer-agent on PATH (apt-get install python3-freezer)'),
  'python-freezer': () => (quiet(PYTHON, ['-c', 'import freezer.utils.checksum; print("ok")']).includes('ok') ? undefined : `${PYTHON} cannot import freezer`),
  root: () => (isRoot ? undefined : 'needs root'),
};

const cache = new Map<string, string | undefined>();

/** missingReason: undefined when the peer is there, else why not. */
export function missingReason(name: string): string | undefined {
  if (!cache.has(name)) cache.set(name, (probes[name] ?? (() => (hasCommand(name) ? undefined : `no ${name} on PATH`)))());
  return cache.get(name);
}

function quiet(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 30_000 });
  } catch {
    return '';
  }
}

/**
 * requirePeer, called inside a test: true when `name` is there. When it is missing: under CI=true it
 * throws (the test fails with the reason); otherwise it prints why and returns false, and the test should
 * return early. Prefer {@link peerTest}, which registers the test as skipped so uvu counts it.
 */
export function requirePeer(name: string): boolean {
  const reason = missingReason(name);
  if (reason === undefined) return true;
  if (inCI) throw new Error(`required peer "${name}" is missing: ${reason} (CI=true: every peer must be installed, see .ci/run)`);
  console.log(`\n  skip: peer "${name}" is missing: ${reason}`);
  return false;
}

/**
 * peerTest returns a test registrar for `suite` that needs every peer in `peers`: the suite itself when
 * they all exist; when one is missing, `suite.skip` (counted as skipped by uvu, reason printed once), or
 * under CI=true a test that fails with the reason.
 */
export function peerTest<T>(suite: Test<T>, ...peers: string[]): (name: string, fn: Callback<T>) => void {
  const missing = peers.map((p) => [p, missingReason(p)] as const).filter(([, r]) => r !== undefined);
  if (missing.length === 0) return (name, fn) => suite(name, fn);
  const why = missing.map(([p, r]) => `"${p}" (${r})`).join(', ');
  if (inCI) {
    return (name) => suite(name, () => {
      throw new Error(`required peer ${why} missing (CI=true: every peer must be installed, see .ci/run)`);
    });
  }
  console.log(`  skip: peer ${why} missing: tests that need it are skipped`);
  return (name, fn) => suite.skip(name, fn);
}

export interface RunResult {
  /** Exit code; 124 when killed for the timeout, 128+n for a signal. */
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  /** Working directory; default the OS temp dir (never the repo: stray files must not land in it). */
  cwd?: string;
  /** Added to (and overriding) the inherited environment. */
  env?: Record<string, string | undefined>;
  /** Written to stdin, which is then closed (stdin is empty otherwise). */
  input?: string | Buffer;
  /** Killed (SIGKILL) after this many ms. Default 120 s: nothing in these suites is that slow. */
  timeoutMs?: number;
  uid?: number;
  gid?: number;
  /**
   * Run without the privilege to bypass file permissions: as root, under `setpriv` with CAP_DAC_OVERRIDE,
   * CAP_DAC_READ_SEARCH and CAP_FOWNER dropped, so a mode 000 directory is unreadable and a mode 555 one
   * is not writable, as for any user (peer "setpriv"). Not root: nothing to drop.
   */
  unprivileged?: boolean;
}

const DROPPED_CAPS = '-dac_override,-dac_read_search,-fowner';

/** run executes a command without a shell and collects its output. Never rejects for a non-zero exit. */
export function run(cmd: string, args: string[], options: RunOptions = {}): Promise<RunResult> {
  if (options.unprivileged && isRoot) {
    [cmd, args] = ['setpriv', [`--bounding-set=${DROPPED_CAPS}`, `--inh-caps=${DROPPED_CAPS}`, '--', cmd, ...args]];
  }
  return new Promise((resolvePromise, reject) => {
    const child = spawn(cmd, args, {
      cwd: options.cwd ?? tmpdir(),
      env: { ...process.env, ...options.env },
      stdio: ['pipe', 'pipe', 'pipe'],
      uid: options.uid,
      gid: options.gid,
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, options.timeoutMs ?? 120_000);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      let stderr = Buffer.concat(err).toString('utf8');
      if (timedOut) stderr += `\n[test harness: ${cmd} killed after ${options.timeoutMs ?? 120_000} ms]`;
      const status = timedOut ? 124 : code ?? 128 + (signal ? osSignalNumber(signal) : 0);
      resolvePromise({ code: status, stdout: Buffer.concat(out).toString('utf8'), stderr });
    });
    child.stdin.on('error', () => {}); // the child may exit before reading its input
    child.stdin.end(options.input ?? '');
  });
}

function osSignalNumber(signal: NodeJS.Signals): number {
  const n = (
    { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGABRT: 6, SIGKILL: 9, SIGSEGV: 11, SIGPIPE: 13, SIGTERM: 15 } as Record<string, number>
  )[signal];
  return n ?? 0;
}

/** runFloe runs `node bin/floe.js ARGS` from the repo root. */
export function runFloe(args: string[], options: RunOptions = {}): Promise<RunResult> {
  return run(process.execPath, [FLOE_BIN, ...args], options);
}

/** runFreezer runs `timeout freezer-agent ARGS` with OS_AUTH_URL set (timeout: 120 s by default). */
export function runFreezer(args: string[], options: RunOptions = {}): Promise<RunResult> {
  const seconds = Math.ceil((options.timeoutMs ?? 120_000) / 1000);
  return run('timeout', ['-k', '5', String(seconds), 'freezer-agent', ...args], {
    ...options,
    env: { ...FREEZER_ENV, ...options.env },
    timeoutMs: (seconds + 10) * 1000,
  });
}

/** shell runs a bash script with `set -o pipefail` (for peer pipelines: openssl | gzip | tar). */
export function shell(script: string, options: RunOptions = {}): Promise<RunResult> {
  return run('bash', ['-c', `set -euo pipefail\n${script}`], options);
}

/** describe formats a result for assertion messages. */
export function describe(r: RunResult): string {
  return `exit ${r.code}\n--- stdout\n${r.stdout.slice(-3000)}\n--- stderr\n${r.stderr.slice(-3000)}`;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** tempDir makes a fresh directory under the OS temp dir. */
export function tempDir(prefix: string): Promise<string> {
  return fs.mkdtemp(join(tmpdir(), `floe-${prefix}-`));
}

/** removeDir deletes a tree, restoring permissions first (tests make unreadable dirs). */
export async function removeDir(dir: string): Promise<void> {
  await run('chmod', ['-R', 'u+rwx', dir]).catch(() => undefined);
  await fs.rm(dir, { recursive: true, force: true });
}

/** One backup found in a Freezer storage layout. */
export interface StoredBackup {
  t0: number;
  level: number;
  t: number;
  /** STORE/data/tar/H_NAME/T0/L_T */
  dataDir: string;
  /** STORE/metadata/tar/H_NAME/T0/L_T/metadata */
  metadataFile: string;
}

/** listStored reads STORE/metadata/tar/HOST_NAME/T0/L_T (visible backups), sorted by time then level. */
export function listStored(store: string, hostname: string, name: string, engine = 'tar'): StoredBackup[] {
  const hbn = `${hostname}_${name}`;
  const metaRoot = join(store, 'metadata', engine, hbn);
  if (!existsSync(metaRoot)) return [];
  const out: StoredBackup[] = [];
  for (const t0 of readdirSync(metaRoot)) {
    for (const lt of readdirSync(join(metaRoot, t0))) {
      const m = /^(\d+)_(\d+)$/.exec(lt);
      if (!m) continue;
      out.push({
        t0: Number(t0),
        level: Number(m[1]),
        t: Number(m[2]),
        dataDir: join(store, 'data', engine, hbn, t0, lt),
        metadataFile: join(metaRoot, t0, lt, 'metadata'),
      });
    }
  }
  return out.sort((a, b) => a.t - b.t || a.level - b.level);
}

/** localDate formats epoch seconds as Freezer's YYYY-MM-DDThh:mm:ss in local time. */
export function localDate(t: number): string {
  const d = new Date(t * 1000);
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

/**
 * GapKeeper: Freezer timestamps are whole seconds and name directories, so two backups of one name must
 * be more than a second apart. `wait(name)` sleeps only as long as needed since that name's last backup.
 */
export class GapKeeper {
  readonly #last = new Map<string, number>();
  constructor(readonly gapMs = 1100) {}
  async wait(name: string): Promise<void> {
    const last = this.#last.get(name);
    if (last !== undefined) {
      const left = last + this.gapMs - Date.now();
      if (left > 0) await sleep(left);
    }
  }
  done(name: string): void {
    this.#last.set(name, Date.now());
  }
}

/** mapLimit runs `fn` over `items` with at most `limit` at a time (the machine has 2 cores), in order. */
export async function mapLimit<I, O>(items: I[], limit: number, fn: (item: I, index: number) => Promise<O>): Promise<O[]> {
  const results: O[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
