/**
 * The runners: floe and every peer, each as the commands it takes to make a full backup, a level-1
 * backup and a restore, on the same tree, into its own store.
 *
 * Model: a {@link Runner} owns one store (a directory or an output file) under the work directory.
 * `reset()` empties it (and, for restic and borg, initialises the repository: untimed set-up). `backup()`
 * is the same command for level 0 and level 1: the store's state decides the level (floe and
 * freezer-agent chain the next backup to the newest one, restic finds its parent snapshot, borg its
 * files cache), so a level-1 measurement is just a second backup after the dataset's mutation.
 * Every tool runs on its defaults, except what a fair comparison needs: floe and freezer-agent with
 * the same options (tar engine, local storage, same password file), quiet output everywhere.
 *
 * Roles: `floe`; `peer` (a backup tool or a compressing pipeline: the "best peer" is the fastest of
 * these in a group); `baseline` (no compression: tar to /dev/null or to a file, tar -xf) bounds what
 * the disk path allows and is not counted as a peer.
 */
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { CommandSpec, run } from './measure.js';
import { MALLOC_ENV, NODE_FLAGS } from '../engine/node-flags.js';

export type Tool = 'floe' | 'freezer' | 'tar' | 'restic' | 'borg';
export const TOOLS: readonly Tool[] = ['floe', 'freezer', 'tar', 'restic', 'borg'];
export type Role = 'floe' | 'peer' | 'baseline';

/** BenchEnv: what every runner shares. */
export interface BenchEnv {
  /** The checkout: bin/floe.js and dist/ are there. */
  repoRoot: string;
  /** The dataset tree to back up. */
  tree: string;
  /** Scratch directory of this run: stores, caches, password file, logs. */
  work: string;
  /** A file whose first line is the password (floe, freezer-agent, openssl, restic). */
  passFile: string;
  password: string;
  timeoutS: number;
}

export interface Runner {
  /** Row label: "floe gzip enc", "freezer-agent gzip", "tar -czf", "restic". */
  name: string;
  /** Directory-safe id. */
  id: string;
  tool: Tool;
  role: Role;
  /** gzip, zstd, none, or the tool's own default (restic: "auto (zstd)", borg: "lz4"). */
  compression: string;
  encrypted: boolean;
  /** Why it cannot run here (a command missing), or undefined. */
  missing(): string | undefined;
  /** Its output, measured for "stored"; undefined: it stores nothing (tar | cat > /dev/null). */
  store?: string;
  /** Other directories that go with the store (repository caches), saved and restored with it. */
  stateDirs: string[];
  /** Untimed: an empty store, ready for a level 0. Throws with the tool's message on failure. */
  reset(): void;
  backup(): CommandSpec;
  /** Makes a level-1 backup (a second backup after the mutation) in the level-1 group. */
  level1: boolean;
  /** After a level-1 backup: a problem with it (it was not level 1), or undefined. */
  checkLevel1?(): string | undefined;
  /** Restores the newest backup into `target` (an existing empty directory). */
  restore?: { name: string; role: Role; command(target: string): CommandSpec };
}

const HOST = 'bench';
const NAME = 'bench';

/** hasCommand: `cmd` is on the PATH. */
export function hasCommand(cmd: string): boolean {
  return run(['sh', '-c', `command -v ${cmd}`]).code === 0;
}

function needs(...cmds: string[]): () => string | undefined {
  let memo: string | undefined | null = null;
  return () => {
    if (memo === null) {
      const absent = cmds.filter((c) => !hasCommand(c));
      memo = absent.length ? `not installed: ${absent.join(', ')} (bench/install-peers.sh)` : undefined;
    }
    return memo;
  };
}

const slug = (s: string) => s.replace(/[^a-z0-9]+/gi, '-').replace(/^-|-$/g, '').toLowerCase();

/** bash runs a pipeline with pipefail, so a failing stage fails the case. */
const bash = (script: string, timeoutS: number, cwd?: string): CommandSpec => ({ argv: ['bash', '-c', `set -euo pipefail\n${script}`], cwd, timeoutS });

const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

function rmrf(...paths: string[]): void {
  for (const p of paths) rmSync(p, { recursive: true, force: true });
}

/** hasLevel1 looks for STORE/metadata/tar/HOST_NAME/T0/1_T: the newest backup was a level 1. */
function hasLevel1(store: string): string | undefined {
  const root = join(store, 'metadata', 'tar', `${HOST}_${NAME}`);
  try {
    const found = readdirSync(root).some((t0) => readdirSync(join(root, t0)).some((lt) => lt.startsWith('1_')));
    return found ? undefined : 'no level-1 backup in the store (the second backup was not a level 1)';
  } catch {
    return `cannot read ${root}`;
  }
}

function floeRunner(env: BenchEnv, compression: string, encrypted: boolean, level1: boolean): Runner {
  const name = `floe ${compression}${encrypted ? ' enc' : ''}`;
  const store = join(env.work, slug(name));
  const floe = [process.execPath, ...NODE_FLAGS, join(env.repoRoot, 'bin', 'floe.js')]; // with MALLOC_ENV: as bin/floe.js's shebang runs it
  // Not --quiet: with stdout a pipe floe draws no progress, prints one summary, and its error if any.
  const common = ['--container', store, '--backup-name', NAME, '--hostname', HOST, ...(encrypted ? ['--encrypt-pass-file', env.passFile] : [])];
  return {
    name, id: slug(name), tool: 'floe', role: 'floe', compression, encrypted, store, stateDirs: [], level1,
    missing: () => (existsSync(join(env.repoRoot, 'dist', 'engine', 'cli', 'main.js')) ? undefined : 'floe is not built (npm run build)'),
    reset: () => rmrf(store),
    backup: () => ({ argv: [...floe, 'backup', '--path-to-backup', env.tree, '--compression', compression, ...common], env: MALLOC_ENV, timeoutS: env.timeoutS }),
    checkLevel1: () => hasLevel1(store),
    restore: {
      name, role: 'floe',
      command: (target) => ({ argv: [...floe, 'restore', '--restore-abs-path', target, ...common], env: MALLOC_ENV, timeoutS: env.timeoutS }),
    },
  };
}

/** freezerRunner: freezer-agent 13, tar engine, gzip (its only fast codec), local storage; see freezer.md §9. */
function freezerRunner(env: BenchEnv, encrypted: boolean): Runner {
  const name = `freezer-agent gzip${encrypted ? ' enc' : ''}`;
  const store = join(env.work, slug(name));
  const log = join(env.work, 'freezer-agent.log');
  const agent = (args: string[]): CommandSpec => ({
    argv: ['timeout', '-k', '5', String(env.timeoutS), 'freezer-agent', ...args,
      '--container', store, '--storage', 'local', '--hostname', HOST, '--backup-name', NAME, '--log-file', log,
      ...(encrypted ? ['--encrypt-pass-file', env.passFile] : [])],
    env: { OS_AUTH_URL: 'http://127.0.0.1:1/v3' }, // required, never contacted (freezer.md §9)
    cwd: env.work,
    timeoutS: env.timeoutS + 10,
  });
  return {
    name, id: slug(name), tool: 'freezer', role: 'peer', compression: 'gzip', encrypted, store, stateDirs: [], level1: true,
    missing: needs('freezer-agent', 'timeout', 'tar', 'gzip', ...(encrypted ? ['openssl'] : [])),
    reset: () => rmrf(store),
    backup: () => agent(['--action', 'backup', '--mode', 'fs', '--engine', 'tar', '--path-to-backup', env.tree, '--compression', 'gzip']),
    checkLevel1: () => hasLevel1(store),
    restore: { name, role: 'peer', command: (target) => agent(['--action', 'restore', '--restore-abs-path', target]) },
  };
}

interface ShellCase {
  name: string;
  role: Role;
  compression: string;
  encrypted?: boolean;
  needs: string[];
  /** File name of the output under the work dir; undefined: nothing stored. */
  out?: string;
  /** The backup script, run in the tree: OUT and PASS are substituted. */
  script: string;
  restore?: { name: string; role: Role; script: string };
}

/** SHELL_CASES: GNU tar pipelines, the floor any tar-based tool is measured against. */
const SHELL_CASES: ShellCase[] = [
  { name: 'tar -czf', role: 'peer', compression: 'gzip', needs: ['tar', 'gzip'], out: 'tar-czf.tar.gz', script: 'tar -czf OUT .',
    restore: { name: 'tar -xzf', role: 'peer', script: 'tar -xzf OUT -C TARGET' } },
  { name: 'tar -cf - | gzip -1', role: 'peer', compression: 'gzip -1', needs: ['tar', 'gzip'], out: 'tar-gzip1.tar.gz', script: 'tar -cf - . | gzip -1 > OUT' },
  { name: 'tar -cf - | pigz', role: 'peer', compression: 'gzip (pigz)', needs: ['tar', 'pigz'], out: 'tar-pigz.tar.gz', script: 'tar -cf - . | pigz > OUT' },
  { name: 'tar -cf - | zstd -1 | openssl enc', role: 'peer', compression: 'zstd -1', encrypted: true, needs: ['tar', 'zstd', 'openssl'], out: 'tar-zstd1.tar.zst.enc',
    script: 'tar -cf - . | zstd -1 -q | openssl enc -aes-256-cfb -pass file:PASS -out OUT 2>/dev/null',
    restore: { name: 'openssl enc -d | zstd -d | tar -xf', role: 'peer', script: 'openssl enc -d -aes-256-cfb -pass file:PASS -in OUT 2>/dev/null | zstd -d -q | tar -xf - -C TARGET' } },
  { name: 'tar -cf - | cat > /dev/null', role: 'baseline', compression: 'none', needs: ['tar'], script: 'tar -cf - . | cat > /dev/null' },
  // The same stream stored durably, as floe stores its backups (past the page cache, synced): what this
  // disk takes to keep the uncompressed tree, next to the baseline above, which writes nothing.
  { name: 'tar -cf - | dd oflag=direct', role: 'baseline', compression: 'none', needs: ['tar', 'dd'], out: 'tar-dd.tar',
    script: 'tar -cf - . | dd of=OUT bs=8M iflag=fullblock oflag=direct conv=fsync status=none' },
  { name: 'tar -cf', role: 'baseline', compression: 'none', needs: ['tar'], out: 'tar-cf.tar', script: 'tar -cf OUT .',
    restore: { name: 'tar -xf', role: 'baseline', script: 'tar -xf OUT -C TARGET' } },
];

function shellRunner(env: BenchEnv, c: ShellCase): Runner {
  const store = c.out ? join(env.work, c.out) : undefined;
  const fill = (s: string, target = '') => s.replace(/\bOUT\b/g, q(store ?? '/dev/null')).replace(/\bPASS\b/g, q(env.passFile)).replace(/\bTARGET\b/g, q(target));
  return {
    name: c.name, id: slug(c.name), tool: 'tar', role: c.role, compression: c.compression, encrypted: c.encrypted ?? false,
    store, stateDirs: [], level1: false,
    missing: needs('bash', ...c.needs),
    reset: () => store && rmrf(store),
    backup: () => bash(fill(c.script), env.timeoutS, env.tree),
    restore: c.restore && { name: c.restore.name, role: c.restore.role, command: (target) => bash(fill(c.restore!.script, target), env.timeoutS, env.tree) },
  };
}

/** resticRunner: restic on its defaults (repository v2: zstd "auto", AES-256-CTR + Poly1305). */
function resticRunner(env: BenchEnv): Runner {
  const store = join(env.work, 'restic-repo');
  const cache = join(env.work, 'restic-cache');
  const renv = { RESTIC_REPOSITORY: store, RESTIC_PASSWORD_FILE: env.passFile, RESTIC_CACHE_DIR: cache };
  const spec = (args: string[]): CommandSpec => ({ argv: ['restic', ...args], env: renv, cwd: env.work, timeoutS: env.timeoutS });
  return {
    name: 'restic', id: 'restic', tool: 'restic', role: 'peer', compression: 'auto (zstd)', encrypted: true,
    store, stateDirs: [cache], level1: true,
    missing: needs('restic'),
    reset: () => {
      rmrf(store, cache);
      const r = run(['restic', 'init', '-q'], { env: renv, cwd: env.work });
      if (r.code !== 0) throw new Error(`restic init: ${r.stderr.trim() || `exit ${r.code}`}`);
    },
    backup: () => spec(['backup', '-q', '--host', HOST, env.tree]),
    restore: { name: 'restic', role: 'peer', command: (target) => spec(['restore', 'latest', '-q', '--target', target]) },
  };
}

/** borgRunner: borg 1.2 on its defaults (lz4, repokey encryption); caches and keys under the work dir. */
function borgRunner(env: BenchEnv): Runner {
  const store = join(env.work, 'borg-repo');
  const home = join(env.work, 'borg-home');
  const benv = { BORG_REPO: store, BORG_PASSPHRASE: env.password, BORG_BASE_DIR: home, BORG_RELOCATED_REPO_ACCESS_IS_OK: 'yes' };
  let archives = 0;
  const last = () => `b${archives}`;
  return {
    name: 'borg', id: 'borg', tool: 'borg', role: 'peer', compression: 'lz4', encrypted: true,
    store, stateDirs: [home], level1: true,
    missing: needs('borg'),
    reset: () => {
      rmrf(store, home);
      const r = run(['borg', 'init', '-e', 'repokey'], { env: benv, cwd: env.work });
      if (r.code !== 0) throw new Error(`borg init: ${r.stderr.trim() || `exit ${r.code}`}`);
    },
    // A new archive name per backup; `.` from inside the tree, so extract writes the tree's contents.
    backup: () => {
      archives++;
      return { argv: ['borg', 'create', `::${last()}`, '.'], env: benv, cwd: env.tree, timeoutS: env.timeoutS };
    },
    restore: { name: 'borg', role: 'peer', command: (target) => ({ argv: ['borg', 'extract', `::${last()}`], env: benv, cwd: target, timeoutS: env.timeoutS }) },
  };
}

/**
 * makeRunners lists every runner in report order: floe (gzip, zstd, none; clear and encrypted; level 1
 * for gzip and zstd encrypted), freezer-agent (gzip, clear and encrypted), the tar pipelines, restic, borg.
 */
export function makeRunners(env: BenchEnv): Runner[] {
  const floe: Runner[] = [];
  for (const c of ['gzip', 'zstd', 'none']) {
    for (const enc of [false, true]) floe.push(floeRunner(env, c, enc, enc && c !== 'none'));
  }
  return [
    ...floe,
    freezerRunner(env, false),
    freezerRunner(env, true),
    ...SHELL_CASES.map((c) => shellRunner(env, c)),
    resticRunner(env),
    borgRunner(env),
  ];
}
