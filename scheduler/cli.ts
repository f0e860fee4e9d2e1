/**
 * `floe scheduler start|stop|status|reload`: freezer-scheduler's command (reference/freezer.md §5.1).
 *
 *   start     run the scheduler: as a daemon (the default), or in the foreground with --no-daemon
 *   stop      SIGTERM to the running scheduler (found through its pid file), wait until it is gone
 *   status    whether it runs, and each job's status, last result and metrics (--json: one document)
 *   reload    SIGHUP: poll the API (or re-read the job files) now
 *
 * One scheduler per jobs directory: its pid file is `<jobs-dir>/.floe/scheduler.pid` (--pid-file to
 * change), so several schedulers (several client ids) can run on one host with distinct jobs directories.
 * The token comes from --token-file or FLOE_TOKEN (or OS_TOKEN); --token works but warns, since every
 * user can read process arguments. Options may also come from an INI file (--config FILE, sections
 * [scheduler] and [capabilities], keys as the long options); the command line wins.
 * The project and client id learned from the API are kept in `<jobs-dir>/.floe/identity.json`, so a
 * restart while the API is down still knows who it is and runs the jobs it has.
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { homedir, hostname as osHostname } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ExitCode, UsageError, errnoMessage } from '../engine/errors.js';
import { resolveToken } from '../engine/actions/report.js';
import { supportedStorages } from '../engine/storage/registry.js';
import { ENGINES } from '../engine/actions/common.js';
import { ApiClient } from './client.js';
import { makeLog, Level, Log } from './log.js';
import type { ActionExecutor } from './runner.js';
import { InProcessExecutor, ProcessExecutor } from './agents.js';
import { Capabilities, FREEZER_CAPABILITIES, Scheduler } from './scheduler.js';
import { JobStore, acquirePidFile, releasePidFile, runningScheduler, writeAtomic } from './store.js';
import { NODE_FLAGS, floeEnv } from '../engine/node-flags.js';

const COMMANDS = ['start', 'stop', 'status', 'reload', 'restart'] as const;
type Command = (typeof COMMANDS)[number];

const HELP = `floe scheduler: runs this node's backup jobs on time (freezer-scheduler compatible)

  floe scheduler start|stop|restart|status|reload [options]

  -c, --client-id ID         this node's client id (default <project>_<hostname>)
      --api URL              the API (http://host:9090, or http://host:9090/v2/PROJECT); env FLOE_API_URL
                             or OS_BACKUP_URL
      --project P            the project (default: the token's, asked from the API); env OS_PROJECT_ID
      --token-file FILE      the API token, first line of FILE (else env FLOE_TOKEN or OS_TOKEN)
      --token TOKEN          the token itself (visible in ps: prefer --token-file)
  -n, --no-api               no API: the jobs are the *.conf JSON files of the jobs directory
  -f, --jobs-dir DIR         jobs directory (alias --conf; env FREEZER_SCHEDULER_CONF_D;
                             default $FLOE_HOME/scheduler/conf.d, FLOE_HOME defaulting to ~/.floe)
  -i, --interval SECONDS     API poll period (default 60)
      --no-daemon            run in the foreground
      --concurrent-jobs N    jobs run at the same time (default 1)
      --disable-exec         jobs with an exec action fail instead of running
      --supported-actions L, --supported-modes L, --supported-storages L, --supported-engines L
                             capabilities (comma lists); jobs asking for others are ignored
      --agent-command CMD    run actions as CMD --config FILE --metadata-out - (e.g. freezer-agent);
                             default: this floe's agent as a child process
      --in-process           run actions inside the scheduler process (no child process)
      --misfire-grace-time S a run later than this is dropped (default 3600)
      --pid-file FILE, --log-file FILE, --log-level debug|info|warn|error, --debug
      --config FILE          options from an INI file ([scheduler], [capabilities])
      --json                 status: one JSON document
`;

const VALUE = new Set([
  'client-id', 'api', 'os-backup-url', 'project', 'token-file', 'token', 'jobs-dir', 'conf', 'interval', 'concurrent-jobs',
  'supported-actions', 'supported-modes', 'supported-storages', 'supported-engines', 'agent-command', 'misfire-grace-time',
  'pid-file', 'log-file', 'log-level', 'config', 'config-file',
]);
const BOOL = new Set(['no-api', 'no-daemon', 'disable-exec', 'in-process', 'debug', 'json', 'insecure', 'enable-v1-api', 'centralized-scheduler']);
const SHORT: Record<string, string> = { c: 'client-id', n: 'no-api', f: 'jobs-dir', i: 'interval' };

type Flags = Record<string, string | boolean>;

/** parseArgs reads `floe scheduler` arguments (after "scheduler"). Underscores = dashes, as oslo.config. */
export function parseArgs(argv: readonly string[]): { command?: string; flags: Flags; help: boolean } {
  const flags: Flags = {};
  let command: string | undefined;
  let help = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--help' || a === '-h') { help = true; continue; }
    let name: string;
    let inline: string | undefined;
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      name = (eq > 0 ? a.slice(2, eq) : a.slice(2)).replace(/_/g, '-');
      inline = eq > 0 ? a.slice(eq + 1) : undefined;
    } else if (/^-[a-z]$/.test(a) && SHORT[a[1]]) {
      name = SHORT[a[1]];
    } else if (!a.startsWith('-') && command === undefined) {
      command = a;
      continue;
    } else {
      throw new UsageError(`unexpected argument '${a}' (see floe scheduler --help)`);
    }
    if (BOOL.has(name)) {
      flags[name] = inline === undefined ? true : !/^(false|0|no|off)$/i.test(inline);
    } else if (VALUE.has(name)) {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new UsageError(`option --${name} needs a value`);
      flags[name] = v;
    } else {
      throw new UsageError(`unknown option --${name} for floe scheduler (see floe scheduler --help)`);
    }
  }
  return { command, flags, help };
}

/** readConfig reads an INI file's [scheduler]/[DEFAULT]/[capabilities] keys as flags. */
export function readConfig(path: string): Flags {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read config file ${path}: ${errnoMessage(err)}`);
  }
  const flags: Flags = {};
  let section = '';
  for (const [n, raw] of text.split(/\r?\n/).entries()) {
    const line = raw.trim();
    if (!line || line.startsWith('#') || line.startsWith(';')) continue;
    const sec = /^\[([^\]]+)\]$/.exec(line);
    if (sec) { section = sec[1].trim().toLowerCase(); continue; }
    const kv = /^([^=:]+?)\s*[=:]\s*(.*)$/.exec(line);
    if (!kv) throw new UsageError(`${path}:${n + 1}: not a section, key = value or comment`);
    if (!['scheduler', 'default', 'capabilities'].includes(section)) continue;
    const key = kv[1].trim().toLowerCase().replace(/_/g, '-');
    const value = kv[2].trim();
    const name = key === 'conf' ? 'jobs-dir' : key;
    if (BOOL.has(name)) flags[name] = /^(true|1|yes|on)$/i.test(value);
    else if (VALUE.has(name)) flags[name] = value;
  }
  return flags;
}

/** Settings: the resolved options of a scheduler command. */
export interface Settings {
  jobsDir: string;
  pidFile: string;
  logFile?: string;
  logLevel: Level;
  noApi: boolean;
  intervalMs: number;
  concurrentJobs: number;
  disableExec: boolean;
  graceMs: number;
  inProcess: boolean;
  agentCommand?: string[];
  capabilities: Capabilities;
  json: boolean;
}

function floeHome(env: NodeJS.ProcessEnv): string {
  return env.FLOE_HOME ? resolve(env.FLOE_HOME) : join(homedir(), '.floe');
}

function str(f: Flags, name: string): string | undefined {
  const v = f[name];
  return typeof v === 'string' ? v : undefined;
}

function positive(f: Flags, name: string, dflt: number, integer = true): number {
  const v = str(f, name);
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!(n > 0) || (integer && !Number.isInteger(n))) throw new UsageError(`--${name} must be a positive ${integer ? 'integer' : 'number'}, got '${v}'`);
  return n;
}

function list(f: Flags, name: string, dflt: string[]): string[] {
  const v = str(f, name);
  return v === undefined ? dflt : v.split(/[\s,]+/).filter(Boolean);
}

/** settingsOf resolves the flags (config file first, command line over it). */
export function settingsOf(cli: Flags, env: NodeJS.ProcessEnv = process.env): Settings {
  const cfg = str(cli, 'config') ?? str(cli, 'config-file');
  const f: Flags = { ...(cfg ? readConfig(cfg) : {}), ...cli };
  if (f['enable-v1-api']) throw new UsageError('--enable-v1-api: floe speaks the v2 API only');
  if (f['centralized-scheduler']) throw new UsageError('--centralized-scheduler is not supported (each node runs its own scheduler)');
  const jobsDir = resolve(str(f, 'jobs-dir') ?? str(f, 'conf') ?? env.FREEZER_SCHEDULER_CONF_D ?? join(floeHome(env), 'scheduler', 'conf.d'));
  const agent = str(f, 'agent-command')?.trim();
  const floeAgent = !agent;
  const level = str(f, 'log-level') ?? (f.debug ? 'debug' : 'info');
  if (!['debug', 'info', 'warn', 'error'].includes(level)) throw new UsageError(`--log-level must be debug, info, warn or error, got '${level}'`);
  const floeCaps: Capabilities = { actions: FREEZER_CAPABILITIES.actions, modes: ['fs'], storages: supportedStorages(), engines: [...ENGINES] };
  const caps = floeAgent ? floeCaps : FREEZER_CAPABILITIES;
  return {
    jobsDir,
    pidFile: resolve(str(f, 'pid-file') ?? join(jobsDir, '.floe', 'scheduler.pid')),
    logFile: str(f, 'log-file') ? resolve(str(f, 'log-file')!) : undefined,
    logLevel: level as Level,
    noApi: f['no-api'] === true,
    intervalMs: positive(f, 'interval', 60, false) * 1000,
    concurrentJobs: positive(f, 'concurrent-jobs', 1),
    disableExec: f['disable-exec'] === true,
    graceMs: positive(f, 'misfire-grace-time', 3600, false) * 1000,
    inProcess: f['in-process'] === true,
    agentCommand: agent ? agent.split(/\s+/) : undefined,
    capabilities: {
      actions: list(f, 'supported-actions', caps.actions),
      modes: list(f, 'supported-modes', caps.modes),
      storages: list(f, 'supported-storages', caps.storages),
      engines: list(f, 'supported-engines', caps.engines),
    },
    json: f.json === true,
  };
}

/** runSchedulerCommand runs `floe scheduler ...`; resolves to the exit code. */
export async function runSchedulerCommand(argv: readonly string[], signal: AbortSignal): Promise<number> {
  const { command, flags, help } = parseArgs(argv);
  if (help) {
    process.stdout.write(HELP);
    return ExitCode.OK;
  }
  if (!command) {
    process.stdout.write(HELP);
    return ExitCode.USAGE;
  }
  if (!COMMANDS.includes(command as Command)) throw new UsageError(`unknown scheduler command '${command}' (${COMMANDS.join(', ')})`);
  const s = settingsOf(flags);
  switch (command as Command) {
    case 'start':
      if (flags['no-daemon'] === true || process.env.FLOE_SCHEDULER_DAEMON === '1') return foreground(s, flags, signal);
      preflight(s, flags);
      return daemonize(s, argv);
    case 'stop':
      return stop(s);
    case 'restart': {
      await stop(s);
      return daemonize(s, argv.map((a) => (a === 'restart' ? 'start' : a)));
    }
    case 'status':
      return status(s);
    case 'reload': {
      const pid = runningScheduler(s.pidFile);
      if (pid === undefined) return notRunning();
      process.kill(pid, 'SIGHUP');
      process.stdout.write(`reload requested (pid ${pid})\n`);
      return ExitCode.OK;
    }
  }
}

function notRunning(): number {
  process.stdout.write('Not Running\n');
  return ExitCode.NOT_FOUND;
}

/** preflight checks, before a daemon is started, what would make it stop at once (its errors go to a log). */
function preflight(s: Settings, flags: Flags): void {
  if (s.noApi) return;
  apiUrl(flags);
  const env = process.env;
  if (!str(flags, 'token-file') && !env.FLOE_TOKEN && !env.OS_TOKEN && !str(flags, 'token')) {
    throw new UsageError('the scheduler needs the API token: --token-file FILE, or the FLOE_TOKEN environment variable');
  }
}

/** apiUrl reads --api (or the environment): the base URL, and the project when the URL ends in /v2/P. */
function apiUrl(flags: Flags): { base: string; project?: string } {
  const raw = str(flags, 'api') ?? str(flags, 'os-backup-url') ?? process.env.FLOE_API_URL ?? process.env.OS_BACKUP_URL;
  if (!raw) throw new UsageError('the scheduler needs --api URL (or --no-api to run the job files of the jobs directory)');
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new UsageError(`--api must be a URL such as http://127.0.0.1:9090, got '${raw}'`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError(`--api must be an http or https URL, got '${raw}'`);
  const m = /^(.*?)\/v2\/([A-Za-z0-9_-]+)\/?$/.exec(url.pathname);
  return { base: m ? `${url.origin}${m[1]}` : `${url.origin}${url.pathname.replace(/\/+$/, '')}`, project: m?.[2] };
}

/** FLOE_BIN: bin/floe.js of this installation (this file runs as dist/scheduler/cli.js). */
const FLOE_BIN = fileURLToPath(new URL('../../bin/floe.js', import.meta.url));

/** daemonize starts `floe scheduler start --no-daemon ...` detached, logging to the log file. */
async function daemonize(s: Settings, argv: readonly string[]): Promise<number> {
  const live = runningScheduler(s.pidFile);
  if (live !== undefined) {
    process.stdout.write(`floe scheduler is already running, pid: ${live}\n`);
    return ExitCode.OK;
  }
  const store = new JobStore(s.jobsDir).open();
  const logFile = s.logFile ?? store.logFile;
  const fd = openSync(logFile, 'a', 0o600);
  const child = spawn(process.execPath, [...NODE_FLAGS, FLOE_BIN, 'scheduler', ...argv, '--log-file', logFile], {
    detached: true, stdio: ['ignore', fd, fd], env: floeEnv({ ...process.env, FLOE_SCHEDULER_DAEMON: '1' }),
  });
  closeSync(fd);
  child.unref();
  for (let waited = 0; waited < 10_000; waited += 100) {
    const pid = runningScheduler(s.pidFile);
    if (pid === child.pid) {
      process.stdout.write(`floe scheduler started, pid: ${pid} (log ${logFile})\n`);
      return ExitCode.OK;
    }
    if (child.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  process.stderr.write(`floe: the scheduler did not start: see ${logFile}\n`);
  return ExitCode.FAILURE;
}

async function stop(s: Settings): Promise<number> {
  const pid = runningScheduler(s.pidFile);
  if (pid === undefined) return notRunning();
  process.kill(pid, 'SIGTERM');
  for (let waited = 0; waited < 60_000; waited += 100) {
    if (runningScheduler(s.pidFile) !== pid) {
      process.stdout.write(`floe scheduler stopped (pid ${pid})\n`);
      return ExitCode.OK;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  process.stderr.write(`floe: the scheduler (pid ${pid}) is still running after 60 s\n`);
  return ExitCode.FAILURE;
}

function status(s: Settings): number {
  const pid = runningScheduler(s.pidFile);
  const store = new JobStore(s.jobsDir);
  const jobs = existsSync(store.stateDir) ? store.load() : [];
  if (s.json) {
    const doc = {
      running: pid !== undefined, pid: pid ?? null, jobs_dir: s.jobsDir,
      jobs: jobs.map((r) => ({
        job_id: r.job_id, phase: r.phase, status: (r.doc.job_schedule as Record<string, unknown>)?.status ?? '',
        result: (r.doc.job_schedule as Record<string, unknown>)?.result ?? '', run: r.run, pending_reports: r.outbox.length,
        last_fire: r.trigger.last_fire, history: r.history,
      })),
    };
    process.stdout.write(`${JSON.stringify(doc, null, 2)}\n`);
  } else {
    process.stdout.write(pid !== undefined ? `Running with pid: ${pid}\n` : 'Not Running\n');
    for (const r of jobs) {
      const js = (r.doc.job_schedule ?? {}) as Record<string, unknown>;
      const last = r.history[r.history.length - 1];
      const metrics = last ? `, last run ${last.result} in ${last.duration_s} s, ${last.bytes_read} B read, ${last.bytes_stored} B stored, exit ${last.exit_code}` : '';
      const owed = r.outbox.length ? `, ${r.outbox.length} reports to deliver` : '';
      process.stdout.write(`  job ${r.job_id}: ${js.status || r.phase}${js.result ? ` (${js.result})` : ''}${metrics}${owed}\n`);
    }
  }
  return pid !== undefined ? ExitCode.OK : ExitCode.NOT_FOUND;
}

/** foreground runs the scheduler in this process until `signal` (SIGTERM/SIGINT) aborts. */
async function foreground(s: Settings, flags: Flags, signal: AbortSignal): Promise<number> {
  const log = makeLog({ file: s.logFile, min: s.logLevel });
  const store = new JobStore(s.jobsDir).open();
  acquirePidFile(s.pidFile);
  const onHup = () => {
    log('info', 'SIGHUP: reloading');
    void scheduler?.poll();
  };
  let scheduler: Scheduler | undefined;
  try {
    const id = s.noApi ? { clientId: str(flags, 'client-id') ?? osHostname(), api: undefined } : await identity(s, flags, store, log, signal);
    if (signal.aborted) return ExitCode.OK;
    scheduler = new Scheduler({
      clientId: id.clientId, api: id.api, store, executor: executorOf(s, log), log,
      intervalMs: s.intervalMs, concurrentJobs: s.concurrentJobs, disableExec: s.disableExec, capabilities: s.capabilities, graceMs: s.graceMs,
    });
    process.on('SIGHUP', onHup);
    log('info', `floe scheduler ${id.clientId} started (pid ${process.pid}, jobs ${s.jobsDir}, ${s.noApi ? 'no API' : `API ${id.api!.url}`}, actions ${s.inProcess ? 'in-process' : (s.agentCommand ?? ['floe agent']).join(' ')})`);
    await scheduler.start();
    await new Promise<void>((r) => (signal.aborted ? r() : signal.addEventListener('abort', () => r(), { once: true })));
    log('info', 'stopping');
    await scheduler.stop();
    log('info', 'stopped');
    return ExitCode.OK;
  } finally {
    process.removeListener('SIGHUP', onHup);
    releasePidFile(s.pidFile);
  }
}

function executorOf(s: Settings, log: Log): ActionExecutor {
  if (s.inProcess) return new InProcessExecutor(log);
  return s.agentCommand ? new ProcessExecutor(s.agentCommand) : new ProcessExecutor([process.execPath, ...NODE_FLAGS, FLOE_BIN, 'agent'], floeEnv());
}

interface Identity {
  project: string;
  client_id: string;
}

/**
 * identity resolves the API client, project and client id. The project comes from --project, the URL,
 * OS_PROJECT_ID, or the API (the token's); if the API cannot be asked, from the last run's identity
 * file; failing that it waits for the API.
 */
async function identity(s: Settings, flags: Flags, store: JobStore, log: Log, signal: AbortSignal): Promise<{ clientId: string; api: ApiClient }> {
  const { base, project: fromUrl } = apiUrl(flags);
  const env = process.env;
  const tokenFile = str(flags, 'token-file');
  const tokenFlag = str(flags, 'token');
  // Freezer's [service_auth] token defaults to OS_TOKEN: taken last, and without the --token warning
  const token = !tokenFile && !env.FLOE_TOKEN && !tokenFlag && env.OS_TOKEN
    ? env.OS_TOKEN.trim()
    : await resolveToken({ token_file: tokenFile, token: tokenFlag }, { warn: (msg) => log('warn', msg) });
  const file = join(store.stateDir, 'identity.json');
  const saved = readIdentity(file);
  let project = str(flags, 'project') ?? fromUrl ?? env.OS_PROJECT_ID ?? undefined;
  const api = new ApiClient({ url: base, token, project });
  for (let attempt = 0; !project; attempt++) {
    try {
      project = await api.project();
    } catch (err) {
      if (saved) {
        log('warn', `cannot ask the API for the project (${(err as Error).message}): using the last known one, ${saved.project}`);
        project = saved.project;
        break;
      }
      if (!(err as { retryable?: boolean }).retryable) throw err;
      if (attempt === 0) log('warn', `waiting for the API to learn the project: ${(err as Error).message}`);
      await new Promise((r) => setTimeout(r, Math.min(s.intervalMs, 10_000)));
      if (signal.aborted) break;
    }
  }
  const resolved = project ?? '';
  const clientId = str(flags, 'client-id') ?? `${resolved}_${osHostname()}`;
  const client = new ApiClient({ url: base, token, project: resolved });
  if (resolved) writeAtomic(file, JSON.stringify({ project: resolved, client_id: clientId } satisfies Identity));
  return { clientId, api: client };
}

function readIdentity(file: string): Identity | undefined {
  try {
    const v = JSON.parse(readFileSync(file, 'utf8')) as Identity;
    return typeof v.project === 'string' && typeof v.client_id === 'string' ? v : undefined;
  } catch {
    return undefined;
  }
}
