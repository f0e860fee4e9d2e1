/**
 * Agents: how one action runs (the ActionExecutor implementations of runner.ts).
 *
 *   ProcessExecutor     `<agent> --config action.ini --metadata-out -` as a child process, Freezer's
 *                       contract: `floe agent` by default, or any agent (`--agent-command freezer-agent`).
 *                       The child outlives a scheduler killed with SIGKILL: it runs under a small shell
 *                       that records its pid and exit code in the attempt's directory, so the restarted
 *                       scheduler waits for it and collects its result instead of starting it again.
 *                       A shutdown leaves it running for the same reason; an abort sends it SIGTERM.
 *   InProcessExecutor   the engine's action functions, called in this process (no process start-up;
 *                       an action interrupted by a crash or a shutdown is run again at the next start).
 * Both write the action as freezer-scheduler does: an `[action]` INI section (actionIni).
 */
import { spawn } from 'node:child_process';
import { existsSync, openSync, readFileSync, readSync, closeSync, fstatSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FloeError, ExitCode } from '../engine/errors.js';
import { Output } from '../engine/cli/output.js';
import type { Progress } from '../engine/progress.js';
import type { Log } from './log.js';
import { bytesOf } from './metrics.js';
import { ChildRecord, Doc, cmdlineHas, isAlive } from './store.js';
import { ActionExecutor, ActionOutcome, ActionRequest, SHUTDOWN_REASON } from './runner.js';

/** KILL_AFTER_MS: an agent still alive this long after SIGTERM gets SIGKILL. */
export const KILL_AFTER_MS = 15_000;
/** How much of an agent's stdout (its result document) and stderr (its error) is read. */
const MAX_DOCUMENT_BYTES = 4 * 1024 * 1024;
const MAX_ERROR_BYTES = 4096;

/**
 * actionIni writes a freezer_action as freezer-scheduler does: one `[action]` section, None values
 * dropped, booleans as True/False. Lists become continuation lines (floe reads them as lists).
 */
export function actionIni(action: Doc): string {
  const lines = ['[action]'];
  for (const [k, v] of Object.entries(action)) {
    if (v === null || v === undefined) continue;
    if (!/^[\w-]+$/.test(k)) continue;
    let text: string;
    if (typeof v === 'boolean') text = v ? 'True' : 'False';
    else if (Array.isArray(v)) text = v.map((x) => String(x)).join('\n');
    else if (typeof v === 'object') text = JSON.stringify(v);
    else text = String(v);
    lines.push(`${k} = ${text.split(/\r?\n/).join('\n\t')}`);
  }
  return `${lines.join('\n')}\n`;
}

/**
 * WRAPPER: the shell that runs an agent and leaves its pid and exit code in files of the attempt's
 * directory ($1): written to a temporary name and renamed, so a reader never sees half a number.
 */
const WRAPPER = [
  'd=$1; shift',
  '"$@" >"$d/stdout" 2>"$d/stderr" </dev/null &',
  'echo $! >"$d/pid.tmp" && mv "$d/pid.tmp" "$d/pid"',
  'wait $!',
  'echo $? >"$d/rc.tmp" && mv "$d/rc.tmp" "$d/rc"',
].join('\n');
const POLL_MS = 100;

/** ProcessExecutor runs each action as `<agent...> --config <ini> --metadata-out -`. */
export class ProcessExecutor implements ActionExecutor {
  readonly name: string;
  readonly #argv: string[];
  readonly #env: NodeJS.ProcessEnv;

  /** argv: the agent command (e.g. [node, floe.js, 'agent'] or ['freezer-agent']). */
  constructor(argv: string[], env: NodeJS.ProcessEnv = process.env) {
    if (argv.length === 0) throw new TypeError('argv must name the agent command');
    this.#argv = argv;
    this.name = argv.join(' ');
    // the API token is the scheduler's, not the agent's: an exec action must not see it
    const { FLOE_TOKEN: _t, ...rest } = env;
    this.#env = rest;
  }

  async run(req: ActionRequest): Promise<ActionOutcome> {
    let child: ChildRecord;
    let exited: Promise<void>;
    if (req.resume) {
      child = req.resume;
      if (!existsSync(join(child.dir, 'rc')) && !(isAlive(child.pid) && cmdlineHas(child.pid, child.dir))) {
        return { exitCode: -1, signalled: false, lost: true, error: 'the agent started before the restart is gone' };
      }
      exited = waitForFile(join(child.dir, 'rc'), () => isAlive(child.pid) && cmdlineHas(child.pid, child.dir));
    } else {
      const ini = join(req.dir, 'action.ini');
      writeFileSync(ini, actionIni(req.action), { mode: 0o600 });
      const argv = [...this.#argv, '--config', ini, '--metadata-out', '-'];
      const sh = spawn('/bin/sh', ['-c', WRAPPER, 'floe-agent-wrapper', req.dir, ...argv], {
        detached: true, stdio: 'ignore', env: this.#env,
      });
      const spawned = await new Promise<number | Error>((resolve) => {
        sh.once('spawn', () => resolve(sh.pid ?? -1));
        sh.once('error', resolve);
      });
      if (spawned instanceof Error) return { exitCode: -1, signalled: false, error: `cannot start the agent: ${spawned.message}` };
      child = { dir: req.dir, pid: spawned };
      exited = new Promise((resolve) => sh.once('exit', () => resolve()));
    }
    // a shutdown leaves the agent running: the next start collects it (as after a SIGKILL)
    let onShutdown: () => void = () => undefined;
    const shutdown = new Promise<'shutdown'>((resolve) => { onShutdown = () => resolve('shutdown'); });
    const stopWatch = this.#watchSignal(req.signal, child, onShutdown);
    child.agent_pid ??= await readAgentPid(child.dir, exited);
    if (child.agent_pid !== undefined) req.onStarted?.(child.agent_pid, child);
    const how = await Promise.race([exited.then(() => 'exited' as const), shutdown]);
    stopWatch();
    if (how === 'shutdown') return { exitCode: -1, signalled: true, error: 'left running for the next start' };
    return collect(child.dir, req.signal.aborted);
  }

  /**
   * #watchSignal: on abort, terminates the agent (SIGTERM, then SIGKILL if it lingers); on shutdown,
   * only lets run() return.
   */
  #watchSignal(signal: AbortSignal, child: ChildRecord, onShutdown: () => void): () => void {
    let killTimer: NodeJS.Timeout | undefined;
    const onAbort = async () => {
      if (signal.reason === SHUTDOWN_REASON) {
        onShutdown();
        return;
      }
      const pid = child.agent_pid ?? (await readAgentPid(child.dir, new Promise((r) => setTimeout(r, 2000))));
      if (pid === undefined) return;
      signalPid(pid, 'SIGTERM');
      killTimer = setTimeout(() => signalPid(pid, 'SIGKILL'), KILL_AFTER_MS);
      killTimer.unref();
    };
    if (signal.aborted) void onAbort();
    else signal.addEventListener('abort', () => void onAbort(), { once: true });
    return () => {
      if (killTimer) clearTimeout(killTimer);
    };
  }
}

function signalPid(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

async function waitForFile(path: string, stillRunning: () => boolean): Promise<void> {
  while (!existsSync(path)) {
    if (!stillRunning()) return;
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

/** readAgentPid waits for the wrapper's pid file (written right after the fork) or for the end. */
async function readAgentPid(dir: string, ended: Promise<void>): Promise<number | undefined> {
  let over = false;
  void ended.then(() => { over = true; });
  for (;;) {
    const text = readSmall(join(dir, 'pid'));
    if (text !== undefined && /^\d+\s*$/.test(text)) return Number(text);
    if (over) return undefined;
    await new Promise((r) => setTimeout(r, 10));
  }
}

function readSmall(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** readTail reads at most `max` bytes from the end of a file. */
function readTail(path: string, max: number): string {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return '';
  }
  try {
    const size = fstatSync(fd).size;
    const len = Math.min(size, max);
    const buf = Buffer.alloc(len);
    readSync(fd, buf, 0, len, size - len);
    return buf.toString('utf8');
  } finally {
    closeSync(fd);
  }
}

/** collect reads a finished attempt: exit code, result document, the end of stderr. */
function collect(dir: string, signalled: boolean): ActionOutcome {
  const rcText = readSmall(join(dir, 'rc'));
  if (rcText === undefined || !/^\d+\s*$/.test(rcText)) {
    return { exitCode: -1, signalled, lost: !signalled, error: 'the agent ended without an exit code' };
  }
  const exitCode = Number(rcText);
  const document = parseDocument(readTail(join(dir, 'stdout'), MAX_DOCUMENT_BYTES));
  const { read, stored } = bytesOf(document);
  const err = readTail(join(dir, 'stderr'), MAX_ERROR_BYTES).trim().split('\n').slice(-3).join(' ').trim();
  return { exitCode, signalled, document, bytesRead: read, bytesStored: stored, error: exitCode !== 0 && err ? err : undefined };
}

/** parseDocument reads the agent's result document: the whole of stdout, or its last JSON line. */
export function parseDocument(text: string): Doc | undefined {
  const t = text.trim();
  if (!t) return undefined;
  const asObject = (s: string): Doc | undefined => {
    try {
      const v: unknown = JSON.parse(s);
      return v && typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length > 0 ? (v as Doc) : undefined;
    } catch {
      return undefined;
    }
  };
  return asObject(t) ?? t.split('\n').reverse().map((l) => asObject(l.trim())).find((d) => d !== undefined);
}

/** MeteredOutput is a silent engine Output that counts bytes and sends warnings to the scheduler log. */
class MeteredOutput extends Output {
  read = 0;
  stored = 0;
  readonly #log: Log;
  constructor(log: Log) {
    super({ json: false, quiet: true });
    this.#log = log;
  }
  override progress(action: string): Progress {
    const inner = super.progress(action);
    return {
      ...inner,
      onBytes: (n) => { this.read += n; },
      onStored: (n) => { this.stored += n; },
      onWarning: (m) => this.#log('warn', `${action}: ${m}`),
    };
  }
  override warn(message: string): void {
    this.#log('warn', message);
  }
}

/** InProcessExecutor runs actions through the engine's functions, in this process. */
export class InProcessExecutor implements ActionExecutor {
  readonly name = 'in-process';
  readonly #log: Log;
  constructor(log: Log) {
    this.#log = log;
  }

  async run(req: ActionRequest): Promise<ActionOutcome> {
    if (req.resume) return { exitCode: -1, signalled: false, lost: true };
    const ini = join(req.dir, 'action.ini');
    writeFileSync(ini, actionIni(req.action), { mode: 0o600 });
    req.onStarted?.(process.pid);
    const out = new MeteredOutput(this.#log);
    try {
      const [{ mergeOptions }, actions] = await Promise.all([import('../engine/cli/main.js'), import('../engine/actions/index.js')]);
      const o = mergeOptions({ config: ini });
      const r: { document: Doc } = await actions.performAction(o, out, req.signal);
      const document = o.action === 'backup' && !o.dry_run ? r.document : undefined;
      const b = bytesOf(document);
      return {
        exitCode: ExitCode.OK, signalled: req.signal.aborted, document,
        bytesRead: b.read ?? out.read, bytesStored: b.stored ?? out.stored,
      };
    } catch (err) {
      const code = err instanceof FloeError ? err.exitCode : ExitCode.FAILURE;
      return { exitCode: code, signalled: req.signal.aborted, error: (err as Error)?.message ?? String(err), bytesRead: out.read, bytesStored: out.stored };
    }
  }
}

