/**
 * The API's tables and small pure parts: every error code is documented, the two Prisma schemas declare
 * the same models, search terms and filters, the JSON safety checks, database URLs.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { API_ERRORS, ApiError } from '../../api/errors.js';
import { PACKAGE_ROOT } from '../../api/db/migrate.js';
import { MAX_TERMS, indexDocument, likeSafe, termValue } from '../../api/db/terms.js';
import { emptyFilter, parseFilter, whereOf } from '../../api/db/filter.js';
import { unsafeJson } from '../../api/app.js';
import { describeDb, resolveDb } from '../../api/db/url.js';
import { POLICY } from '../../api/auth.js';

test('every FLOE_API_ERR_* code is documented in docs/api-errors.md, with its status', () => {
  const doc = readFileSync(join(PACKAGE_ROOT, 'docs', 'api-errors.md'), 'utf8');
  for (const [code, spec] of Object.entries(API_ERRORS)) {
    const row = doc.split('\n').find((l) => l.startsWith(`| \`${code}\` |`));
    assert.ok(row, `${code} is not in docs/api-errors.md`);
    assert.ok(row.includes(`| ${spec.status} |`), `${code}: status ${spec.status} in docs`);
  }
  const documented = [...doc.matchAll(/`(FLOE_API_ERR_[A-Z_]+)`/g)].map((m) => m[1]);
  for (const code of documented) assert.ok(code in API_ERRORS, `${code} is documented but does not exist`);
  assert.ok(Object.values(API_ERRORS).every((s) => s.status >= 400 && s.status < 600));
});

test('ApiError fills its template and serializes as freezer-api does', () => {
  const e = new ApiError('FLOE_API_ERR_NOT_FOUND', 'job', 'j1');
  assert.is(e.statusCode, 404);
  assert.equal(e.body(), { title: 'Not Found', description: 'job j1 not found', code: 'FLOE_API_ERR_NOT_FOUND' });
});

test('schema.prisma and schema.postgres.prisma declare the same models', () => {
  const models = (f: string) => readFileSync(join(PACKAGE_ROOT, 'prisma', f), 'utf8').split(/^generator client/m)[1]
    .replace(/output\s*=.*\n/, '').replace(/provider\s*=\s*"(sqlite|postgresql)"/, '');
  assert.fixture(models('schema.postgres.prisma'), models('schema.prisma'));
});

test('every policy rule names roles that exist', () => {
  for (const roles of Object.values(POLICY)) for (const r of roles) assert.ok(['admin', 'member', 'reader', 'agent'].includes(r));
});

test('indexDocument: keys anywhere, scalars and lists of scalars, lowercased text', () => {
  const { terms, search } = indexDocument({
    client_id: 'N1', job_schedule: { status: 'completed' }, tags: ['a', 'b'],
    job_actions: [{ freezer_action: { backup_name: 'etc', level: 2 } }, { freezer_action: { backup_name: 'var' } }],
    pct: '50%_x',
  });
  const has = (key: string, v: unknown) => terms.some((t) => t.key === key && t.value === termValue(v));
  assert.ok(has('client_id', 'N1'));
  assert.ok(has('status', 'completed'));
  assert.ok(has('backup_name', 'etc') && has('backup_name', 'var'));
  assert.ok(has('level', 2) && !has('level', '2'));
  assert.ok(has('tags', ['a', 'b']));
  assert.ok(!terms.some((t) => t.key === 'job_schedule'), 'objects are not values');
  assert.match(search, 'n1');
  assert.match(search, likeSafe('50%_x'));
  assert.not.match(search, '%');
  assert.is(termValue('x'.repeat(500)).length, 'sha256:'.length + 64);
  const big: Record<string, number> = {};
  for (let i = 0; i <= MAX_TERMS; i++) big[`k${i}`] = i;
  assert.throws(() => indexDocument(big), /2000/);
});

test('filters: lists, single objects, _all text and Freezer\'s JSON _all', () => {
  const f = parseFilter([{ a: 1 }, { _all: 'Some Text' }], { b: 'x' }, emptyFilter());
  assert.equal(f.match, [['a', 1]]);
  assert.equal(f.matchNot, [['b', 'x']]);
  assert.equal(f.text, ['some text']);
  const g = parseFilter([{ _all: '[{"client_id": "n"}]' }], undefined, emptyFilter());
  assert.equal(g.match, [['client_id', 'n']]);
  assert.equal(whereOf('p', emptyFilter()), { projectId: 'p' });
  assert.throws(() => parseFilter('x', undefined, emptyFilter()), /list/);
});

test('unsafeJson: depth, __proto__, NUL; strings do not count as nesting', () => {
  assert.is(unsafeJson('{"a": [1, {"b": "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["}]}'), undefined);
  assert.match(unsafeJson('['.repeat(33) + ']'.repeat(33)) ?? '', 'deeper');
  assert.match(unsafeJson('{"__proto__": 1}') ?? '', '__proto__');
  assert.match(unsafeJson('{"a": "x\\u0000"}') ?? '', 'NUL');
  assert.is(unsafeJson('{"a": "x\\\\u0000"}'), undefined, 'an escaped backslash then u0000 is no NUL');
});

test('resolveDb: option, DATABASE_URL, FLOE_HOME; passwords never described', () => {
  assert.equal(resolveDb(undefined, { FLOE_HOME: '/data/floe' }), { kind: 'sqlite', file: '/data/floe/floe.db', url: 'file:/data/floe/floe.db' });
  assert.is(resolveDb('file:/x/y.db', {}).kind, 'sqlite');
  const pg = resolveDb(undefined, { DATABASE_URL: 'postgres://u:secret@db:5432/floe' });
  assert.is(pg.kind, 'postgres');
  assert.is(describeDb(pg), 'postgres u@db:5432/floe');
  assert.throws(() => resolveDb('mysql://x/y', {}), /unsupported/);
});

test.run();
