/**
 * Bad input: for every route, a list of malformed requests (broken JSON, wrong types, unknown keys where
 * freezer-api forbids them, oversized and over-deep bodies, bad ids, bad list parameters). Each must get
 * a 4xx with an error document (code, clear description, no stack trace), never a 5xx; and the server
 * must still answer afterwards.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { call, dbSuites, jobBody } from './helpers.js';
import { ROUTES, RouteCase, ensureFixtures, JOB, runBody } from './routes.js';
import { DEFAULT_BODY_LIMIT } from '../../api/app.js';

interface Bad {
  what: string;
  raw?: string;
  body?: unknown;
  query?: string;
  headers?: Record<string, string>;
  /** replace the path (bad ids) */
  path?: string;
}

/** Every route that takes a body gets these. */
function bodyCases(): Bad[] {
  return [
    { what: 'truncated JSON', raw: '{"a":' },
    { what: 'not JSON', raw: 'hello' },
    { what: 'a trailing comma', raw: '{"a": 1,}' },
    { what: 'an array', raw: '[]' },
    { what: 'a string', raw: '"x"' },
    { what: 'a number', raw: '42' },
    { what: 'null', raw: 'null' },
    { what: 'text/plain', raw: '{}', headers: { 'content-type': 'text/plain' } },
    { what: 'form data', raw: 'a=1', headers: { 'content-type': 'application/x-www-form-urlencoded' } },
    { what: 'over the size limit', raw: JSON.stringify({ description: 'x'.repeat(DEFAULT_BODY_LIMIT) }) },
    { what: 'nested 40 deep', raw: `${'{"a":'.repeat(40)}1${'}'.repeat(40)}` },
    { what: 'a __proto__ key', raw: '{"__proto__": {"admin": true}, "description": "x"}' },
    { what: 'a NUL character', raw: '{"description": "a\\u0000b", "freezer_action": {}, "client_id": "x\\u0000"}' },
  ];
}

/** Every list route gets these. */
function listCases(withTime: boolean): Bad[] {
  const cases: Bad[] = [
    { what: 'limit=0', query: 'limit=0' },
    { what: 'limit=abc', query: 'limit=abc' },
    { what: 'limit too large', query: 'limit=100000' },
    { what: 'offset=-1', query: 'offset=-1' },
    { what: 'two limits', query: 'limit=1&limit=2' },
    { what: 'match not JSON', query: 'match=client_id:x' },
    { what: 'match a number list', query: `match=${encodeURIComponent('[1]')}` },
    { what: 'match with NUL', query: `match=${encodeURIComponent('[{"a":"\\u0000"}]')}` },
    { what: 'body match a string', body: { match: 'x' } },
    { what: 'body match of numbers', body: { match: [1, 2] } },
    { what: 'body unknown key', body: { search: [{ a: 1 }] } },
    { what: 'empty match object', body: { match: [{}] } },
    { what: 'too many conditions', body: { match: Array.from({ length: 40 }, (_, i) => ({ [`k${i}`]: i })) } },
    { what: '_all not a string', body: { match: [{ _all: 5 }] } },
    { what: '_all too long', body: { match: [{ _all: 'x'.repeat(1000) }] } },
  ];
  if (withTime) {
    cases.push({ what: 'time_after a word', query: 'time_after=yesterday' }, { what: 'time_before a bad date', query: 'time_before=2024-13-45T00:00:00' },
      { what: 'body time_after a word', body: { time_after: 'soon' } });
  } else {
    cases.push({ what: 'time filter where there is none', body: { time_after: 5 } });
  }
  return cases;
}

/** What each route specifically refuses. */
const SPECIFIC: Record<string, Bad[]> = {
  'create backup': [
    { what: 'no container', body: { hostname: 'h', backup_name: 'b' } },
    { what: 'empty backup_name', body: { container: 'c', hostname: 'h', backup_name: '' } },
    { what: 'container a number', body: { container: 5, hostname: 'h', backup_name: 'b' } },
    { what: 'time_stamp a string', body: { container: 'c', hostname: 'h', backup_name: 'b', time_stamp: '10' } },
    { what: 'time_stamp negative', body: { container: 'c', hostname: 'h', backup_name: 'b', time_stamp: -1 } },
    { what: 'time_stamp beyond range', body: { container: 'c', hostname: 'h', backup_name: 'b', time_stamp: 1e20 } },
    { what: 'status unknown', body: { container: 'c', hostname: 'h', backup_name: 'b', status: 'great' } },
    { what: 'job_id with a space', body: { container: 'c', hostname: 'h', backup_name: 'b', job_id: 'a b' } },
  ],
  'patch backup': [
    { what: 'empty patch', body: {} },
    { what: 'status a number', body: { status: 5 } },
    { what: 'metadata a string', body: { backup_metadata: 'x' } },
    { what: 'unknown key', body: { owner: 'me' } },
    { what: 'empty container', body: { backup_metadata: { container: '' } } },
  ],
  'register client': [
    { what: 'no client_id', body: { hostname: 'h' } },
    { what: 'client_id with a space', body: { client_id: 'bad id' } },
    { what: 'client_id a number', body: { client_id: 5 } },
    { what: 'hostname not a host', body: { client_id: 'n', hostname: 'not a host!' } },
    { what: 'supported_actions a string', body: { client_id: 'n', supported_actions: 'backup' } },
    { what: 'is_central a string', body: { client_id: 'n', is_central: 'yes' } },
  ],
  'create job': [
    { what: 'empty', body: {} },
    { what: 'no client', body: { job_actions: [] } },
    { what: 'job_actions an object', body: { client_id: 'n', job_actions: {} } },
    { what: 'an action without freezer_action', body: { client_id: 'n', job_actions: [{ max_retries: 1 }] } },
    { what: 'an action name with a space', body: { client_id: 'n', job_actions: [{ freezer_action: { action: 'back up' } }] } },
    { what: 'max_retries a string', body: { client_id: 'n', job_actions: [{ freezer_action: {}, max_retries: '3' }] } },
    { what: 'unknown top-level key', body: { ...jobBody('n'), owner: 'me' } },
    { what: 'unknown job_schedule key', body: jobBody('n', { job_schedule: { when: 'now' } }) },
    { what: 'bad schedule_interval', body: jobBody('n', { job_schedule: { schedule_interval: 'soon' } }) },
    { what: 'bad schedule_date', body: jobBody('n', { job_schedule: { schedule_date: '2024-02-30 10:00' } }) },
    { what: 'bad status', body: jobBody('n', { job_schedule: { status: 'happy' } }) },
    { what: 'job_id with a slash', body: jobBody('n', { job_id: 'a/b' }) },
    { what: 'session_tag a string', body: jobBody('n', { session_tag: '1' }) },
  ],
  'patch job': [
    { what: 'unknown job_schedule key', body: { job_schedule: { bogus: 1 } } },
    { what: 'unknown key', body: { owner: 'me' } },
    { what: 'current_pid a string', body: { job_schedule: { current_pid: '12' } } },
    { what: 'client_id not a client id', body: { client_id: '!!' } },
  ],
  'job event': [
    { what: 'no event', body: {} },
    { what: 'two events', body: { start: null, stop: null } },
    { what: 'unknown event', body: { explode: null } },
  ],
  'create action': [
    { what: 'no freezer_action', body: { max_retries: 1 } },
    { what: 'freezer_action a string', body: { freezer_action: 'backup' } },
    { what: 'max_retries negative', body: { freezer_action: {}, max_retries: -1 } },
    { what: 'mandatory a string', body: { freezer_action: {}, mandatory: 'yes' } },
    { what: 'action_id with a space', body: { freezer_action: {}, action_id: 'a b' } },
  ],
  'patch action': [
    { what: 'max_retries a string', body: { max_retries: 'x' } },
    { what: 'mode with a space', body: { freezer_action: { mode: 'f s' } } },
  ],
  'create session': [
    { what: 'hold_off negative', body: { hold_off: -1 } },
    { what: 'unknown schedule key', body: { schedule: { when: 'now' } } },
    { what: 'jobs a list', body: { jobs: [] } },
    { what: 'session_tag a string', body: { session_tag: 'one' } },
  ],
  'session action': [
    { what: 'no action', body: {} },
    { what: 'unknown action', body: { dance: {} } },
    { what: 'start without a tag', body: { start: { job_id: JOB } } },
    { what: 'current_tag a string', body: { start: { job_id: JOB, current_tag: '0' } } },
    { what: 'end without a result', body: { end: { job_id: JOB } } },
    { what: 'end with a bad result', body: { end: { job_id: JOB, result: 'meh' } } },
    { what: 'job not in the session', body: { start: { job_id: 'stranger', current_tag: 0 } } },
    { what: 'tag too high', body: { start: { job_id: JOB, current_tag: 99 } } },
  ],
  'post run': [
    { what: 'no body', body: undefined },
    { what: 'empty', body: {} },
    { what: 'unknown key', body: runBody({ speed: 1 }) },
    { what: 'unknown action', body: runBody({ action: 'dance' }) },
    { what: 'bad result', body: runBody({ result: 'ok' }) },
    { what: 'exit_code 256', body: runBody({ exit_code: 256 }) },
    { what: 'exit_code a string', body: runBody({ exit_code: '0' }) },
    { what: 'bytes_read negative', body: runBody({ bytes_read: -1 }) },
    { what: 'bytes_stored fractional', body: runBody({ bytes_stored: 1.5 }) },
    { what: 'rate a string', body: runBody({ rate: 'fast' }) },
    { what: 'ended before it started', body: runBody({ time_started: 20, time_ended: 10 }) },
    { what: 'run_id with a space', body: runBody({ run_id: 'a b' }) },
    { what: 'log too long', body: runBody({ log: 'x'.repeat(20_000) }) },
    { what: 'missing duration', body: { ...runBody(), duration: undefined } },
    { what: 'unknown job', body: runBody(), path: `/jobs/nosuchjob/runs` },
  ],
  'list job runs': runListCases(),
  'list runs': [...runListCases(), { what: 'job_id with a space', query: 'job_id=a%20b' }],
};

function runListCases(): Bad[] {
  return [
    { what: 'limit=0', query: 'limit=0' },
    { what: 'limit too large', query: 'limit=100000' },
    { what: 'offset=-1', query: 'offset=-1' },
    { what: 'unknown result', query: 'result=ok' },
    { what: 'unknown action', query: 'action=dance' },
    { what: 'time_after not a time', query: 'time_after=yesterday' },
  ];
}

/** Routes with an id in their path get bad ids. */
function idCases(route: RouteCase, path: string): Bad[] {
  const segments = path.split('/');
  if (segments.length < 3) return [];
  const at = segments.length - (path.endsWith('/event') || path.endsWith('/action') || path.endsWith('/runs') ? 2 : 1);
  const replace = (v: string) => segments.map((s, i) => (i === at ? v : s)).join('/');
  return [
    { what: 'id with a space', path: replace('bad%20id') },
    { what: 'id with a quote', path: replace('a%22b') },
    { what: 'id of 300 characters', path: replace('x'.repeat(300)) },
    { what: 'id with a NUL', path: replace('a%00b') },
    { what: 'broken escape', path: replace('%zz') },
  ].map((b) => ({ ...b, body: route.body?.() }));
}

dbSuites('malformed', 'api bad input', (s) => {
  s('every route refuses its malformed requests with a 4xx error document', async ({ c }) => {
    const ids = await ensureFixtures(c, c.p1);
    const token = c.tok[c.p1].admin;
    let count = 0;
    for (const route of ROUTES) {
      const path = route.path(ids);
      const cases: Bad[] = [...idCases(route, path), ...(SPECIFIC[route.name] ?? [])];
      if (route.takesBody || route.body) cases.push(...bodyCases());
      if (route.list) cases.push(...listCases(route.name === 'list backups'));
      for (const b of cases) {
        const url = `/v2/${c.p1}${b.path ?? path}${b.query ? `?${b.query}` : ''}`;
        const res = await call(c.app, { method: route.method, url, token, body: b.body, raw: b.raw, headers: b.headers });
        const what = `${route.name}, ${b.what}: ${res.statusCode} ${res.body.slice(0, 200)}`;
        assert.ok(res.statusCode >= 400 && res.statusCode < 500, what);
        const err = res.json();
        assert.match(err.code, /^FLOE_API_ERR_[A-Z_]+$/, what);
        assert.ok(typeof err.description === 'string' && err.description.length > 0, what);
        assert.not.match(res.body, /\n\s+at |node_modules|\.js:\d+/, `no stack trace: ${what}`);
        count++;
      }
    }
    assert.ok(count > 300, `${count} malformed requests`);
    assert.is((await call(c.app, { method: 'GET', url: '/healthcheck' })).statusCode, 200, 'still up');
  });

  s('unknown routes and methods: 404 documents', async ({ c }) => {
    for (const [method, url] of [['GET', '/v3/'], ['GET', `/v2/${c.p1}/widgets`], ['PUT', `/v2/${c.p1}/jobs`], ['GET', `/v2/${c.p1}`]]) {
      const res = await call(c.app, { method, url, token: c.tok[c.p1].admin });
      assert.is(res.statusCode, 404, `${method} ${url}`);
      assert.is(res.json().code, 'FLOE_API_ERR_NO_ROUTE');
    }
  });
});

test.run();
