import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgv, parseIni, parseSize } from '../../engine/cli/parse.js';
import { mergeOptions } from '../../engine/cli/main.js';
import { helpText } from '../../engine/cli/help.js';
import { OPTIONS } from '../../engine/cli/options.js';
import { parseDate } from '../../engine/actions/common.js';
import { FloeError } from '../../engine/errors.js';

function throwsUsage(fn: () => unknown, re: RegExp) {
  try {
    fn();
    assert.unreachable('should throw');
  } catch (e) {
    assert.instance(e, FloeError);
    assert.is((e as FloeError).exitCode, 2);
    assert.match((e as Error).message, re);
  }
}

test('argv: long, =, short, repeated excludes, bools', () => {
  const p = parseArgv(['--path-to-backup', '/etc', '-N', 'etc', '--container=/b', '--exclude', '*.log', '--exclude=tmp',
    '--overwrite', '-M', '8M', '--no-incremental', '--max-level', '3']);
  assert.is(p.cli.path_to_backup, '/etc');
  assert.is(p.cli.backup_name, 'etc');
  assert.is(p.cli.container, '/b');
  assert.equal(p.cli.exclude, ['*.log', 'tmp']);
  assert.is(p.cli.overwrite, true);
  assert.is(p.cli.max_segment_size, 8 * 1024 * 1024);
  assert.is(p.cli.no_incremental, true);
  assert.is(p.cli.max_level, 3);
  // true/false options: --NAME, --NAME=false, --no-NAME
  assert.is(parseArgv(['--sync']).cli.sync, true);
  assert.is(parseArgv(['--sync=false']).cli.sync, false);
  assert.is(parseArgv(['--no-sync']).cli.sync, false);
  assert.is(parseArgv(['--no-overwrite']).cli.overwrite, false);
});

test('argv: bad input is a usage error naming the option', () => {
  throwsUsage(() => parseArgv(['--no-such-thing']), /unknown option --no-such-thing/);
  throwsUsage(() => parseArgv(['--no-max-level']), /unknown option --no-max-level/);
  throwsUsage(() => parseArgv(['--no-sync=yes']), /--no-sync takes no value/);
  throwsUsage(() => parseArgv(['--max-level', 'two']), /--max-level must be an integer/);
  throwsUsage(() => parseArgv(['--compression', 'lz4']), /--compression must be one of/);
  throwsUsage(() => parseArgv(['--container']), /needs a value/);
  throwsUsage(() => parseSize('12 parsecs', '--max-segment-size'), /size in bytes/);
});

test('INI: Freezer sections, booleans, storages, unknown keys kept', () => {
  const ini = parseIni([
    '[action]', 'action = backup', 'path_to_backup = /etc', 'backup-name = etc', 'overwrite = True',
    'dry_run = False', 'max_level = None', 'restore_from_host = h', '# comment', '',
    '[storage:first]', 'storage = local', 'container = /tmp/b1',
    '[storage:second]', 'storage = local', 'container = /tmp/b2', 'ssh_host = x',
  ].join('\n'));
  assert.is(ini.values.action, 'backup');
  assert.is(ini.values.path_to_backup, '/etc');
  assert.is(ini.values.backup_name, 'etc');
  assert.is(ini.values.overwrite, true);
  assert.is(ini.values.dry_run, false);
  assert.is(ini.values.max_level, undefined);
  assert.equal(ini.unknown, ['restore_from_host']);
  assert.is(ini.storages.length, 2);
  assert.equal(ini.storages[1], { name: 'second', storage: 'local', container: '/tmp/b2', options: { ssh_host: 'x' } });
});

test('merge: defaults < INI < command line', () => {
  const dir = mkdtempSync(join(tmpdir(), 'floe-cli-'));
  try {
    const f = join(dir, 'job.ini');
    writeFileSync(f, '[default]\naction = restore\nbackup_name = fromini\ncompression = bzip2\n');
    const o = mergeOptions(parseArgv(['--config', f, '--backup-name', 'fromcli']).cli);
    assert.is(o.action, 'restore');
    assert.is(o.backup_name, 'fromcli');
    assert.is(o.compression, 'bzip2');
    assert.is(o.max_segment_size, 32 * 1024 * 1024);
    assert.is(o.incremental, true);
    throwsUsage(() => mergeOptions(parseArgv(['--config', join(dir, 'missing.ini')]).cli), /cannot read config file/);
    throwsUsage(() => mergeOptions(parseArgv(['--action', 'restore']).cli, 'backup'), /contradicts/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('dates: Freezer format is local time; ISO with zone; garbage is refused', () => {
  assert.is(parseDate('2026-11-20T18:00:00', 'x'), Math.floor(new Date(2026, 10, 20, 18, 0, 0).getTime() / 1000));
  assert.is(parseDate('2026-11-20T18:00:00Z', 'x'), Date.UTC(2026, 10, 20, 18) / 1000);
  throwsUsage(() => parseDate('yesterday', '--restore-from-date'), /cannot read the date 'yesterday'/);
  throwsUsage(() => parseDate('2026-02-30T00:00:00', '--restore-from-date'), /cannot read the date/);
});

test('help lists every option of an action', () => {
  const h = helpText('backup');
  for (const o of OPTIONS) {
    if (!o.actions || o.actions.includes('backup')) {
      if (o.name === 'action') continue;
      assert.ok(h.includes(`--${o.name}`), `backup help lacks --${o.name}`);
    }
  }
  assert.ok(helpText().includes('Exit codes'));
});

test.run();
