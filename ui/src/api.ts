/**
 * The API client of the UI: every request carries the session's token in X-Auth-Token (never in a URL).
 * The token lives in sessionStorage only: closing the tab forgets it.
 *
 * Errors: the API answers {title, description, code}; ApiError keeps them, plus `field`, the dotted
 * path of the body field a validation message names ("body/job_schedule/schedule_interval must match"
 * -> "job_schedule.schedule_interval"), so forms show the message next to that field.
 */
export interface Session { token: string; project: string; role: string }

const KEY = 'floe.session';

export function loadSession(): Session | null {
  try {
    const s = sessionStorage.getItem(KEY);
    return s ? (JSON.parse(s) as Session) : null;
  } catch {
    return null;
  }
}

export function saveSession(s: Session | null): void {
  if (s) sessionStorage.setItem(KEY, JSON.stringify(s));
  else sessionStorage.removeItem(KEY);
}

export class ApiError extends Error {
  constructor(public status: number, public title: string, public description: string, public code: string, public field?: string) {
    super(description || title);
  }
}

/** fieldOf finds the body field a validation message names, as a dotted path (array indexes kept). */
export function fieldOf(description: string): string | undefined {
  const m = /^body\/(\S+)/.exec(description);
  if (m) return m[1].replace(/\//g, '.');
  const extra = /\('([\w-]+)'\)/.exec(description);
  return extra ? extra[1] : undefined;
}

export async function call<T = any>(s: Session | { token: string; project?: string }, method: string, path: string, body?: unknown): Promise<T> {
  const url = path.startsWith('/v2') || path.startsWith('/auth') ? path : `/v2/${s.project}${path}`;
  const headers: Record<string, string> = { 'X-Auth-Token': s.token, Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let res: Response;
  try {
    res = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch {
    throw new ApiError(0, 'Network error', 'the API cannot be reached', 'NETWORK');
  }
  const text = await res.text();
  let doc: any = undefined;
  try { doc = text ? JSON.parse(text) : undefined; } catch { /* not JSON */ }
  if (!res.ok) {
    const d = doc ?? {};
    const description = String(d.description ?? text ?? res.statusText);
    throw new ApiError(res.status, String(d.title ?? res.statusText), description, String(d.code ?? ''), fieldOf(description));
  }
  return doc as T;
}

/** signIn checks a token with GET /auth/token and returns its session. */
export async function signIn(token: string): Promise<Session> {
  try {
    const who = await call<{ project_id: string; role: string }>({ token }, 'GET', '/auth/token');
    return { token, project: who.project_id, role: who.role };
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      throw new ApiError(401, 'Unauthorized', 'This token is not valid: it is unknown, revoked or mistyped.', err.code, 'token');
    }
    throw err;
  }
}

export function list<T = any>(s: Session, kind: string, params: Record<string, string | number> = {}): Promise<T[]> {
  const q = new URLSearchParams({ limit: '1000', ...Object.fromEntries(Object.entries(params).map(([k, v]) => [k, String(v)])) });
  return call<Record<string, T[]>>(s, 'GET', `/${kind}?${q}`).then((r) => r[kind] ?? []);
}
