/**
 * Level model, table-driven: parent choice (max-level wrap, always-level repeats, restart-always-level,
 * broken chains), restore picking (latest, from a date, repeated levels, missing level), retention.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chainsToRemove, chooseParent, chooseRestore, type LevelOptions } from '../../engine/chain/index.js';
import type { BackupId } from '../../engine/storage/layout.js';
import { IntegrityError, NotFoundError } from '../../engine/errors.js';

/** b('100/0_100') -> a BackupId of chain 100, level 0, time 100. */
function b(spec: string): BackupId {
  const m = /^(\d+)\/(\d+)_(\d+)$/.exec(spec);
  if (!m) throw new Error(`bad spec ${spec}`);
  return { engine: 'tar', hbn: 'h_n', t0: Number(m[1]), level: Number(m[2]), t: Number(m[3]) };
}
const bs = (s: string) => (s.trim() ? s.trim().split(/\s+/).map(b) : []);
const spec = (x: BackupId | undefined) => (x ? `${x.t0}/${x.level}_${x.t}` : 'full');
const DAY = 86400;

const parentCases: Array<[string, string, LevelOptions, number, string]> = [
  // name, existing backups, options, now, expected parent ("full" = new chain)
  ['no backups', '', { incremental: true }, 1000, 'full'],
  ['not incremental', '100/0_100', { incremental: false }, 1000, 'full'],
  ['extends the highest level', '100/0_100 100/1_200', { incremental: true }, 1000, '100/1_200'],
  ['latest chain only', '100/0_100 100/1_200 300/0_300', { incremental: true }, 1000, '300/0_300'],
  ['max level 2 reached: wrap', '100/0_100 100/1_200 100/2_300', { incremental: true, maxLevel: 2 }, 1000, 'full'],
  ['max level 2 not reached', '100/0_100 100/1_200', { incremental: true, maxLevel: 2 }, 1000, '100/1_200'],
  ['max level 1: level 1 next', '100/0_100', { incremental: true, maxLevel: 1 }, 1000, '100/0_100'],
  ['max level 1 reached', '100/0_100 100/1_200', { incremental: true, maxLevel: 1 }, 1000, 'full'],
  ['always level 1: parent is level 0', '100/0_100 100/1_200', { incremental: true, alwaysLevel: 1 }, 1000, '100/0_100'],
  ['always level 1, repeated: still level 0', '100/0_100 100/1_200 100/1_300', { incremental: true, alwaysLevel: 1 }, 1000, '100/0_100'],
  ['always level 2 repeated: newest level 1', '100/0_100 100/1_150 100/2_200 100/2_300', { incremental: true, alwaysLevel: 2 }, 1000, '100/1_150'],
  ['always level 2, below it: climb', '100/0_100', { incremental: true, alwaysLevel: 2 }, 1000, '100/0_100'],
  ['past the always level: full', '100/0_100 100/1_200 100/2_300', { incremental: true, alwaysLevel: 1 }, 1000, 'full'],
  ['restart always level expired (from the highest level)', `100/0_100 100/1_${2 * DAY}`, { incremental: true, alwaysLevel: 1, restartAlwaysLevel: 1 }, 3 * DAY + 1, 'full'],
  ['restart always level not expired', `100/0_100 100/1_${2 * DAY}`, { incremental: true, alwaysLevel: 1, restartAlwaysLevel: 1 }, 3 * DAY, '100/0_100'],
  ['restart without always level (Freezer applies it)', '100/0_100', { incremental: true, restartAlwaysLevel: 1 }, 100 + DAY + 1, 'full'],
  ['broken chain (level 1 missing): full', '100/0_100 100/2_300', { incremental: true }, 1000, 'full'],
  ['chain without level 0: full', '100/1_200', { incremental: true }, 1000, 'full'],
  ['same level twice without always level: newest', '100/0_100 100/1_200 100/1_300', { incremental: true }, 1000, '100/1_300'],
];

test('chooseParent', () => {
  for (const [name, existing, o, now, want] of parentCases) {
    assert.is(spec(chooseParent(bs(existing), o, now)), want, name);
  }
});

test('chooseParent: input order does not matter', () => {
  const list = bs('100/0_100 100/1_150 100/2_200 100/2_300');
  assert.is(spec(chooseParent([...list].reverse(), { incremental: true, alwaysLevel: 2 }, 1000)), '100/1_150');
});

test('max-level wrap over a sequence of backups (levels 0..N, as Freezer)', () => {
  const have: BackupId[] = [];
  const levels: string[] = [];
  for (let t = 100; t <= 700; t += 100) {
    const p = chooseParent(have, { incremental: true, maxLevel: 2 }, t);
    const next: BackupId = p ? { ...p, level: p.level + 1, t } : { engine: 'tar', hbn: 'h_n', t0: t, level: 0, t };
    have.push(next);
    levels.push(spec(next));
  }
  assert.equal(levels, ['100/0_100', '100/1_200', '100/2_300', '400/0_400', '400/1_500', '400/2_600', '700/0_700']);
});

const restoreCases: Array<[string, string, number | undefined, string]> = [
  // name, backups, date, expected chain
  ['latest, full chain', '100/0_100 100/1_200 100/2_300', undefined, '100/0_100 100/1_200 100/2_300'],
  ['latest chain wins', '100/0_100 100/1_200 400/0_400', undefined, '400/0_400'],
  ['date at level 0 time: level 0 only', '100/0_100 100/1_200 100/2_300', 100, '100/0_100'],
  ['date between levels', '100/0_100 100/1_200 100/2_300', 250, '100/0_100 100/1_200'],
  ['date picks the older chain', '100/0_100 100/1_200 400/0_400 400/1_500', 399, '100/0_100 100/1_200'],
  ['date after everything', '100/0_100 100/1_200', 10_000, '100/0_100 100/1_200'],
  ['always level 1: newest level 1 <= date', '100/0_100 100/1_200 100/1_300 100/1_400', 350, '100/0_100 100/1_300'],
  ['always level 1: latest', '100/0_100 100/1_200 100/1_300 100/1_400', undefined, '100/0_100 100/1_400'],
  ['always level 2: newest 2 on its level 1', '100/0_100 100/1_150 100/2_200 100/2_300', undefined, '100/0_100 100/1_150 100/2_300'],
  ['always level 2, date', '100/0_100 100/1_150 100/2_200 100/2_300', 250, '100/0_100 100/1_150 100/2_200'],
];

test('chooseRestore', () => {
  for (const [name, backups, date, want] of restoreCases) {
    assert.is(chooseRestore(bs(backups), date).map(spec).join(' '), want, name);
    assert.is(chooseRestore(bs(backups).reverse(), date).map(spec).join(' '), want, `${name} (reversed input)`);
  }
});

test('chooseRestore: nothing old enough is NotFound; a missing level is an IntegrityError', () => {
  assert.throws(() => chooseRestore([]), (e: unknown) => e instanceof NotFoundError);
  assert.throws(() => chooseRestore(bs('100/0_100'), 99), (e: unknown) => e instanceof NotFoundError);
  let err: unknown;
  try {
    chooseRestore(bs('100/0_100 100/2_300'));
  } catch (e) {
    err = e;
  }
  assert.instance(err, IntegrityError);
  assert.match((err as Error).message, 'level 1 is missing');
  // The missing level is not needed for a date before it.
  assert.is(chooseRestore(bs('100/0_100 100/2_300'), 200).map(spec).join(' '), '100/0_100');
  assert.throws(() => chooseRestore(bs('100/1_200')), (e: unknown) => e instanceof IntegrityError);
});

const retentionCases: Array<[string, string, number, number[]]> = [
  ['nothing old enough', '100/0_100 100/1_200', 50, []],
  ['newest chain is never removed', '100/0_100 100/1_200', 10_000, []],
  ['old chain removed whole', '100/0_100 100/1_200 400/0_400', 300, [100]],
  ['chain with a kept increment stays (never split)', '100/0_100 100/1_500 400/0_400', 450, []],
  ['several chains', '100/0_100 200/0_200 300/0_300 400/0_400', 299, [100, 200]],
  ['cutoff equal to the newest backup removes (<=)', '100/0_100 100/1_200 300/0_300', 200, [100]],
];

test('chainsToRemove', () => {
  for (const [name, backups, cutoff, want] of retentionCases) {
    assert.equal(chainsToRemove(bs(backups), cutoff), want, name);
  }
});

test.run();
