/**
 * Freezer's level model (reference/freezer.md §2.3-2.5) as pure functions, minus Freezer's bugs.
 *
 * A chain is a level-0 backup (T0) and the incrementals built on it: level L+1 holds the changes since a
 * level-L backup of the same chain. A chain is identified by T0 and stored under <T0>/; every backup in
 * it is <L>_<T>. With --always-level N, level N repeats (each one built on the newest level N-1), so a chain
 * can hold several backups of one level; with --max-level N, the chain ends at level N and the next backup
 * starts a new chain (levels 0..N, as Freezer).
 *
 * Fixes over Freezer:
 * - Several backups of one level: Freezer keeps whichever listdir returns last; here the newest wins.
 * - Restore applies exactly the backups the target was built on (the target's parents, newest first),
 *   which in every chain Freezer or floe writes equals "for each level, the newest T <= date".
 * - A chain with a missing level is never extended (the new backup would not be restorable): a new
 *   chain starts; restoring it is an IntegrityError naming the level, not a KeyError.
 * - Retention never splits a chain, never removes a chain whose newest backup is after the cutoff (a kept
 *   backup depends on all of it), and never removes the newest chain.
 * Kept as Freezer: --restart-always-level counts days from the timestamp of the chain's highest-level
 * backup (not from level 0), and applies whenever it is set, with or without --always-level.
 */
import { IntegrityError, NotFoundError } from '../errors.js';
import type { BackupId } from '../storage/layout.js';

export interface LevelOptions {
  /** False: every backup is a level 0 (`--no-incremental`). */
  incremental: boolean;
  /** `--max-level N`: once the chain has reached level N, the next backup starts a new chain. 0/undefined: off. */
  maxLevel?: number;
  /** `--always-level N`: level N repeats, each built on level N-1. 0/undefined: off. */
  alwaysLevel?: number;
  /** `--restart-always-level DAYS`: start a new chain DAYS after the highest-level backup. 0/undefined: off. */
  restartAlwaysLevel?: number;
}

const DAY = 86400;

/** chains groups backups by T0, each chain sorted by t then level; the map is in ascending T0 order. */
function chains(backups: BackupId[]): Map<number, BackupId[]> {
  const sorted = [...backups].sort((a, b) => a.t0 - b.t0 || a.t - b.t || a.level - b.level);
  const out = new Map<number, BackupId[]>();
  for (const b of sorted) {
    const c = out.get(b.t0);
    if (c) c.push(b);
    else out.set(b.t0, [b]);
  }
  return out;
}

/** newestPerLevel maps each level of a chain to its newest backup. */
function newestPerLevel(chain: BackupId[]): Map<number, BackupId> {
  const m = new Map<number, BackupId>();
  for (const b of chain) {
    const cur = m.get(b.level);
    if (!cur || b.t >= cur.t) m.set(b.level, b);
  }
  return m;
}

/**
 * chooseParent returns the backup a new backup builds on (its level + 1 is the new level, its t0 the new
 * chain id), or undefined for a new level-0 chain. Freezer's previous_backup(), in order: not incremental;
 * no chain; max level reached; past the always level; restart-always-level expired; at the always level
 * (parent = newest level N-1); otherwise the newest backup of the highest level.
 */
export function chooseParent(backups: BackupId[], o: LevelOptions, nowSec: number): BackupId | undefined {
  if (!o.incremental || backups.length === 0) return undefined;
  const all = chains(backups);
  const latest = [...all.keys()].reduce((a, b) => Math.max(a, b));
  const levels = newestPerLevel(all.get(latest)!);
  const hi = Math.max(...levels.keys());
  for (let l = 0; l <= hi; l++) if (!levels.has(l)) return undefined; // broken chain: never extend it
  const top = levels.get(hi)!;
  if (o.maxLevel && o.maxLevel <= hi) return undefined;
  if (o.alwaysLevel && hi > o.alwaysLevel) return undefined;
  if (o.restartAlwaysLevel && nowSec > top.t + o.restartAlwaysLevel * DAY) return undefined;
  if (o.alwaysLevel && hi === o.alwaysLevel) return levels.get(hi - 1);
  return top;
}

/**
 * chooseRestore returns the backups to apply, level 0 first, to restore the state at `dateSec` (default:
 * the latest): the chain with the largest T0 <= date, its newest backup with T <= date (the target), then
 * for each lower level the newest backup no newer than the one above it. NotFoundError when nothing is
 * that old; IntegrityError when a level of the chain is missing.
 */
export function chooseRestore(backups: BackupId[], dateSec?: number): BackupId[] {
  const inDate = (b: BackupId) => dateSec === undefined || b.t <= dateSec;
  const all = chains(backups.filter(inDate));
  const t0s = [...all.keys()].filter((t0) => dateSec === undefined || t0 <= dateSec);
  if (t0s.length === 0) {
    throw new NotFoundError(dateSec === undefined ? 'no backup found' : `no backup found at or before ${new Date(dateSec * 1000).toISOString()}`);
  }
  const t0 = Math.max(...t0s);
  const chain = all.get(t0)!;
  const target = chain.reduce((a, b) => (b.t > a.t || (b.t === a.t && b.level > a.level) ? b : a));
  const out: BackupId[] = [target];
  let above = target;
  for (let level = target.level - 1; level >= 0; level--) {
    const candidates = chain.filter((b) => b.level === level && b.t <= above.t);
    if (candidates.length === 0) {
      throw new IntegrityError(`backup chain ${t0} of ${target.hbn} is broken: level ${level} is missing (needed by level ${target.level} at ${target.t})`);
    }
    above = candidates[candidates.length - 1];
    out.push(above);
  }
  return out.reverse();
}

/**
 * chainsToRemove returns the T0 of every chain to delete for a retention cutoff: a chain goes only when its
 * NEWEST backup is <= cutoff (so nothing kept depends on it), and the newest chain always stays. Chains
 * are removed whole, never split. Ascending T0.
 */
export function chainsToRemove(backups: BackupId[], cutoffSec: number): number[] {
  const all = chains(backups);
  if (all.size === 0) return [];
  const newest = Math.max(...all.keys());
  const out: number[] = [];
  for (const [t0, chain] of all) {
    if (t0 === newest) continue;
    if (Math.max(...chain.map((b) => b.t)) <= cutoffSec) out.push(t0);
  }
  return out;
}
