/**
 * Help text, made from the option table so it can never disagree with what the parser accepts.
 */
import { readFileSync } from 'node:fs';
import { ActionName, OPTIONS, OptionSpec } from './options.js';

export const VERSION: string = (() => {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
    return pkg.version;
  } catch {
    return '0.0.0';
  }
})();

const SUMMARY: Record<ActionName | 'agent', string> = {
  backup: 'Back up a file or directory: GNU tar stream, compressed, optionally encrypted, with incremental levels.',
  restore: 'Restore the newest backup (or the newest at or before --restore-from-date), levels 0..N in order.',
  info: 'List the backups in a container: names, hosts, chains, levels, times, sizes.',
  admin: 'Remove old chains (--remove-older-than / --remove-from-date) and leftovers of failed backups.',
  exec: 'Run a command (e.g. a pre- or post-backup script), as freezer-agent --action exec.',
  agent: 'Run one action with freezer-agent\'s interface: floe agent --action backup|restore|info|admin|exec [options].',
};

const EXAMPLES: Record<ActionName | 'agent', string[]> = {
  backup: [
    'floe backup --path-to-backup /etc --backup-name etc --container /var/backups/floe',
    'floe backup -F /srv/data -N data -C /mnt/backup --compression zstd --encrypt-pass-file ~/.floe-pass --max-level 6',
  ],
  restore: [
    'floe restore --backup-name etc --container /var/backups/floe --restore-abs-path /tmp/etc-restored',
    'floe restore -N data -C /mnt/backup --restore-abs-path /srv/data --overwrite --restore-from-date 2026-11-20T18:00:00',
  ],
  info: ['floe info --container /var/backups/floe', 'floe info --container /var/backups/floe --backup-name etc --json'],
  admin: ['floe admin --backup-name etc --container /var/backups/floe --remove-older-than 30'],
  exec: ['floe exec --command "pg_dump -f /var/backups/db.sql mydb"'],
  agent: ['floe agent --config job.ini --metadata-out -'],
};

function optionLine(o: OptionSpec): string {
  const flag = `${o.short ? `-${o.short}, ` : '    '}--${o.name}${o.type === 'bool' ? '' : ` ${o.metavar ?? (o.choices ? `{${o.choices.join(',')}}` : o.type.toUpperCase())}`}`;
  let help = o.help;
  if (o.ignored) help += ' (accepted for Freezer compatibility; no effect)';
  if (o.default !== undefined && o.type !== 'bool' && o.name !== 'action') help += ` [default: ${String(o.default)}]`;
  const pad = 38;
  return flag.length >= pad ? `  ${flag}\n  ${' '.repeat(pad)}${help}` : `  ${flag.padEnd(pad)}${help}`;
}

/** helpText is the help of one action, of the agent form, or (no topic) of the whole command. */
export function helpText(topic?: ActionName | 'agent'): string {
  if (!topic) {
    return [
      `floe ${VERSION}: backup, restore and disaster recovery, compatible with OpenStack Freezer's tar engine.`,
      '',
      'Usage: floe <command> [options]',
      '',
      'Commands:',
      ...(['backup', 'restore', 'info', 'admin', 'exec', 'agent'] as const).map((a) => `  ${a.padEnd(9)}${SUMMARY[a]}`),
      '  api      The REST API (freezer-api v2) and the web UI: floe api --help.',
      '  scheduler  This node\'s job scheduler (freezer-scheduler): floe scheduler --help.',
      '  start    Everything on one machine: API, web UI and scheduler (npm start).',
      '  help     floe help <command>: the options of one command.',
      '',
      'Options take freezer-agent\'s names (--path-to-backup, --backup-name, --container, ...), on the command',
      'line or in an INI file given with --config; --no-NAME (or --NAME=false) turns a true/false option off.',
      'Storage layout, metadata and data are Freezer\'s, so floe restores Freezer backups and Freezer restores',
      'floe\'s.',
      '',
      'Exit codes: 0 ok, 1 unexpected error, 2 bad usage, 3 backup not found, 4 wrong or missing password,',
      '5 corrupted or tampered data, 6 storage error (not writable, disk full), 7 restore directory not empty,',
      '8 path to back up missing or unreadable, 9 consistency checksum mismatch, 10 exec command failed,',
      '130 interrupted.',
      '',
    ].join('\n');
  }
  const action = topic === 'agent' ? undefined : topic;
  const relevant = OPTIONS.filter((o) => o.name !== 'action' || topic === 'agent')
    .filter((o) => !action || !o.actions || o.actions.includes(action));
  const groups = new Map<string, OptionSpec[]>();
  for (const o of relevant) groups.set(o.group, [...(groups.get(o.group) ?? []), o]);
  const lines = [
    `Usage: floe ${topic} [options]`,
    '',
    SUMMARY[topic],
    '',
  ];
  for (const [g, os] of groups) {
    lines.push(`${g}:`, ...os.map(optionLine), '');
  }
  lines.push('    --help                            This help.', '', 'Examples:', ...EXAMPLES[topic].map((e) => `  ${e}`), '');
  return lines.join('\n');
}
