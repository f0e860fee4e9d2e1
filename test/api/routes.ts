/**
 * Every /v2/{project_id} route of the API, with the permission it needs and a valid request, for the
 * isolation matrix and the malformed-request lists. Fixture records (one of each kind, fixed ids) are
 * (re)made in a project by `ensureFixtures`.
 */
import type { Permission } from '../../api/auth.js';
import { Ctx, call, backupBody, clientBody, jobBody } from './helpers.js';

export interface Ids {
  backup: string;
}

export interface RouteCase {
  name: string;
  method: 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE';
  /** path under /v2/{project} */
  path: (ids: Ids) => string;
  permission: Permission;
  body?: () => unknown;
  /** the route takes a JSON body (validated) */
  takesBody: boolean;
  /** a list route (filters, limit/offset) */
  list?: boolean;
}

export const CLIENT = 'iso-node';
export const JOB = 'isojob';
export const ACTION = 'isoact';
export const SESSION = 'isosess';

const r = (name: string, method: RouteCase['method'], path: RouteCase['path'], permission: Permission, body?: () => unknown, extra: Partial<RouteCase> = {}): RouteCase =>
  ({ name, method, path, permission, body, takesBody: body !== undefined || method === 'GET', ...extra });

export const ROUTES: RouteCase[] = [
  r('list backups', 'GET', () => '/backups', 'backups:get_all', undefined, { list: true }),
  r('create backup', 'POST', () => '/backups', 'backups:create', () => backupBody(7)),
  r('get backup', 'GET', (i) => `/backups/${i.backup}`, 'backups:get', undefined, { takesBody: false }),
  r('patch backup', 'PATCH', (i) => `/backups/${i.backup}`, 'backups:update', () => ({ status: 'error' })),
  r('delete backup', 'DELETE', (i) => `/backups/${i.backup}`, 'backups:delete'),
  r('list clients', 'GET', () => '/clients', 'clients:get_all', undefined, { list: true }),
  r('register client', 'POST', () => '/clients', 'clients:create', () => clientBody(CLIENT)),
  r('get client', 'GET', () => `/clients/${CLIENT}`, 'clients:get', undefined, { takesBody: false }),
  r('delete client', 'DELETE', () => `/clients/${CLIENT}`, 'clients:delete'),
  r('list jobs', 'GET', () => '/jobs', 'jobs:get_all', undefined, { list: true }),
  r('create job', 'POST', () => '/jobs', 'jobs:create', () => jobBody(CLIENT)),
  r('get job', 'GET', () => `/jobs/${JOB}`, 'jobs:get', undefined, { takesBody: false }),
  r('patch job', 'PATCH', () => `/jobs/${JOB}`, 'jobs:update', () => ({ job_schedule: { status: 'scheduled', result: '' } })),
  r('replace job', 'POST', () => `/jobs/${JOB}`, 'jobs:create', () => jobBody(CLIENT)),
  r('delete job', 'DELETE', () => `/jobs/${JOB}`, 'jobs:delete'),
  r('job event', 'POST', () => `/jobs/${JOB}/event`, 'jobs:event:create', () => ({ stop: null })),
  r('list actions', 'GET', () => '/actions', 'actions:get_all', undefined, { list: true }),
  r('create action', 'POST', () => '/actions', 'actions:create', () => ({ freezer_action: { action: 'backup' } })),
  r('get action', 'GET', () => `/actions/${ACTION}`, 'actions:get', undefined, { takesBody: false }),
  r('patch action', 'PATCH', () => `/actions/${ACTION}`, 'actions:update', () => ({ mandatory: true })),
  r('replace action', 'POST', () => `/actions/${ACTION}`, 'actions:create', () => ({ freezer_action: { action: 'backup' } })),
  r('delete action', 'DELETE', () => `/actions/${ACTION}`, 'actions:delete'),
  r('list sessions', 'GET', () => '/sessions', 'sessions:get_all', undefined, { list: true }),
  r('create session', 'POST', () => '/sessions', 'sessions:create', () => ({ description: 'x' })),
  r('get session', 'GET', () => `/sessions/${SESSION}`, 'sessions:get', undefined, { takesBody: false }),
  r('patch session', 'PATCH', () => `/sessions/${SESSION}`, 'sessions:update', () => ({ description: 'y' })),
  r('replace session', 'POST', () => `/sessions/${SESSION}`, 'sessions:create', () => ({ description: 'z' })),
  r('delete session', 'DELETE', () => `/sessions/${SESSION}`, 'sessions:delete'),
  r('session action', 'POST', () => `/sessions/${SESSION}/action`, 'sessions:action:create', () => ({ end: { job_id: JOB, current_tag: 0, result: 'success' } })),
  r('attach job', 'PUT', () => `/sessions/${SESSION}/jobs/${JOB}`, 'sessions:job:add'),
  r('detach job', 'DELETE', () => `/sessions/${SESSION}/jobs/${JOB}`, 'sessions:job:remove'),
  r('post run', 'POST', () => `/jobs/${JOB}/runs`, 'runs:create', () => runBody()),
  r('list job runs', 'GET', () => `/jobs/${JOB}/runs`, 'runs:get_all', undefined, { takesBody: false }),
  r('list runs', 'GET', () => '/runs', 'runs:get_all', undefined, { takesBody: false }),
];

/** runBody is a valid run report (floe's runs, api/runs.ts). */
export const runBody = (extra: Record<string, unknown> = {}) => ({
  action: 'backup', result: 'success', exit_code: 0, time_started: 1000, time_ended: 1010, duration: 10,
  bytes_read: 4096, bytes_stored: 1024, rate: 409.6, ...extra,
});

/** ensureFixtures makes (or remakes) one record of each kind in a project; returns the backup id. */
export async function ensureFixtures(c: Ctx, project: string, ids: Partial<Ids> = {}): Promise<Ids> {
  const t = c.tok[project].admin;
  const v2 = `/v2/${project}`;
  const ok = async (method: string, url: string, body?: unknown) => {
    const res = await call(c.app, { method, url, token: t, body });
    if (res.statusCode >= 300) throw new Error(`fixture ${method} ${url}: ${res.statusCode} ${res.body}`);
    return res;
  };
  await ok('POST', `${v2}/clients`, clientBody(CLIENT));
  await ok('POST', `${v2}/jobs/${JOB}`, jobBody(CLIENT));
  await ok('POST', `${v2}/actions/${ACTION}`, { freezer_action: { action: 'backup' } });
  await ok('POST', `${v2}/sessions/${SESSION}`, { description: 'fixture' });
  await ok('PUT', `${v2}/sessions/${SESSION}/jobs/${JOB}`);
  let backup = ids.backup;
  if (!backup || (await call(c.app, { method: 'GET', url: `${v2}/backups/${backup}`, token: t })).statusCode !== 200) {
    backup = (await ok('POST', `${v2}/backups`, backupBody(1))).json().backup_id as string;
  }
  return { backup };
}

/** snapshot is every record of a project, as its admin lists them (to prove nothing changed). */
export async function snapshot(c: Ctx, project: string): Promise<string> {
  const parts: unknown[] = [];
  for (const kind of ['backups', 'clients', 'jobs', 'actions', 'sessions', 'runs']) {
    const res = await call(c.app, { method: 'GET', url: `/v2/${project}/${kind}?limit=1000`, token: c.tok[project].admin });
    parts.push(res.json());
  }
  return JSON.stringify(parts);
}
