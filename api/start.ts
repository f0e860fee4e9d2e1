/**
 * `floe start` (`npm start`): the whole service on one machine, no set-up.
 *
 * It makes (once) a home directory, `$FLOE_HOME` or ~/.floe, holding the SQLite database, an admin token
 * for the web UI and an agent token for this node's scheduler (files readable by their owner only: the
 * database keeps only their hashes), then runs the API with the UI on 127.0.0.1:9090 in this process and
 * a scheduler for this node as a child process, and stops both on Ctrl-C. If either dies, both stop (the
 * scheduler sees this process end through an IPC channel, even when it is killed with SIGKILL).
 *
 *   floe start [--host H] [--port P] [--home DIR] [--interval SECONDS]
 */
import { spawn, ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir, hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { UsageError } from '../engine/errors.js';
import { createToken, Role } from './auth.js';
import { openDatabase } from './db/client.js';
import { resolveDb } from './db/url.js';
import { DEFAULT_HOST, DEFAULT_PORT, startServer } from './server.js';
import { NODE_FLAGS, floeEnv } from '../engine/node-flags.js';

/** PROJECT: the project of a one-machine installation. */
export const LOCAL_PROJECT = 'local';

const HELP = `floe start: the API, the web UI and this node's scheduler, on one machine

  floe start [--host H] [--port P] [--home DIR] [--interval SECONDS]

  --host, --port   where the API and UI listen (default ${DEFAULT_HOST}:${DEFAULT_PORT})
  --home DIR       state directory (default $FLOE_HOME, else ~/.floe): floe.db, admin.token, agent.token,
                   scheduler/ (the jobs the scheduler knows)
  --interval S     how often the scheduler polls the API (default 5)
Open the printed address in a browser and sign in with the token in <home>/admin.token.
`;

interface StartOptions { host: string; port: number; home: string; interval: number }

function parse(argv: readonly string[]): StartOptions | undefined {
  const o: StartOptions = {
    host: DEFAULT_HOST, port: DEFAULT_PORT, interval: 5,
    home: resolve(process.env.FLOE_HOME || join(homedir(), '.floe')),
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--help' || a === '-h') return undefined;
    const [name, inline] = a.startsWith('--') ? a.slice(2).split(/=(.*)/s, 2) : [a, undefined];
    const value = () => {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new UsageError(`option --${name} needs a value`);
      return v;
    };
    if (name === 'host') o.host = value();
    else if (name === 'port') o.port = Number(value());
    else if (name === 'home') o.home = resolve(value());
    else if (name === 'interval') o.interval = Number(value());
    else throw new UsageError(`unknown option ${a} for floe start (see floe start --help)`);
  }
  if (!Number.isInteger(o.port) || o.port < 0 || o.port > 65535) throw new UsageError('--port must be 0..65535');
  if (!(o.interval >= 1)) throw new UsageError('--interval must be at least 1 second');
  return o;
}

/** ensureToken returns the path of a token file, making the token the first time. */
async function ensureToken(file: string, make: () => Promise<string>): Promise<string> {
  if (!existsSync(file) || readFileSync(file, 'utf8').trim() === '') {
    writeFileSync(file, `${await make()}\n`, { mode: 0o600 });
  }
  return file;
}

export async function runStart(argv: readonly string[], signal: AbortSignal): Promise<number> {
  const o = parse(argv);
  if (!o) {
    process.stdout.write(HELP);
    return 0;
  }
  mkdirSync(o.home, { recursive: true, mode: 0o700 });
  const target = resolveDb(join(o.home, 'floe.db'));
  const clientId = `${LOCAL_PROJECT}_${hostname()}`;
  // Tokens are made before the server opens the database (one writer at a time on SQLite).
  const db = await openDatabase(target);
  let adminFile: string;
  let agentFile: string;
  try {
    const make = (role: Role, client?: string) => async () =>
      (await createToken(db.prisma, { projectId: LOCAL_PROJECT, role, clientId: client, description: `floe start (${role})` })).secret;
    adminFile = await ensureToken(join(o.home, 'admin.token'), make('admin'));
    agentFile = await ensureToken(join(o.home, 'agent.token'), make('agent', clientId));
  } finally {
    await db.close();
  }

  const server = await startServer({ host: o.host, port: o.port, db: target, logLevel: 'warn' });
  const bin = fileURLToPath(new URL('../../bin/floe.js', import.meta.url));
  const scheduler: ChildProcess = spawn(process.execPath, [
    ...NODE_FLAGS, bin, 'scheduler', 'start', '--no-daemon', '--api', server.url, '--token-file', agentFile,
    '--client-id', clientId, '--jobs-dir', join(o.home, 'scheduler'), '--interval', String(o.interval),
    // The IPC channel is how the scheduler learns that this process is gone, even killed with SIGKILL
    // (engine/cli/main.ts): it then stops too, instead of polling a dead API for ever. Nothing is sent on it.
  ], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], env: floeEnv() });
  process.stdout.write([
    `floe is running: API and web UI at ${server.url}/ui/`,
    `  sign in with the admin token in ${adminFile}`,
    `  this node's scheduler runs as client '${clientId}' (state in ${o.home})`,
    '  Ctrl-C stops everything.',
    '',
  ].join('\n'));

  const schedulerExit = new Promise<number>((res) => scheduler.once('exit', (code, sig) => res(code ?? (sig ? 128 : 1))));
  const stopped = new Promise<'signal'>((res) => {
    if (signal.aborted) res('signal');
    else signal.addEventListener('abort', () => res('signal'), { once: true });
  });
  const why = await Promise.race([schedulerExit.then(() => 'scheduler' as const), stopped]);
  if (why === 'scheduler') process.stderr.write('floe: the scheduler stopped; stopping the API\n');
  if (scheduler.exitCode === null && scheduler.signalCode === null) scheduler.kill('SIGTERM');
  const code = await schedulerExit;
  await server.close();
  return why === 'signal' ? 0 : code || 1;
}
