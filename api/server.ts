/**
 * The API server: opens (creates, migrates) the database, builds the app and listens until the signal
 * aborts, then stops taking requests, lets the running ones finish and closes the database.
 *
 * Logs are JSON lines (pino) on stderr: method, URL, status and timing, never headers (so never a token)
 * and never a database password (api/db/url.ts describeDb).
 */
import type { FastifyInstance } from 'fastify';
import { buildApp } from './app.js';
import { openDatabase } from './db/client.js';
import { DbTarget, describeDb } from './db/url.js';

export const DEFAULT_HOST = '127.0.0.1';
/** DEFAULT_PORT: freezer-api's. */
export const DEFAULT_PORT = 9090;

export interface ServerOptions {
  host?: string;
  port?: number;
  db: DbTarget;
  /** pino level: fatal, error, warn, info (default), debug, trace, silent */
  logLevel?: string;
  /** PostgreSQL pool size */
  poolSize?: number;
}

export interface RunningServer {
  app: FastifyInstance;
  /** http://host:port */
  url: string;
  close(): Promise<void>;
}

/** startServer opens the database and listens; the caller closes it. */
export async function startServer(o: ServerOptions): Promise<RunningServer> {
  const db = await openDatabase(o.db, { poolSize: o.poolSize });
  let app: FastifyInstance;
  try {
    app = await buildApp({
      db,
      logger: o.logLevel === 'silent' ? false : { level: o.logLevel ?? 'info', stream: process.stderr },
    });
    await app.listen({ host: o.host ?? DEFAULT_HOST, port: o.port ?? DEFAULT_PORT });
  } catch (err) {
    await db.close();
    throw err;
  }
  const addr = app.server.address();
  const url = typeof addr === 'object' && addr ? `http://${addr.family === 'IPv6' ? `[${addr.address}]` : addr.address}:${addr.port}` : String(addr);
  app.log.info({ db: describeDb(o.db), migrations: db.applied }, `floe api listening on ${url}`);
  return {
    app, url,
    async close() {
      await app.close();
      await db.close();
    },
  };
}

/** serve runs the server until `signal` aborts. */
export async function serve(o: ServerOptions, signal: AbortSignal, onListening?: (url: string) => void): Promise<void> {
  const s = await startServer(o);
  onListening?.(s.url);
  await new Promise<void>((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener('abort', () => resolve(), { once: true });
  });
  await s.close();
}
