/**
 * Triggers (scheduler/triggers.ts): Freezer's date, interval and cron schedules with APScheduler's
 * semantics, on explicit times (no waiting): fire times, start/end dates, cron defaults and syntax,
 * coalescing of missed fire times and the misfire grace time.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cronPattern, dueFire, isoWeek, parseInterval, triggerKey, triggerOf, START_DELAY_MS } from '../../scheduler/triggers.js';
import { FakeClock } from '../../scheduler/clock.js';

const S = 1000;
const MIN = 60 * S;
/** local: Freezer's dates are local time */
const local = (y: number, mo: number, d: number, h = 0, mi = 0, s = 0) => new Date(y, mo - 1, d, h, mi, s).getTime();
const pad = (n: number) => String(n).padStart(2, '0');
const fmt = (ms: number) => {
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
};

/** fires lists the first n fire times of a trigger scheduled at `now`. */
function fires(schedule: Record<string, unknown>, now: number, n: number): number[] {
  const t = triggerOf(schedule);
  const anchor = t.anchor(now);
  const out: number[] = [];
  let after: number | undefined;
  for (let i = 0; i < n; i++) {
    const f = t.next(anchor, after);
    if (f === undefined) break;
    out.push(f);
    after = f;
  }
  return out;
}

const NOW = local(2026, 3, 10, 12, 0, 0); // a Tuesday

test('interval: first run 2 s after scheduling, then every N; "continuous" is every second', () => {
  assert.equal(fires({ schedule_interval: '5 minutes' }, NOW, 3), [NOW + START_DELAY_MS, NOW + START_DELAY_MS + 5 * MIN, NOW + START_DELAY_MS + 10 * MIN]);
  assert.equal(fires({ schedule_interval: 'continuous' }, NOW, 3), [NOW + 2 * S, NOW + 3 * S, NOW + 4 * S]);
  assert.is(parseInterval('2 weeks'), 14 * 86_400 * S);
  assert.is(parseInterval('3 seconds'), 3 * S);
  for (const bad of ['5 minute', 'every 5 minutes', '0 seconds', '-1 days', 'five hours']) {
    assert.throws(() => parseInterval(bad), /schedule_interval/, bad);
  }
});

test('interval: a future start date is the first run; a past one counts as now; the end date is inclusive', () => {
  const start = NOW + 3600 * S;
  assert.equal(fires({ schedule_interval: '1 hours', schedule_start_date: fmt(start) }, NOW, 2), [start, start + 3600 * S]);
  assert.equal(fires({ schedule_interval: '1 hours', schedule_start_date: fmt(NOW - 86_400 * S) }, NOW, 1), [NOW + START_DELAY_MS]);
  const end = start + 2 * 3600 * S;
  assert.equal(fires({ schedule_interval: '1 hours', schedule_start_date: fmt(start), schedule_end_date: fmt(end) }, NOW, 10), [start, start + 3600 * S, end]);
  // an end before the start is dropped, as Freezer does
  assert.is(fires({ schedule_interval: '1 hours', schedule_start_date: fmt(start), schedule_end_date: fmt(NOW) }, NOW, 5).length, 5);
});

test('date: one run at schedule_date (it wins over every other field); no schedule: one run now + 2 s', () => {
  const at = NOW + 90 * S;
  assert.equal(fires({ schedule_date: fmt(at), schedule_interval: '1 seconds', schedule_hour: '3' }, NOW, 5), [at]);
  assert.equal(fires({}, NOW, 5), [NOW + START_DELAY_MS]);
  assert.equal(fires({ schedule_date: new Date(at).toISOString() }, NOW, 5), [at], 'ISO with Z');
  assert.throws(() => triggerOf({ schedule_date: '2026-13-01T00:00:00' }), /schedule_date/);
});

test('cron: APScheduler defaults: fields after the last given take their minimum, those before are *', () => {
  assert.is(cronPattern({ hour: '3' }), '0 0 3 * * * *');
  assert.is(cronPattern({ month: '6' }), '0 0 0 1 6 * *');
  assert.is(cronPattern({ minute: '*/15' }), '0 */15 * * * * *');
  assert.is(cronPattern({ day_of_week: 'mon-fri', hour: '1', minute: '30' }), '0 30 1 * * 1,2,3,4,5 *');
  // APScheduler counts weekdays from Monday = 0; cron from Sunday = 0
  assert.is(cronPattern({ day_of_week: '5,6', hour: '0' }), '0 0 0 * * 6,0 *');
  assert.is(cronPattern({ day: 'last', hour: '23' }), '0 0 23 L * * *');
  assert.is(cronPattern({ day: '2nd fri' }), '0 0 0 * * 5#2 *');
  assert.is(cronPattern({ day: 'last sun' }), '0 0 0 * * 0L *');
  assert.is(cronPattern({ year: '2027', month: 'jan' }), '0 0 0 1 JAN * 2027');
});

test('cron: fire times in local time, with start and end dates', () => {
  assert.equal(fires({ schedule_hour: '3' }, NOW, 2), [local(2026, 3, 11, 3), local(2026, 3, 12, 3)]);
  // weekdays only: from Friday 10 April 2026 at noon, the next Mon-Fri 01:30 are Monday 13th and Tuesday 14th
  const wk = fires({ schedule_day_of_week: 'mon-fri', schedule_hour: '1', schedule_minute: '30' }, local(2026, 4, 10, 12), 2);
  assert.equal(wk, [local(2026, 4, 13, 1, 30), local(2026, 4, 14, 1, 30)]);
  assert.equal(fires({ schedule_day: 'last', schedule_hour: '23' }, NOW, 2), [local(2026, 3, 31, 23), local(2026, 4, 30, 23)]);
  assert.equal(fires({ schedule_day: '2nd fri' }, NOW, 1), [local(2026, 3, 13)]);
  const start = local(2026, 3, 20);
  const end = local(2026, 3, 22, 3);
  assert.equal(fires({ schedule_hour: '3', schedule_start_date: fmt(start), schedule_end_date: fmt(end) }, NOW, 9), [local(2026, 3, 20, 3), local(2026, 3, 21, 3), local(2026, 3, 22, 3)]);
  assert.equal(fires({ schedule_second: '*/20' }, NOW + 500, 3), [NOW + 20 * S, NOW + 40 * S, NOW + 60 * S]);
});

test('cron: ISO week numbers filter the fire times', () => {
  const f = fires({ schedule_week: '20', schedule_day_of_week: 'wed' }, NOW, 2);
  assert.is(f.length, 2);
  for (const t of f) assert.is(isoWeek(new Date(t)), 20);
  assert.is(new Date(f[0]).getDay(), 3);
  assert.is(new Date(f[1]).getFullYear(), 2027);
  assert.throws(() => triggerOf({ schedule_day_of_week: 'funday' }), /cron|funday/);
  assert.throws(() => triggerOf({ schedule_hour: '25' }), /cron/);
});

test('dueFire coalesces missed fire times into one run, drops a run later than the grace time', () => {
  const t = triggerOf({ schedule_interval: '10 seconds' });
  const anchor = t.anchor(NOW);
  assert.equal(dueFire(t, anchor, undefined, NOW), { kind: 'none' });
  assert.equal(dueFire(t, anchor, undefined, anchor), { kind: 'run', fire: anchor });
  // five fire times passed since the last one consumed: one run, for the latest
  assert.equal(dueFire(t, anchor, anchor, anchor + 55 * S), { kind: 'run', fire: anchor + 50 * S });
  assert.equal(dueFire(t, anchor, anchor + 50 * S, anchor + 55 * S), { kind: 'none' });
  const day = triggerOf({ schedule_hour: '3' });
  const a = day.anchor(NOW);
  const three = local(2026, 3, 11, 3);
  assert.equal(dueFire(day, a, undefined, three + 30 * MIN), { kind: 'run', fire: three }, 'within the hour of grace');
  assert.equal(dueFire(day, a, undefined, three + 61 * MIN), { kind: 'missed', fire: three });
  assert.equal(dueFire(day, a, undefined, three + 5 * MIN, 60 * S), { kind: 'missed', fire: three }, 'a shorter grace time');
  // days of outage: still one run (or none), never one per day
  assert.equal(dueFire(day, a, undefined, local(2026, 3, 20, 3, 10)), { kind: 'run', fire: local(2026, 3, 20, 3) });
  const once = triggerOf({ schedule_date: fmt(NOW + 10 * S) });
  assert.equal(dueFire(once, NOW + 10 * S, NOW + 10 * S, NOW + 20 * S), { kind: 'none' }, 'a date runs once');
});

test('triggerKey changes with the schedule only, not with the run status', () => {
  const a = triggerKey({ schedule_interval: '5 minutes', status: 'scheduled', event: '' });
  assert.is(a, triggerKey({ status: 'running', schedule_interval: '5 minutes', time_started: 5 }));
  assert.is.not(a, triggerKey({ schedule_interval: '6 minutes' }));
});

test('FakeClock fires timers in order, at their own times, and sleep honours the signal', async () => {
  const c = new FakeClock(0);
  const seen: Array<[string, number]> = [];
  c.setTimer(30, () => seen.push(['b', c.now()]));
  c.setTimer(10, () => {
    seen.push(['a', c.now()]);
    c.setTimer(5, () => seen.push(['a2', c.now()]));
  });
  const cancelled = c.setTimer(20, () => seen.push(['x', c.now()]));
  cancelled.cancel();
  await c.advance(100);
  assert.equal(seen, [['a', 10], ['a2', 15], ['b', 30]]);
  assert.is(c.now(), 100);
  const ac = new AbortController();
  const slept = c.sleep(50, ac.signal).then(() => 'done', () => 'aborted');
  ac.abort();
  assert.is(await slept, 'aborted');
});

test.run();
