/**
 * The admin action: retention. A chain (a level 0 and its increments) is removed only when its newest
 * backup is at or before the cutoff, so no kept backup ever loses a level it depends on, and the newest
 * chain is always kept (Freezer removes whole chains by their level-0 time, the current one included).
 * The metadata is removed first (the backup disappears for restores), then the data. Leftovers of failed
 * backups (data without metadata) older than the cutoff are removed too.
 */
import { UsageError } from '../errors.js';
import { AgentOptions } from '../cli/parse.js';
import { Output } from '../cli/output.js';
import { chainsToRemove } from '../chain/index.js';
import { listOrphans } from '../storage/layout.js';
import { engineOf, formatDate, hostnameBackupName, listAll, openStorages, parseDate } from './common.js';

export async function admin(o: AgentOptions, _out: Output): Promise<{ document: Record<string, unknown>; human: string[] }> {
  let cutoff: number;
  if (o.remove_from_date !== undefined) cutoff = parseDate(o.remove_from_date, '--remove-from-date');
  else if (o.remove_older_than !== undefined) cutoff = Math.floor(Date.now() / 1000 - o.remove_older_than * 86400);
  else throw new UsageError('admin needs --remove-older-than DAYS or --remove-from-date DATE');
  const hbn = hostnameBackupName(o);
  const engine = engineOf(o);
  const storages = openStorages(o);
  const all = await listAll(storages, hbn, engine);
  const doomed = chainsToRemove(all.map((l) => l.id), cutoff);
  const human: string[] = [];
  const removed: number[] = [];
  for (const t0 of doomed) {
    const n = all.filter((l) => l.id.t0 === t0).length;
    human.push(`${o.dry_run ? 'would remove' : 'removed'} chain ${t0} (${formatDate(t0)}, ${n} backup${n > 1 ? 's' : ''})`);
    removed.push(t0);
    if (o.dry_run) continue;
    for (const s of storages) {
      await s.remove(`metadata/${engine}/${hbn}/${t0}`);
      await s.remove(`data/${engine}/${hbn}/${t0}`);
    }
  }
  const orphans: string[] = [];
  for (const s of storages) {
    for (const key of await listOrphans(s, engine, hbn)) {
      const m = /\/(\d+)_(\d+)$/.exec(key);
      if (!m || Number(m[2]) > cutoff) continue;
      orphans.push(key);
      human.push(`${o.dry_run ? 'would remove' : 'removed'} leftover of a failed backup: ${key}`);
      if (!o.dry_run) await s.remove(key);
    }
  }
  if (human.length === 0) human.push(`nothing to remove for ${hbn} (cutoff ${formatDate(cutoff)})`);
  return { document: { action: 'admin', cutoff, removed_chains: removed, removed_leftovers: orphans, dry_run: o.dry_run }, human };
}
