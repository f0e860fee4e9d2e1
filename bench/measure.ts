/**
 * Measuring one command: wall time, CPU (user + sys) and peak memory of its whole process tree, with a
 * timeout that kills the tree; plus the sizes the report needs (bytes stored, a restored tree).
 *
 * Model: the command runs under GNU time (`/usr/bin/time -f '%e %U %S %M'`) in a new process group;
 * its tree is the processes below it by parent links (a group would miss `timeout`'s own group).
 * - Wall: process.hrtime around spawn → exit (sub-millisecond; GNU time's %e has 10 ms steps).
 * - CPU: %U + %S, from wait4()'s rusage, which adds up the command and every descendant it waited for
 *   (both sides of a `bash -c 'tar | gzip'` pipeline, freezer-agent's tar and openssl children). Threads
 *   (node's workers, pigz, zstd -T) count in their process.
 * - Peak RSS (`peakRssBytes`): %M, wait4()'s ru_maxrss, which is the largest resident set of any ONE
 *   process of the tree, exact. It is the number the report shows: floe is one process (workers are
 *   threads), so for floe it is the whole footprint.
 * - Tree RSS (`treeRssBytes`): the peak of the SUM of resident sets of every process of the tree,
 *   sampled from /proc every SAMPLE_MS. A lower bound (short peaks between samples are missed), kept in
 *   the JSON because a pipeline's footprint is the sum of its stages.
 * Without /usr/bin/time, wall and tree RSS are still measured; CPU and peak RSS are null.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const GNU_TIME = '/usr/bin/time';
/** SAMPLE_MS: /proc sampling period for the tree RSS; a scan of ~100 processes costs ~1 ms. */
const SAMPLE_MS = 100;
/** TAIL: bytes of stdout/stderr kept for error messages. */
const TAIL = 4096;
/** KILL_GRACE_MS: between SIGTERM and SIGKILL of a timed-out tree. */
const KILL_GRACE_MS = 5000;
const PAGE = 4096;

export interface CommandSpec {
  /** Program and arguments, no shell (pipelines: ['bash', '-c', 'set -o pipefail; ...']). */
  argv: string[];
  cwd?: string;
  /** Added to the inherited environment (undefined removes a variable). */
  env?: Record<string, string | undefined>;
  /** The tree is killed after this many seconds; the measurement then has timedOut = true. */
  timeoutS: number;
}

export interface Measurement {
  /** Exit code 0, not killed, not timed out. */
  ok: boolean;
  exitCode: number | null;
  signal: string | null;
  timedOut: boolean;
  wallS: number;
  userS: number | null;
  sysS: number | null;
  cpuS: number | null;
  /** Largest resident set of one process of the tree (ru_maxrss), bytes. */
  peakRssBytes: number | null;
  /** Peak of the summed resident sets of the process tree, sampled (a lower bound), bytes. */
  treeRssBytes: number | null;
  stdoutTail: string;
  stderrTail: string;
}

/** hasGnuTime: /usr/bin/time is GNU time (it accepts -f and -o). */
export function hasGnuTime(): boolean {
  if (!existsSync(GNU_TIME)) return false;
  const r = spawnSync(GNU_TIME, ['-f', '%M', process.execPath, '-e', '0'], { encoding: 'utf8' });
  return r.status === 0 && /^\d+\s*$/m.test(r.stderr);
}

let gnuTime: boolean | undefined;
let seq = 0;
/** Root pids (process-group leaders) of the commands being measured now (for {@link killRunning}). */
const running = new Set<number>();

/** killRunning signals every command tree that {@link measure} started and that is still running. */
export function killRunning(signal: NodeJS.Signals = 'SIGTERM'): void {
  for (const pgid of running) killTree(pgid, signal);
}

/** measure runs `spec` to its end (or its timeout) and measures it. Never rejects for a failing command. */
export async function measure(spec: CommandSpec): Promise<Measurement> {
  gnuTime ??= hasGnuTime();
  const timeFile = join(tmpdir(), `floe-bench-time-${process.pid}-${seq++}`);
  const argv = gnuTime ? [GNU_TIME, '-f', '%e %U %S %M', '-o', timeFile, '--', ...spec.argv] : spec.argv;
  const started = process.hrtime.bigint();
  const child = spawn(argv[0]!, argv.slice(1), {
    cwd: spec.cwd, env: { ...process.env, ...spec.env }, detached: true, stdio: ['ignore', 'pipe', 'pipe'],
  });
  const out = new Tail();
  const err = new Tail();
  child.stdout.on('data', (b: Buffer) => out.push(b));
  child.stderr.on('data', (b: Buffer) => err.push(b));
  const pgid = child.pid;
  if (pgid !== undefined) running.add(pgid);
  let treePeak = 0;
  let alive = true; // signals and samples go only to a tree whose root is not reaped (pids are reused)
  const sampler = setInterval(() => {
    if (pgid !== undefined && alive) treePeak = Math.max(treePeak, treeRss(pgid, gnuTime ? pgid : undefined));
  }, SAMPLE_MS);
  let timedOut = false;
  let killer: NodeJS.Timeout | undefined;
  const timer = setTimeout(() => {
    if (!alive) return;
    timedOut = true;
    killTree(pgid, 'SIGTERM');
    killer = setTimeout(() => alive && killTree(pgid, 'SIGKILL'), KILL_GRACE_MS);
  }, spec.timeoutS * 1000);

  const { code, signal, ended, spawnError } = await new Promise<{ code: number | null; signal: string | null; ended: bigint; spawnError?: Error }>((resolve) => {
    let exit: { code: number | null; signal: string | null; ended: bigint } | undefined;
    child.on('error', (e) => resolve({ code: null, signal: null, ended: process.hrtime.bigint(), spawnError: e }));
    child.on('exit', (c, s) => {
      alive = false;
      running.delete(pgid!);
      exit = { code: c, signal: s, ended: process.hrtime.bigint() };
      // A background grandchild could hold our pipes open: do not wait for them forever.
      setTimeout(() => resolve(exit!), 2000).unref();
    });
    child.on('close', () => exit && resolve(exit));
  });
  clearInterval(sampler);
  if (pgid !== undefined) running.delete(pgid);
  clearTimeout(timer);
  if (killer) clearTimeout(killer);

  const times = gnuTime ? await readTimeFile(timeFile) : undefined;
  if (spawnError) err.push(Buffer.from(`cannot start ${spec.argv[0]}: ${spawnError.message}`));
  return {
    ok: !spawnError && !timedOut && code === 0,
    exitCode: code, signal, timedOut,
    wallS: Number(ended - started) / 1e9,
    userS: times?.user ?? null,
    sysS: times?.sys ?? null,
    cpuS: times ? times.user + times.sys : null,
    peakRssBytes: times ? times.maxRssKiB * 1024 : null,
    treeRssBytes: treePeak > 0 ? treePeak : null,
    stdoutTail: out.text(),
    stderrTail: err.text(),
  };
}

async function readTimeFile(path: string): Promise<{ user: number; sys: number; maxRssKiB: number } | undefined> {
  try {
    const lines = (await fs.readFile(path, 'utf8')).trim().split('\n');
    await fs.rm(path, { force: true });
    // GNU time writes "Command exited with non-zero status N" (or "terminated by signal") before the format line.
    const m = /^([\d.]+) ([\d.]+) ([\d.]+) (\d+)$/.exec(lines[lines.length - 1] ?? '');
    return m ? { user: Number(m[2]), sys: Number(m[3]), maxRssKiB: Number(m[4]) } : undefined;
  } catch {
    return undefined;
  }
}

/** killTree signals the process group `root` leads and every process below `root` (only what measure started). */
function killTree(root: number | undefined, signal: NodeJS.Signals): void {
  if (root === undefined) return;
  for (const pid of [-root, ...descendants(root)]) {
    try {
      process.kill(pid, signal);
    } catch {
      // already gone
    }
  }
}

/**
 * procTable reads every process's parent from /proc/PID/stat ("pid (comm) state ppid ..."; comm may
 * hold spaces and parentheses, so fields are counted after the last ')').
 */
function procTable(): Map<number, number> {
  const parents = new Map<number, number>();
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((d) => d.charCodeAt(0) >= 48 && d.charCodeAt(0) <= 57);
  } catch {
    return parents;
  }
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
      parents.set(Number(pid), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      // the process ended between readdir and read
    }
  }
  return parents;
}

/**
 * descendants lists `root` and every process below it. By parent links, not by process group: GNU
 * `timeout` (around freezer-agent) moves itself and its child into a group of their own.
 */
function descendants(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const [pid, ppid] of procTable()) children.set(ppid, [...(children.get(ppid) ?? []), pid]);
  const out: number[] = [];
  const stack = [root];
  while (stack.length) {
    const pid = stack.pop()!;
    out.push(pid);
    stack.push(...(children.get(pid) ?? []));
  }
  return out;
}

/** treeRss sums the resident sets of `root`'s tree, leaving out `skip` (GNU time itself). */
function treeRss(root: number, skip: number | undefined): number {
  let sum = 0;
  for (const pid of descendants(root)) {
    if (pid === skip) continue;
    try {
      sum += Number(readFileSync(`/proc/${pid}/statm`, 'latin1').split(' ')[1]) * PAGE;
    } catch {
      // gone
    }
  }
  return sum;
}

/** Tail keeps the last TAIL bytes of a stream. */
class Tail {
  #chunks: Buffer[] = [];
  #size = 0;
  push(b: Buffer): void {
    this.#chunks.push(b);
    this.#size += b.length;
    while (this.#size - this.#chunks[0]!.length > TAIL) this.#size -= this.#chunks.shift()!.length;
  }
  text(): string {
    const all = Buffer.concat(this.#chunks);
    return all.subarray(Math.max(0, all.length - TAIL)).toString('utf8');
  }
}

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** run executes an untimed helper command (init a repository, sync) and collects its output. */
export function run(argv: string[], options: { cwd?: string; env?: Record<string, string | undefined>; timeoutS?: number } = {}): RunResult {
  const r = spawnSync(argv[0]!, argv.slice(1), {
    cwd: options.cwd, env: { ...process.env, ...options.env }, encoding: 'utf8',
    timeout: (options.timeoutS ?? 600) * 1000, maxBuffer: 64 * 1024 * 1024,
  });
  return { code: r.status, stdout: r.stdout ?? '', stderr: (r.stderr ?? '') + (r.error ? String(r.error.message) : '') };
}

/** TreeStats: regular files and their total size under a path (a file counts as one). */
export interface TreeStats {
  files: number;
  bytes: number;
}

/** treeStats walks `path` (not following symlinks) and adds up its regular files. Missing path: zeros. */
export async function treeStats(path: string): Promise<TreeStats> {
  const total: TreeStats = { files: 0, bytes: 0 };
  let st;
  try {
    st = await fs.lstat(path);
  } catch {
    return total;
  }
  if (st.isFile()) return { files: 1, bytes: st.size };
  if (!st.isDirectory()) return total;
  const stack = [path];
  while (stack.length > 0) {
    const dir = stack.pop()!;
    for (const e of await fs.readdir(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) stack.push(p);
      else if (e.isFile()) {
        total.files++;
        total.bytes += (await fs.lstat(p)).size;
      }
    }
  }
  return total;
}
