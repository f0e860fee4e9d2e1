/**
 * Triggers: when a job runs, from its `job_schedule` (reference/freezer.md §5.2 step 4), with the
 * semantics of the APScheduler set-up Freezer uses (coalesce, one instance, a misfire grace time).
 *
 * In priority order:
 *   schedule_date                        once, at that date
 *   schedule_interval                    "continuous" (every second) or "N weeks|days|hours|minutes|seconds",
 *                                        from schedule_start_date if it is in the future, else now + 2 s
 *   schedule_{year,month,day,week,day_of_week,hour,minute,second}
 *                                        cron fields, APScheduler's syntax and defaults (croner computes)
 *   nothing                              once, 2 s after the job is scheduled
 * schedule_start_date / schedule_end_date bound interval and cron triggers (an end before the start is
 * dropped). Dates are Freezer's `YYYY-MM-DDThh:mm:ss` in local time (a Z or an offset is honoured).
 *
 * A trigger is pure: `next(anchor, after)` is the first fire time after `after` (epoch ms), where
 * `anchor` is the time the trigger was first scheduled at (kept in the job's state, so a restart keeps
 * an interval's phase). {@link dueFire} applies coalescing: of all the fire times missed up to now only
 * the latest counts, and it runs only if it is less than the grace time late.
 *
 * Differences from Freezer, on purpose: an end date is honoured without a start date (Freezer ignores
 * it), and `week` (ISO week number) is supported by filtering croner's times.
 */
import { Cron } from 'croner';
import { parseDate } from '../engine/actions/common.js';
import { UsageError } from '../engine/errors.js';

/** MISFIRE_GRACE_MS: Freezer's misfire_grace_time (3600 s): a run more than an hour late is dropped. */
export const MISFIRE_GRACE_MS = 3600_000;
/** START_DELAY_MS: Freezer starts interval jobs, and jobs without a schedule, 2 s after scheduling them. */
export const START_DELAY_MS = 2000;

export type TriggerKind = 'date' | 'interval' | 'cron' | 'once';

export interface Trigger {
  readonly kind: TriggerKind;
  /** describe is a short human description ("every 5 minutes", "at 2026-01-05T03:00:00"). */
  readonly describe: string;
  /** anchor returns the anchor to keep for a trigger scheduled at `now`. */
  anchor(now: number): number;
  /** next is the first fire time strictly after `after` (the first one when undefined), or undefined. */
  next(anchor: number, after: number | undefined): number | undefined;
  /** latest is the last fire time at or before `now` and after `after`, or undefined. */
  latest(anchor: number, after: number | undefined, now: number): number | undefined;
}

type Schedule = Record<string, unknown>;

/** CRON_FIELDS: APScheduler's field names, most significant first. */
export const CRON_FIELDS = ['year', 'month', 'day', 'week', 'day_of_week', 'hour', 'minute', 'second'] as const;
type CronField = (typeof CRON_FIELDS)[number];
/** CRON_DEFAULTS: APScheduler's values for the fields after the last one given (those before are '*'). */
const CRON_DEFAULTS: Record<CronField, string> = {
  year: '*', month: '1', day: '1', week: '*', day_of_week: '*', hour: '0', minute: '0', second: '0',
};
const UNITS: Record<string, number> = { weeks: 604_800_000, days: 86_400_000, hours: 3_600_000, minutes: 60_000, seconds: 1000 };

/**
 * triggerKey identifies what a schedule says about time: when it changes, the job is rescheduled from
 * scratch (new anchor, no past fires). Run-status keys (status, event, times) are not part of it.
 */
export function triggerKey(schedule: Schedule): string {
  const keys = Object.keys(schedule).filter((k) => k.startsWith('schedule_')).sort();
  return JSON.stringify(keys.map((k) => [k, schedule[k]]));
}

/** triggerOf builds the trigger of a job_schedule; a schedule it cannot read is a UsageError. */
export function triggerOf(schedule: Schedule): Trigger {
  const date = str(schedule.schedule_date);
  if (date) return dateTrigger(toMs(date, 'schedule_date'));
  const startRaw = str(schedule.schedule_start_date);
  const endRaw = str(schedule.schedule_end_date);
  const start = startRaw ? toMs(startRaw, 'schedule_start_date') : undefined;
  let end = endRaw ? toMs(endRaw, 'schedule_end_date') : undefined;
  if (end !== undefined && start !== undefined && end < start) end = undefined;
  const interval = str(schedule.schedule_interval);
  if (interval) return intervalTrigger(parseInterval(interval), start, end, interval);
  const fields: Partial<Record<CronField, string>> = {};
  for (const f of CRON_FIELDS) {
    const v = schedule[`schedule_${f}`];
    if (v !== undefined && v !== null && String(v).trim() !== '') fields[f] = String(v).trim();
  }
  if (Object.keys(fields).length > 0) return cronTrigger(fields, start, end);
  return onceTrigger();
}

function str(v: unknown): string {
  return typeof v === 'string' ? v.trim() : typeof v === 'number' ? String(v) : '';
}

function toMs(value: string, what: string): number {
  return parseDate(value, what) * 1000;
}

/** parseInterval reads "continuous" (1 s) or "N weeks|days|hours|minutes|seconds" into milliseconds. */
export function parseInterval(text: string): number {
  if (text === 'continuous') return 1000;
  const m = /^(\d+)\s+(weeks|days|hours|minutes|seconds)$/.exec(text.trim());
  if (!m || Number(m[1]) === 0) {
    throw new UsageError(`schedule_interval must be "continuous" or "N weeks|days|hours|minutes|seconds", got '${text}'`);
  }
  return Number(m[1]) * UNITS[m[2]];
}

function dateTrigger(at: number): Trigger {
  return {
    kind: 'date',
    describe: `at ${new Date(at).toISOString()}`,
    anchor: () => at,
    next: (_a, after) => (after === undefined ? at : undefined),
    latest: (_a, after, now) => (after === undefined && at <= now ? at : undefined),
  };
}

function onceTrigger(): Trigger {
  return {
    kind: 'once',
    describe: 'once, now',
    anchor: (now) => now + START_DELAY_MS,
    next: (anchor, after) => (after === undefined ? anchor : undefined),
    latest: (anchor, after, now) => (after === undefined && anchor <= now ? anchor : undefined),
  };
}

function intervalTrigger(every: number, start: number | undefined, end: number | undefined, text: string): Trigger {
  const beyond = (t: number) => end !== undefined && t > end;
  return {
    kind: 'interval',
    describe: text === 'continuous' ? 'continuously (every second)' : `every ${text}`,
    anchor: (now) => (start !== undefined && start > now ? start : now + START_DELAY_MS),
    next(anchor, after) {
      const k = after === undefined || after < anchor ? 0 : Math.floor((after - anchor) / every) + 1;
      const t = anchor + k * every;
      return beyond(t) ? undefined : t;
    },
    latest(anchor, after, now) {
      if (now < anchor) return undefined;
      let t = anchor + Math.floor((now - anchor) / every) * every;
      if (end !== undefined && t > end) t = anchor + Math.floor((end - anchor) / every) * every;
      return after !== undefined && t <= after ? undefined : t;
    },
  };
}

/** MAX_WEEK_SCAN bounds the search for a time in the wanted ISO week (53 weeks of daily times and more). */
const MAX_WEEK_SCAN = 100_000;

function cronTrigger(fields: Partial<Record<CronField, string>>, start: number | undefined, end: number | undefined): Trigger {
  const pattern = cronPattern(fields);
  let cron: Cron;
  try {
    cron = new Cron(pattern, { mode: '7-part', domAndDow: true, sloppyRanges: true });
  } catch (err) {
    throw new UsageError(`cron fields ${JSON.stringify(fields)} are not valid: ${(err as Error).message}`);
  }
  const weeks = fields.week && fields.week !== '*' ? expandList(fields.week, 1, 53, {}) : undefined;
  const after = (t: number): number | undefined => {
    let d: Date | null = new Date(t);
    for (let i = 0; i < MAX_WEEK_SCAN; i++) {
      d = cron.nextRun(d);
      if (!d || (end !== undefined && d.getTime() > end)) return undefined;
      if (!weeks || weeks.has(isoWeek(d))) return d.getTime();
    }
    return undefined;
  };
  return {
    kind: 'cron',
    describe: `cron ${pattern}${weeks ? ` in ISO weeks ${fields.week}` : ''}`,
    anchor: (now) => (start !== undefined && start > now ? start : now),
    next: (anchor, prev) => after(Math.max(prev ?? -Infinity, anchor - 1)),
    latest(anchor, prev, now) {
      // walk forward from the last fire; after a long outage jump close to `now` first
      let from = Math.max(prev ?? -Infinity, anchor - 1);
      const limit = end !== undefined ? Math.min(now, end) : now;
      const back = cron.previousRuns(1, new Date(limit + 1))[0];
      if (back && back.getTime() - 1 > from && !weeks) from = back.getTime() - 1;
      let last: number | undefined;
      for (let t = after(from); t !== undefined && t <= now; t = after(t)) last = t;
      return last;
    },
  };
}

/**
 * cronPattern turns APScheduler fields into croner's 7-part pattern (second minute hour day month
 * weekday year), applying APScheduler's defaults: fields more significant than the last one given are
 * '*', less significant ones take their minimum. APScheduler counts weekdays 0 = Monday; cron 0 = Sunday.
 */
export function cronPattern(given: Partial<Record<CronField, string>>): string {
  const last = Math.max(...CRON_FIELDS.map((f, i) => (given[f] !== undefined ? i : -1)));
  const f = {} as Record<CronField, string>;
  CRON_FIELDS.forEach((name, i) => {
    f[name] = given[name] ?? (i < last ? '*' : CRON_DEFAULTS[name]);
  });
  let day = f.day.toLowerCase();
  let dow = weekdays(f.day_of_week);
  const nth = /^(1st|2nd|3rd|4th|5th|last)\s+(mon|tue|wed|thu|fri|sat|sun)$/.exec(day);
  if (nth) {
    if (dow !== '*') throw new UsageError(`schedule_day '${f.day}' cannot be combined with schedule_day_of_week`);
    const wd = (WEEKDAYS.indexOf(nth[2]) + 1) % 7;
    dow = nth[1] === 'last' ? `${wd}L` : `${wd}#${nth[1][0]}`;
    day = '*';
  } else if (day === 'last') {
    day = 'L';
  }
  const month = f.month.toUpperCase();
  return [f.second, f.minute, f.hour, day, month, dow, f.year].join(' ');
}

const WEEKDAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'];

/** weekdays converts an APScheduler day_of_week expression (0 = mon, names) to a cron list (0 = Sunday). */
function weekdays(expr: string): string {
  if (expr.trim() === '*') return '*';
  const set = expandList(expr.toLowerCase(), 0, 6, Object.fromEntries(WEEKDAYS.map((d, i) => [d, i])));
  return [...set].sort((a, b) => a - b).map((d) => (d + 1) % 7).join(',');
}

/** expandList expands "a,b-c,*\/d,e-f/g" (numbers or names) into the set of values in [min, max]. */
function expandList(expr: string, min: number, max: number, names: Record<string, number>): Set<number> {
  const out = new Set<number>();
  const num = (s: string): number => {
    const v = s in names ? names[s] : /^\d+$/.test(s) ? Number(s) : NaN;
    if (!(v >= min && v <= max)) throw new UsageError(`cron value '${s}' is out of range ${min}-${max}`);
    return v;
  };
  for (const part of expr.split(',').map((s) => s.trim())) {
    const m = /^(\*|[a-z0-9]+)(?:-([a-z0-9]+))?(?:\/(\d+))?$/.exec(part);
    if (!m) throw new UsageError(`cannot read the cron expression '${part}'`);
    const from = m[1] === '*' ? min : num(m[1]);
    const to = m[2] !== undefined ? num(m[2]) : m[1] === '*' || m[3] !== undefined ? max : from;
    const step = m[3] !== undefined ? Number(m[3]) : 1;
    if (step < 1 || to < from) throw new UsageError(`cannot read the cron expression '${part}'`);
    for (let v = from; v <= to; v += step) out.add(v);
  }
  return out;
}

/** isoWeek is the ISO 8601 week number of a local date. */
export function isoWeek(d: Date): number {
  const t = new Date(Date.UTC(d.getFullYear(), d.getMonth(), d.getDate()));
  const day = t.getUTCDay() || 7;
  t.setUTCDate(t.getUTCDate() + 4 - day);
  const yearStart = Date.UTC(t.getUTCFullYear(), 0, 1);
  return Math.ceil(((t.getTime() - yearStart) / 86_400_000 + 1) / 7);
}

export type Due =
  | { kind: 'none' }
  | { kind: 'run'; fire: number }
  /** the latest due fire is older than the grace time: consumed without running */
  | { kind: 'missed'; fire: number };

/**
 * dueFire decides what a trigger asks for at `now`, given the last fire already consumed (`after`):
 * nothing, one run for the latest missed fire time (coalescing: never one run per missed time), or a
 * fire too late to run (older than `graceMs`).
 */
export function dueFire(t: Trigger, anchor: number, after: number | undefined, now: number, graceMs = MISFIRE_GRACE_MS): Due {
  const fire = t.latest(anchor, after, now);
  if (fire === undefined) return { kind: 'none' };
  return now - fire > graceMs ? { kind: 'missed', fire } : { kind: 'run', fire };
}
