/**
 * The real floe API (api/, issue 5) on 127.0.0.1 with a temp SQLite database, for the scheduler's
 * integration suite; and `floe scheduler` processes pointed at it.
 *
 * `stop()` ends the API process (clients get "connection refused") and `restart()` starts it again on
 * the same port and database: the outage a scheduler must live through.
 */
import { spawn, ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { openDatabase } from '../../api/db/client.js';
import { resolveDb } from '../../api/db/url.js';
import { createToken, Role } from '../../api/auth.js';
import { JobStore, JobRecord } from '../../scheduler/store.js';
import { FLOE_BIN } from '../helpers/peers.js';

export type Doc = Record<string, unknown>;

/** freePort asks the OS for a free TCP port on 127.0.0.1. */
async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as AddressInfo).port;
  await new Promise((r) => srv.close(r));
  return port;
}

/**
 * RealApi runs `floe api` as its own process (a restart is a real process restart, as in production),
 * on a fixed port so a scheduler finds it again after a restart.
 */
export class RealApi {
  readonly project = 'proj';
  url = '';
  admin = '';
  #port = 0;
  #proc?: ChildProcess;
  readonly #dir: string;

  constructor(dir: string) {
    this.#dir = dir;
  }

  get #file(): string {
    return join(this.#dir, 'floe.db');
  }

  async start(): Promise<void> {
    this.#port ||= await freePort();
    this.url = `http://127.0.0.1:${this.#port}`;
    const fd = openSync(join(this.#dir, 'api.log'), 'a');
    this.#proc = spawn(process.execPath, [FLOE_BIN, 'api', '--host', '127.0.0.1', '--port', String(this.#port), '--db', this.#file, '--log-level', 'warn'], {
      stdio: ['ignore', fd, fd],
    });
    closeSync(fd);
    const proc = this.#proc;
    for (let i = 0; ; i++) {
      try {
        const r = await fetch(`${this.url}/healthcheck`);
        await r.text();
        if (r.ok) break;
      } catch {
        // not listening yet
      }
      if (proc.exitCode !== null || i > 300) throw new Error(`floe api did not start: ${readFileSync(join(this.#dir, 'api.log'), 'utf8').slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    if (!this.admin) this.admin = await this.token('admin');
  }

  /** token makes a token (an agent token bound to `clientId` when given), through the database. */
  async token(role: Role, clientId?: string): Promise<string> {
    const db = await openDatabase(resolveDb(this.#file), { migrate: false });
    try {
      return (await createToken(db.prisma, { projectId: this.project, role, clientId })).secret;
    } finally {
      await db.close();
    }
  }

  /** tokenFile writes a token to a file (the scheduler never takes it on its command line). */
  async tokenFile(dir: string, clientId: string): Promise<string> {
    const f = join(dir, `token-${clientId}`);
    writeFileSync(f, `${await this.token('agent', clientId)}\n`, { mode: 0o600 });
    return f;
  }

  /** stop ends the API process (SIGTERM): clients get "connection refused" until restart(). */
  async stop(): Promise<void> {
    const p = this.#proc;
    this.#proc = undefined;
    if (!p || p.exitCode !== null) return;
    const gone = new Promise((r) => p.once('exit', r));
    p.kill('SIGTERM');
    await gone;
  }

  async restart(): Promise<void> {
    await this.start();
  }

  async close(): Promise<void> {
    await this.stop();
  }

  /** req calls /v2/{project}{path} as admin. */
  async req(method: string, path: string, body?: unknown): Promise<{ status: number; body: Doc }> {
    const r = await fetch(`${this.url}/v2/${this.project}${path}`, {
      method,
      headers: { 'x-auth-token': this.admin, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await r.text();
    return { status: r.status, body: text ? (JSON.parse(text) as Doc) : {} };
  }

  async ok(method: string, path: string, body?: unknown): Promise<Doc> {
    const r = await this.req(method, path, body);
    if (r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body;
  }

  async job(id: string): Promise<Doc> {
    return this.ok('GET', `/jobs/${id}`);
  }

  async schedule(id: string): Promise<Doc> {
    return (await this.job(id)).job_schedule as Doc;
  }

  /** backupsOf lists the backup documents recorded for a job. */
  async backupsOf(jobId: string): Promise<Doc[]> {
    const q = encodeURIComponent(JSON.stringify([{ job_id: jobId }]));
    return ((await this.ok('GET', `/backups?limit=1000&match=${q}`)).backups as Doc[]).map((b) => b.backup_metadata as Doc);
  }

  /** runsOf lists the run reports recorded for a job (newest first). */
  async runsOf(jobId: string): Promise<Doc[]> {
    return (await this.ok('GET', `/jobs/${encodeURIComponent(jobId)}/runs?limit=1000`)).runs as Doc[];
  }

  async registerClient(clientId: string): Promise<void> {
    await this.ok('POST', '/clients', { client_id: clientId, hostname: clientId.split('_').pop() });
  }
}

export interface SchedulerProcess {
  child: ChildProcess;
  dir: string;
  log: string;
  /** SIGTERM and wait for the exit code */
  stop(): Promise<number | null>;
  /** SIGKILL and wait */
  kill(): Promise<void>;
  records(): JobRecord[];
  logText(): string;
}

/** startScheduler runs `floe scheduler start --no-daemon` in the foreground, polling every second. */
export function startScheduler(o: { dir: string; api: RealApi; clientId: string; tokenFile: string; args?: string[]; env?: NodeJS.ProcessEnv }): SchedulerProcess {
  const log = join(o.dir, '..', `${o.clientId}.log`);
  const fd = openSync(log, 'a');
  const child = spawn(process.execPath, [
    FLOE_BIN, 'scheduler', 'start', '--no-daemon', '-f', o.dir, '-i', '1', '--client-id', o.clientId,
    '--api', o.api.url, '--project', o.api.project, '--token-file', o.tokenFile, '--log-level', 'debug', ...(o.args ?? []),
  ], { stdio: ['ignore', fd, fd], env: { ...process.env, ...o.env } });
  closeSync(fd);
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return {
    child, dir: o.dir, log,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      return exited;
    },
    async kill() {
      child.kill('SIGKILL');
      await exited;
    },
    records: () => new JobStore(o.dir).load(),
    logText: () => readFileSync(log, 'utf8'),
  };
}

const pad = (n: number) => String(n).padStart(2, '0');
/** localDate: Freezer's YYYY-MM-DDThh:mm:ss in local time. */
export function localDate(ms: number): string {
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}
