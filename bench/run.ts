/**
 * `npm run bench`: floe against the real peers, on the same deterministic dataset, in one session.
 *
 * Order (each case on the same tree, page cache warm, `sync` and an empty store before every run):
 * 1. full backups: every runner (bench/peers.ts), into its own store;
 * 2. restores of those level-0 backups (each into a fresh directory, then checked: same number of
 *    regular files and bytes as the dataset);
 * 3. the dataset's mutation (1% of the files of each size class), then level-1 backups of the runners
 *    that chain (floe gzip/zstd encrypted, freezer-agent, restic, borg) on top of their level 0;
 *    when a case may run more than once the store is copied before the first level 1 and put back
 *    before each other;
 * 4. the mutation is undone, the report is written, the work directory is removed.
 * Nothing is deleted between runs (Bench.#aside says why): replaced stores and restored trees go to a
 * trash directory in the work directory.
 * A case that fails is reported with its error and the run goes on; a runner whose tools are missing is
 * listed as skipped with the reason. Nothing runs in parallel: the machine's cores are the measurement.
 *
 * Usage: node dist/bench/run.js [--size 1G] [--seed 1] [--repeat N] [--only floe,tar] [--dir D]
 *        [--work D] [--timeout S] [--fraction 0.01] [--out DIR] [--no-write] [--keep]
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Dataset, MutationResult, ensureDataset, formatSize, mutate, parseSize, undoMutation } from './dataset.js';
import { GNU_TIME, Measurement, TreeStats, hasGnuTime, killRunning, measure, run, treeStats } from './measure.js';
import { BenchEnv, Runner, TOOLS, Tool, makeRunners } from './peers.js';
import {
  AUTO_REPEAT, CaseResult, Group, Repeat, Report, addRatios, evaluateTargets, medianOf, readReports, renderMarkdown, reportBaseName, runsOf,
  writeReport,
} from './report.js';

const DEFAULT_SIZE = 1 << 30;
const BENCH_ROOT = '/var/tmp/floe-bench';

interface Options {
  bytes: number;
  seed: number;
  dir: string;
  work: string;
  /** Runs per case (--repeat), or AUTO_REPEAT. */
  repeat: Repeat;
  only: Tool[] | null;
  timeoutS: number | null;
  fraction: number;
  out: string;
  write: boolean;
  keep: boolean;
}

const HELP = `Usage: npm run bench -- [options]     (or: node dist/bench/run.js [options])

  --size S       dataset size: 64M, 256M, 1G (default), 4G
  --seed N       dataset seed (default 1)
  --dir D        dataset directory (default ${BENCH_ROOT}/dataset; reused when its marker matches)
  --work D       where stores and restores go (default ${BENCH_ROOT}; a fresh run-* directory inside)
  --repeat N     runs per case; the median is reported (default: ${AUTO_REPEAT.shortRuns} for a case whose first
                 run took under ${AUTO_REPEAT.underS} s, 1 for the others)
  --only LIST    only these tools, comma-separated: ${TOOLS.join(', ')}
  --timeout S    seconds before a case is killed (default 60 + 1 s per 4 MB of dataset)
  --fraction F   share of files the level-1 mutation changes (default 0.01)
  --out DIR      where the report goes (default bench/results)
  --no-write     print the report, write no file
  --keep         keep the work directory (stores, logs)
`;

function repoRoot(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  return here.endsWith(join('dist', 'bench')) ? resolve(here, '..', '..') : resolve(here, '..');
}

function parseArgs(argv: string[]): Options {
  const o: Options = {
    bytes: DEFAULT_SIZE, seed: 1, dir: join(BENCH_ROOT, 'dataset'), work: BENCH_ROOT, repeat: AUTO_REPEAT, only: null,
    timeoutS: null, fraction: 0.01, out: join(repoRoot(), 'bench', 'results'), write: true, keep: false,
  };
  const value = (i: number) => {
    if (argv[i + 1] === undefined) throw new Error(`${argv[i]} needs a value`);
    return argv[i + 1]!;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    switch (a) {
      case '--size': o.bytes = parseSize(value(i++)); break;
      case '--seed': o.seed = Number(value(i++)); break;
      case '--dir': o.dir = resolve(value(i++)); break;
      case '--work': o.work = resolve(value(i++)); break;
      case '--repeat': o.repeat = Number(value(i++)); break;
      case '--timeout': o.timeoutS = Number(value(i++)); break;
      case '--fraction': o.fraction = Number(value(i++)); break;
      case '--out': o.out = resolve(value(i++)); break;
      case '--no-write': o.write = false; break;
      case '--keep': o.keep = true; break;
      case '--only': {
        const tools = value(i++).split(',').map((t) => t.trim()).filter(Boolean);
        const bad = tools.filter((t) => !TOOLS.includes(t as Tool));
        if (bad.length) throw new Error(`--only: unknown ${bad.join(', ')} (known: ${TOOLS.join(', ')})`);
        o.only = tools as Tool[];
        break;
      }
      case '--help': case '-h':
        process.stdout.write(HELP);
        process.exit(0);
      default: throw new Error(`unknown option ${a}\n${HELP}`);
    }
  }
  if (!Number.isInteger(o.seed) || o.seed < 0) throw new Error('--seed must be a non-negative integer');
  if (typeof o.repeat === 'number' && (!Number.isInteger(o.repeat) || o.repeat < 1)) throw new Error('--repeat must be a positive integer');
  if (o.timeoutS !== null && !(o.timeoutS > 0)) throw new Error('--timeout must be a positive number of seconds');
  if (!(o.fraction > 0 && o.fraction <= 1)) throw new Error('--fraction must be in (0, 1]');
  return o;
}

/** cleanup: removes this run's work directory; also called on SIGINT/SIGTERM. */
let cleanup: () => void = () => {};

const log = (line: string) => process.stderr.write(`${line}\n`);
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const MiB = 1 << 20;

/** warm reads every file of the tree once, so each case starts with the same warm page cache. */
async function warm(tree: string): Promise<void> {
  const buf = Buffer.allocUnsafe(MiB);
  const stack = [tree];
  while (stack.length) {
    const dir = stack.pop()!;
    for (const e of await fs.readdir(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) stack.push(p);
      else if (e.isFile()) {
        const fh = await fs.open(p, 'r');
        try {
          while ((await fh.read(buf, 0, buf.length, null)).bytesRead > 0);
        } finally {
          await fh.close();
        }
      }
    }
  }
}

/** settle: flush dirty pages (the previous case's output) so they are not written during the next one. */
function settle(): void {
  run(['sync']);
}

/**
 * dropCaches empties the kernel's clean page cache (root only: false otherwise). Why: by the restore
 * group the cache holds tens of GB of stores and restored trees, and every page a run wrote had to be
 * reclaimed first; kswapd then took a core and the multi-threaded cases lost most: floe's restores spent
 * 3.2-3.7 s of system time instead of 0.8-1.1 s (uncompressed: 3.9 s against 1.5 s in a quiet machine)
 * while tar -xf, one thread, ran normally. Each run now starts with only what it needs cached.
 */
function dropCaches(): boolean {
  try {
    writeFileSync('/proc/sys/vm/drop_caches', '1');
    return true;
  } catch {
    return false;
  }
}

/** errorText: the reason a run failed, short enough for a table footnote. */
function errorText(m: Measurement): string {
  const why = m.timedOut ? `timed out after ${m.wallS.toFixed(1)} s` : m.signal ? `killed by ${m.signal}` : `exit ${m.exitCode}`;
  const lines = `${m.stderrTail}\n${m.stdoutTail}`.split('\n').map((l) => l.trim()).filter(Boolean);
  const tail = lines.slice(-3).join(' / ');
  return `${why}${tail ? `: ${tail.slice(-400)}` : ''}`;
}

class Bench {
  readonly cases: CaseResult[] = [];
  readonly #trash: string;
  #trashed = 0;
  /** dropping: drop the page cache before each run (then re-read the dataset for a backup): see dropCaches. */
  constructor(readonly o: Options, readonly env: BenchEnv, readonly dataset: Dataset, readonly dropping: boolean) {
    this.#trash = join(env.work, 'trash');
  }

  /**
   * aside moves what a run leaves (a store, a repository's cache, a restored tree) into the work
   * directory's trash, which goes with the work directory at the end, instead of deleting it between
   * runs. Why: after GBs were deleted, this VM's ext4 (journal-less, mounted with discard) spent 2-4x
   * the system time creating files for minutes: tar -xf of the 1 GiB dataset took 3.1-4.1 s (system
   * 3.0-3.9 s) just after ~25 GB were deleted, 0.7-0.9 s otherwise; floe's restore 4.1-4.4 s against
   * 1.5-1.7 s. #makeRoom empties the trash when the disk runs short.
   */
  #aside(...paths: (string | undefined)[]): void {
    for (const p of paths) {
      if (!p || !existsSync(p)) continue;
      mkdirSync(this.#trash, { recursive: true });
      renameSync(p, join(this.#trash, String(this.#trashed++)));
    }
  }

  /** makeRoom deletes the trash when less than twice the dataset (plus 2 GiB) is free for the next run. */
  #makeRoom(): void {
    const free = statfsSync(this.env.work);
    if (free.bavail * free.bsize < 2 * this.dataset.bytes + 2 * 2 ** 30) rmSync(this.#trash, { recursive: true, force: true });
  }

  #start(r: Runner, group: Group, name = r.name, role = r.role): CaseResult {
    const c: CaseResult = { group, name, tool: r.tool, role, compression: r.compression, encrypted: r.encrypted, status: 'ok', warnings: [], runs: [] };
    this.cases.push(c);
    return c;
  }

  #fail(c: CaseResult, error: string): CaseResult {
    c.status = 'failed';
    c.error = error;
    log(`  [${c.group}] ${c.name}: FAILED: ${error}`);
    return c;
  }

  #finish(c: CaseResult, storedBytes: number | null): CaseResult {
    c.wallS = medianOf(c.runs, (m) => m.wallS)!;
    c.cpuS = medianOf(c.runs, (m) => m.cpuS);
    c.peakRssBytes = medianOf(c.runs, (m) => m.peakRssBytes);
    c.treeRssBytes = medianOf(c.runs, (m) => m.treeRssBytes);
    c.storedBytes = storedBytes;
    c.mbps = this.dataset.bytes / 1e6 / c.wallS;
    for (const m of c.runs) if (m.ok) m.stdoutTail = m.stderrTail = ''; // keep the JSON small
    const f = (v: number | null | undefined, d: number, unit: string) => (v === null || v === undefined ? '' : `, ${v.toFixed(d)}${unit}`);
    log(`  [${c.group}] ${c.name}: ${c.wallS.toFixed(2)} s, ${c.mbps.toFixed(0)} MB/s${f(c.cpuS, 1, ' s CPU')}${f(c.peakRssBytes && c.peakRssBytes / MiB, 0, ' MiB RSS')}${f(storedBytes === null ? null : storedBytes / MiB, 1, ' MiB stored')}${c.warnings.length ? ` (!) ${c.warnings.join('; ')}` : ''}`);
    return c;
  }

  /**
   * #runs measures `command` as many times as runsOf says (known once the first run is done), calling
   * `before(i)` untimed before each run.
   */
  async #runs(c: CaseResult, before: (i: number) => void | Promise<void>, command: () => Parameters<typeof measure>[0]): Promise<boolean> {
    let runs = 1;
    for (let i = 0; i < runs; i++) {
      try {
        this.#makeRoom();
        await before(i);
      } catch (e) {
        this.#fail(c, `set-up: ${(e as Error).message}`);
        return false;
      }
      settle();
      if (this.dropping) {
        dropCaches();
        if (c.group !== 'restore') await warm(this.dataset.tree); // backups read the tree from the cache
      }
      const m = await measure(command());
      c.runs.push(m);
      if (!m.ok) {
        this.#fail(c, errorText(m));
        return false;
      }
      if (i === 0) runs = runsOf(this.o.repeat, m.wallS);
    }
    return true;
  }

  async full(r: Runner): Promise<CaseResult> {
    const c = this.#start(r, 'full');
    const fresh = () => {
      this.#aside(r.store, ...r.stateDirs);
      return r.reset();
    };
    if (!(await this.#runs(c, fresh, () => r.backup()))) return c;
    return this.#finish(c, r.store ? (await treeStats(r.store)).bytes : null);
  }

  /**
   * restore: each run restores into a directory of its own, put aside (not deleted) after the run: on a
   * journal-less ext4 (this VM's root) a new inode skips those deleted in the last 60-360 s
   * (fs/ext4/ialloc.c recently_deleted), and creating 18k files just after deleting 18k others took 2-5x
   * longer.
   */
  async restore(r: Runner, base: TreeStats): Promise<CaseResult | undefined> {
    if (!r.restore) return undefined;
    const c = this.#start(r, 'restore', r.restore.name, r.restore.role);
    if (!this.#backupOk(r)) return this.#fail(c, 'no backup to restore (its full backup failed)');
    let target = '';
    const fresh = (i: number) => {
      if (target) this.#aside(target);
      target = join(this.env.work, `restore-${r.id}-${i}`);
      mkdirSync(target);
    };
    if (!(await this.#runs(c, fresh, () => r.restore!.command(target)))) return c;
    const got = await treeStats(target);
    if (got.files !== base.files || got.bytes !== base.bytes) {
      c.warnings.push(`restored ${got.files} files / ${got.bytes} bytes, the dataset has ${base.files} / ${base.bytes}`);
    }
    this.#aside(target);
    return this.#finish(c, null);
  }

  async level1(r: Runner): Promise<CaseResult> {
    const c = this.#start(r, 'level1');
    if (!this.#backupOk(r)) return this.#fail(c, 'no level 0 to build on (its full backup failed)');
    const store = r.store!;
    const before = (await treeStats(store)).bytes;
    const snap = join(this.env.work, `snapshot-${r.id}`);
    const parts = [store, ...r.stateDirs];
    const copy = (from: (p: string, i: number) => string, to: (p: string, i: number) => string) => {
      parts.forEach((p, i) => {
        this.#aside(to(p, i));
        const res = run(['cp', '-a', from(p, i), to(p, i)]);
        if (res.code !== 0) throw new Error(`cp -a: ${res.stderr.trim()}`);
      });
    };
    const inSnap = (_: string, i: number) => join(snap, String(i));
    const ok = await this.#runs(c, (i) => {
      if (this.o.repeat === 1) return;
      if (i === 0) {
        mkdirSync(snap, { recursive: true });
        copy((p) => p, inSnap);
      } else copy(inSnap, (p) => p);
    }, () => r.backup());
    this.#aside(snap);
    if (!ok) return c;
    const problem = r.checkLevel1?.();
    if (problem) c.warnings.push(problem);
    return this.#finish(c, (await treeStats(store)).bytes - before);
  }

  /** drop puts a runner's store aside once no later case needs it. */
  drop(r: Runner): void {
    this.#aside(r.store, ...r.stateDirs);
  }

  #backupOk(r: Runner): boolean {
    return this.cases.some((c) => c.group === 'full' && c.name === r.name && c.status === 'ok');
  }
}

function versions(root: string): Record<string, string> {
  const v: Record<string, string> = { node: process.version };
  const dpkg = run(['dpkg-query', '-W', '-f', '${Package} ${Version}\\n', 'python3-freezer', 'restic', 'borgbackup', 'tar', 'gzip', 'pigz', 'zstd', 'openssl', 'time']);
  for (const line of dpkg.stdout.split('\n')) {
    const [pkg, ver] = line.split(' ');
    if (pkg && ver) v[pkg] = ver;
  }
  try {
    v.floe = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    // no package.json: leave it out
  }
  return v;
}

function gitState(root: string): { commit: string; dirty: boolean } {
  const head = run(['git', 'rev-parse', '--short', 'HEAD'], { cwd: root });
  const status = run(['git', 'status', '--porcelain'], { cwd: root });
  return { commit: head.code === 0 ? head.stdout.trim() : 'unknown', dirty: status.code === 0 && status.stdout.trim() !== '' };
}

async function main(argv: string[]): Promise<number> {
  const o = parseArgs(argv);
  const started = performance.now();
  const date = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  const root = repoRoot();
  const dataset = await ensureDataset({ dir: o.dir, seed: o.seed, bytes: o.bytes, log });
  mkdirSync(o.work, { recursive: true });
  const work = mkdtempSync(join(o.work, 'run-'));
  const password = 'floe-bench-password';
  const passFile = join(work, 'password');
  writeFileSync(passFile, `${password}\n`, { mode: 0o600 });
  cleanup = () => {
    if (o.keep) log(`kept ${work}`);
    else rmSync(work, { recursive: true, force: true, maxRetries: 3 });
    cleanup = () => {};
  };
  const env: BenchEnv = {
    repoRoot: root, tree: dataset.tree, work, passFile, password,
    timeoutS: o.timeoutS ?? Math.round(60 + dataset.bytes / 4e6),
  };
  const all = makeRunners(env).filter((r) => !o.only || o.only.includes(r.tool));
  const skipped = all.flatMap((r) => {
    const reason = r.missing();
    return reason ? [{ name: r.name, reason }] : [];
  });
  if (!hasGnuTime()) skipped.push({ name: 'CPU and peak RSS columns', reason: `no GNU time at ${GNU_TIME} (apt-get install time)` });
  const runners = all.filter((r) => !r.missing());
  for (const s of skipped) log(`skipped: ${s.name}: ${s.reason}`);
  const each = typeof o.repeat === 'number' ? `${o.repeat} run(s) each` : `${o.repeat.shortRuns} runs of a case under ${o.repeat.underS} s, else 1`;
  log(`work directory ${work}; ${runners.length} runners, ${each}, timeout ${env.timeoutS} s per run`);

  const bench = new Bench(o, env, dataset, dropCaches());
  if (!bench.dropping) log('  cannot drop the page cache (not root): each run starts with what the runs before left cached');
  let mutation: MutationResult | null = null;
  try {
    const base = await treeStats(dataset.tree);
    log('full backups');
    await warm(dataset.tree);
    for (const r of runners) await bench.full(r);
    log('restores');
    await warm(dataset.tree);
    for (const r of runners) await bench.restore(r, base);
    for (const r of runners.filter((x) => !x.level1)) bench.drop(r); // the trash goes first when the disk runs short
    const chained = runners.filter((r) => r.level1);
    if (chained.length) {
      // Freezer names backups by whole seconds and GNU tar compares times: keep a second on each side.
      await sleep(1100);
      mutation = await mutate(dataset.dir, o.fraction, o.seed + 1);
      log(`level 1 backups after changing ${mutation.files} files`);
      await sleep(1100);
      await warm(dataset.tree);
      for (const r of chained) await bench.level1(r);
    }
  } finally {
    await undoMutation(dataset.dir);
    cleanup();
  }

  const report: Report = {
    format: 1,
    date,
    durationS: (performance.now() - started) / 1000,
    machine: {
      nproc: os.availableParallelism(), cpu: os.cpus()[0]?.model ?? 'unknown', memoryGiB: Math.round(os.totalmem() / 2 ** 30),
      node: process.version, os: `${os.type()} ${os.release()}`, loadavg: os.loadavg(),
    },
    floe: gitState(root),
    versions: versions(root),
    dataset: {
      dir: dataset.dir, seed: dataset.seed, bytes: dataset.bytes, files: dataset.files, incompressibleBytes: dataset.incompressibleBytes,
      classes: dataset.classes, generateS: dataset.generateS, reused: dataset.reused,
    },
    mutation: mutation && { fraction: o.fraction, seed: o.seed + 1, files: mutation.files, bytesWritten: mutation.bytesWritten },
    options: { repeat: o.repeat, only: o.only, timeoutS: env.timeoutS, dropCaches: bench.dropping },
    skipped,
    cases: bench.cases,
    bestPeer: {},
    targets: [],
  };
  report.bestPeer = addRatios(report.cases);
  report.targets = evaluateTargets(report, readReports(o.out));
  if (o.write) {
    const [md, json] = await writeReport(report, o.out, reportBaseName(report, DEFAULT_SIZE));
    log(`report: ${md} and ${json}`);
  }
  process.stdout.write(renderMarkdown(report));
  log(`done in ${Math.round(report.durationS)} s (dataset ${formatSize(dataset.bytes)})`);
  return bench.cases.some((c) => c.status === 'failed') ? 1 : 0;
}

for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    killRunning('SIGKILL');
    cleanup(); // a mutated dataset is put back by the next run (its marker records the mutation)
    process.exit(130);
  });
}

main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (err: Error) => {
    killRunning('SIGKILL');
    log(`bench: ${err.message}`);
    process.exitCode = 2;
  },
);
