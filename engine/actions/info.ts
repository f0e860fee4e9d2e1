/**
 * The info action: what is in a container. Freezer prints nothing for local storage; floe lists every
 * backup name and host, its chains and levels, with times, sizes and encryption, from the metadata tree.
 */
import { AgentOptions } from '../cli/parse.js';
import { Output, formatBytes } from '../cli/output.js';
import { ENGINES, Located, formatDate, listAll, openStorages, readMetadata } from './common.js';
import { NotFoundError } from '../errors.js';

export async function info(o: AgentOptions, out: Output): Promise<{ document: Record<string, unknown>; human: string[] }> {
  const storages = openStorages(o);
  const names = new Set<string>();
  for (const s of storages) for (const e of ENGINES) for (const n of await s.list(`metadata/${e}`)) names.add(`${e}/${n}`);
  let wanted = [...names].sort();
  if (o.backup_name) {
    const hbn = `${o.hostname}_${o.backup_name}`;
    wanted = wanted.filter((n) => n.endsWith(`/${hbn}`));
    if (wanted.length === 0) throw new NotFoundError(`no backup named '${o.backup_name}' for host '${o.hostname}' in ${storages.map((s) => s.container).join(', ')}`);
  }
  const backups: Array<Record<string, unknown>> = [];
  const human: string[] = [];
  for (const name of wanted) {
    const [engine, hbn] = name.split('/') as [(typeof ENGINES)[number], string];
    const list = await listAll(storages, hbn, engine);
    if (list.length === 0) continue;
    human.push(`${hbn} (${engine} engine):`);
    for (const l of list) {
      const row = await describe(l);
      backups.push(row);
      human.push(`  chain ${l.id.t0}  level ${String(l.id.level).padStart(2)}  ${formatDate(l.id.t)}  ` +
        `${row.stored_bytes === undefined ? '?' : formatBytes(row.stored_bytes as number).padStart(10)}  ` +
        `${row.compression}${row.encryption ? ' encrypted' : ''}${row.written_by === 'freezer' ? ' (made by Freezer)' : ''}`);
    }
  }
  if (human.length === 0) human.push(`no backups in ${storages.map((s) => s.container).join(', ')}`);
  return { document: { backups }, human };
}

async function describe(l: Located): Promise<Record<string, unknown>> {
  const row: Record<string, unknown> = {
    hostname_backup_name: l.id.hbn, engine_name: l.id.engine, level_zero_timestamp: l.id.t0, level: l.id.level, time_stamp: l.id.t,
    date: formatDate(l.id.t), container: l.storage.container,
  };
  try {
    const doc = await readMetadata(l);
    row.compression = doc.compression ?? 'gzip';
    row.encryption = !!doc.encryption;
    row.written_by = doc.floe ? 'floe' : 'freezer';
    if (doc.floe?.stats) {
      row.files = doc.floe.stats.files;
      row.source_bytes = doc.floe.stats.source_bytes;
      row.stored_bytes = doc.floe.stats.stored_bytes;
    }
  } catch (err) {
    row.error = (err as Error).message;
  }
  return row;
}
