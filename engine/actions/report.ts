/**
 * Reporting a backup to the API: after a successful backup with `--api URL`, the agent's result
 * document (its real level, sizes, duration and encryption flag) is posted to
 * `POST {api}/v2/{project}/backups`, as Freezer's scheduler does with the agent's --metadata-out.
 *
 * The token: `--token-file FILE` (first line), else the FLOE_TOKEN environment variable, else `--token`
 * (accepted as the issue and Freezer's habits ask, with a warning: process arguments are visible to
 * every user in `ps`). It is never printed, logged or put in the document.
 * The project: from the URL when it ends in `/v2/{project}`, else asked from the API (`GET /auth/token`,
 * which names the token's project).
 *
 * A failure to report does not undo the backup, which is safe in storage: by default it is a warning
 * and the exit code stays 0; with `--api-required` it fails the command (FLOE_ERR_API, exit code 1).
 * Transient failures (network, 5xx, 429) are retried (DEFAULT_RETRY).
 */
import { readFile } from 'node:fs/promises';
import { ExitCode, FloeError, UsageError, errnoMessage } from '../errors.js';

export interface ApiReportOptions {
  api?: string;
  token?: string;
  token_file?: string;
  api_required?: boolean;
}

/** Where warnings go (the CLI's Output). */
export interface Warn {
  warn(message: string): void;
}

export class ApiReportError extends FloeError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('FLOE_ERR_API', message, ExitCode.FAILURE, options);
  }
}

/** Retry: attempts and the pauses between them. */
export interface Retry {
  attempts: number;
  backoffMs: number[];
}

/** DEFAULT_RETRY: 4 attempts over about 6 s, so an API restarting does not lose the report. */
export const DEFAULT_RETRY: Retry = { attempts: 4, backoffMs: [500, 1500, 4000] };
/** REQUEST_TIMEOUT_MS bounds each request. */
const REQUEST_TIMEOUT_MS = 15_000;

/** resolveToken finds the token (file, env, option); warns when it came from the command line. */
export async function resolveToken(o: ApiReportOptions, out: Warn, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  if (o.token_file) {
    let text: string;
    try {
      text = await readFile(o.token_file, 'utf8');
    } catch (err) {
      throw new UsageError(`cannot read --token-file ${o.token_file}: ${errnoMessage(err)}`);
    }
    const line = text.split(/\r?\n/)[0].trim();
    if (!line) throw new UsageError(`--token-file ${o.token_file} is empty`);
    return line;
  }
  if (env.FLOE_TOKEN) return env.FLOE_TOKEN.trim();
  if (o.token) {
    out.warn('--token is visible to other users of this machine (ps): prefer --token-file FILE or FLOE_TOKEN');
    return o.token;
  }
  throw new UsageError('--api needs a token: --token-file FILE, or the FLOE_TOKEN environment variable');
}

/**
 * prepareReport checks the API options before the backup runs (a typo or a missing token must not cost
 * a whole backup) and returns the token, or undefined when there is nothing to report to.
 */
export async function prepareReport(o: ApiReportOptions, out: Warn): Promise<string | undefined> {
  if (!o.api) {
    if (o.api_required) throw new UsageError('--api-required needs --api URL');
    return undefined;
  }
  let u: URL;
  try {
    u = new URL(o.api);
  } catch {
    throw new UsageError(`--api must be a URL such as http://127.0.0.1:9090, got '${o.api}'`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new UsageError(`--api must be an http or https URL, got '${o.api}'`);
  return resolveToken(o, out);
}

/**
 * reportBackup posts the result document; returns the new backup_id, or undefined when it could not
 * (after a warning) unless --api-required, which throws ApiReportError.
 */
export async function reportBackup(
  o: ApiReportOptions, token: string, document: Record<string, unknown>, out: Warn, retry: Retry = DEFAULT_RETRY,
): Promise<string | undefined> {
  if (!o.api) return undefined;
  try {
    const { base, project } = await locate(o.api, token, retry);
    const r = await send('POST', `${base}/v2/${encodeURIComponent(project)}/backups`, token, retry, document);
    return String((r as { backup_id?: unknown }).backup_id ?? '');
  } catch (err) {
    const message = `the backup is stored, but reporting it to ${safeUrl(o.api)} failed: ${(err as Error).message}`;
    if (o.api_required) throw new ApiReportError(message, { cause: err });
    out.warn(message);
    return undefined;
  }
}

/** locate splits `--api` into the server's base URL and the project (from the URL or the token). */
async function locate(api: string, token: string, retry: Retry): Promise<{ base: string; project: string }> {
  const u = new URL(api);
  const m = /^(.*?)\/v2\/([A-Za-z0-9_-]+)\/?$/.exec(u.pathname);
  if (m) return { base: `${u.origin}${m[1]}`, project: m[2] };
  const base = `${u.origin}${u.pathname.replace(/\/+$/, '')}`;
  const who = (await send('GET', `${base}/auth/token`, token, retry)) as { project_id?: unknown };
  if (typeof who.project_id !== 'string') throw new Error('the API did not name the token\'s project');
  return { base, project: who.project_id };
}

async function send(method: string, url: string, token: string, retry: Retry, body?: unknown): Promise<unknown> {
  let last: Error = new Error('no attempt');
  for (let attempt = 0; attempt < retry.attempts; attempt++) {
    if (attempt > 0) await new Promise((r) => setTimeout(r, retry.backoffMs[Math.min(attempt - 1, retry.backoffMs.length - 1)]));
    let res: Response;
    try {
      res = await fetch(url, {
        method,
        headers: { 'x-auth-token': token, 'content-type': 'application/json', accept: 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
    } catch (err) {
      last = new Error(`cannot reach the API (${(err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message})`);
      continue;
    }
    const text = await res.text();
    if (res.ok) return text ? JSON.parse(text) : {};
    const description = describe(text);
    last = new Error(`${method} ${new URL(url).pathname}: HTTP ${res.status}${description ? ` (${description})` : ''}`);
    if (res.status < 500 && res.status !== 429) break; // the request itself is wrong: retrying will not help
  }
  throw last;
}

function describe(text: string): string {
  try {
    const j = JSON.parse(text) as { description?: unknown; code?: unknown };
    return [j.code, j.description].filter((x) => typeof x === 'string').join(': ');
  } catch {
    return text.slice(0, 200);
  }
}

/** safeUrl drops any user:password from a URL before it is shown. */
function safeUrl(api: string): string {
  try {
    const u = new URL(api);
    u.username = '';
    u.password = '';
    return u.toString();
  } catch {
    return 'the API';
  }
}
