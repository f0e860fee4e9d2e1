/**
 * The scheduler's files (scheduler/store.ts, runner.ts helpers, cli.ts options): job records, the pid
 * file lock, job files, the action INI Freezer's agent and floe's both read, result document parsing,
 * and the command's option handling.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseIni } from '../../engine/cli/parse.js';
import { JobStore, SchedulerRunningError, acquirePidFile, fileId, readPid, releasePidFile } from '../../scheduler/store.js';
import { actionIni, parseDocument } from '../../scheduler/agents.js';
import { parseArgs, readConfig, settingsOf } from '../../scheduler/cli.js';
import { cleanupDirs, tempDir, waitFor } from './helpers.js';

test.after.each(() => cleanupDirs());

test('job records: saved atomically, loaded back, a damaged one is skipped and reported', () => {
  const dir = tempDir();
  const store = new JobStore(dir).open();
  const rec = {
    format: 1 as const, job_id: 'j-1', doc: { job_id: 'j-1', job_schedule: {} }, phase: 'scheduled' as const,
    trigger: { key: '[]', anchor: 5, last_fire: null }, run: null, outbox: [], next_seq: 1, history: [],
  };
  store.save(rec);
  store.save({ ...rec, job_id: 'weird/id with spaces' });
  writeFileSync(join(store.stateDir, 'jobs', 'broken.json'), '{"format": 1, "job_');
  const bad: string[] = [];
  const loaded = store.load((f) => bad.push(f));
  assert.equal(loaded.map((r) => r.job_id).sort(), ['j-1', 'weird/id with spaces']);
  assert.is(bad.length, 1);
  assert.ok(existsSync(join(store.stateDir, 'jobs', `${fileId('weird/id with spaces')}.json`)), 'unsafe ids become file-safe names');
  store.writeMirror({ job_id: 'j-1', job_schedule: {} });
  assert.match(readFileSync(join(dir, 'job_j-1.conf'), 'utf8'), /^\{\n {4}"job_id": "j-1"/, 'Freezer\'s mirror: JSON, indent 4');
  store.forget('j-1');
  assert.not.ok(existsSync(join(dir, 'job_j-1.conf')));
  assert.equal(store.load().map((r) => r.job_id), ['weird/id with spaces']);
});

test('job files (--no-api): *.conf JSON; a missing job_id is derived from the file name, the same every time', () => {
  const dir = tempDir();
  const store = new JobStore(dir).open();
  writeFileSync(join(dir, 'a.conf'), JSON.stringify({ job_schedule: {}, job_actions: [] }));
  writeFileSync(join(dir, 'b.CONF'), JSON.stringify({ job_id: 'named', job_actions: [] }));
  writeFileSync(join(dir, 'c.conf'), 'not json');
  writeFileSync(join(dir, 'notes.txt'), '{}');
  const bad: string[] = [];
  const first = store.readJobFiles((f) => bad.push(f)).map((d) => d.job_id);
  const again = store.readJobFiles().map((d) => d.job_id);
  assert.equal(first, again);
  assert.is(first.length, 2);
  assert.ok(first.includes('named'));
  assert.is(bad.length, 1);
});

test('pid file: one scheduler per jobs directory; a stale file (process gone) is taken over', async () => {
  const dir = tempDir();
  const pidFile = join(dir, 'scheduler.pid');
  acquirePidFile(pidFile);
  assert.is(readPid(pidFile), process.pid);
  acquirePidFile(pidFile); // the owner again: fine
  releasePidFile(pidFile);
  assert.not.ok(existsSync(pidFile));
  // a live process whose command line says "scheduler" holds it
  const holder = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)', 'scheduler'], { stdio: 'ignore' });
  await waitFor(() => holder.pid, 5000, 'spawn');
  writeFileSync(pidFile, `${holder.pid}\n`);
  try {
    assert.throws(() => acquirePidFile(pidFile), (e: Error) => e instanceof SchedulerRunningError && e.message.includes(String(holder.pid)));
  } finally {
    holder.kill('SIGKILL');
  }
  await new Promise((r) => holder.once('exit', r));
  acquirePidFile(pidFile);
  assert.is(readPid(pidFile), process.pid, 'taken over once the holder is dead (as after a SIGKILL)');
  releasePidFile(pidFile);
});

test('actionIni: freezer-scheduler\'s [action] section, read back by floe\'s INI parser', () => {
  const ini = actionIni({
    action: 'backup', path_to_backup: '/srv/data dir', backup_name: 'b', container: '/c', max_level: 3,
    no_incremental: false, consistency_check: true, encrypt_pass_file: null, exclude: ['*.tmp', 'cache/*'],
  });
  assert.ok(ini.startsWith('[action]\n'));
  assert.ok(ini.includes('consistency_check = True\n'));
  assert.ok(ini.includes('no_incremental = False\n'));
  assert.not.ok(ini.includes('encrypt_pass_file'), 'None values are dropped');
  const back = parseIni(ini).values;
  assert.is(back.path_to_backup, '/srv/data dir');
  assert.is(back.max_level, 3);
  assert.is(back.consistency_check, true);
  assert.equal(back.exclude, ['*.tmp', 'cache/*']);
});

test('parseDocument: the whole stdout, or its last JSON object line; nothing for {} or text', () => {
  assert.equal(parseDocument('{"a":1}\n'), { a: 1 });
  assert.equal(parseDocument('some log line\n{"backup_name":"x"}\n'), { backup_name: 'x' });
  assert.is(parseDocument('{}\n'), undefined);
  assert.is(parseDocument('post\n'), undefined);
  assert.is(parseDocument(''), undefined);
});

test('floe scheduler options: Freezer\'s names and short forms, an INI file under the command line, checks', () => {
  const p = parseArgs(['start', '-c', 'p_node1', '-n', '-f', '/tmp/jobs', '-i', '5', '--concurrent_jobs', '3', '--disable-exec', '--agent-command=timeout 60 freezer-agent']);
  assert.is(p.command, 'start');
  const s = settingsOf(p.flags, {});
  assert.equal([s.noApi, s.jobsDir, s.intervalMs, s.concurrentJobs, s.disableExec], [true, '/tmp/jobs', 5000, 3, true]);
  assert.equal(s.agentCommand, ['timeout', '60', 'freezer-agent']);
  assert.ok(s.capabilities.modes.includes('mysql'), 'another agent: Freezer\'s capabilities');
  assert.is(s.pidFile, '/tmp/jobs/.floe/scheduler.pid');
  const floe = settingsOf(parseArgs(['start']).flags, { FREEZER_SCHEDULER_CONF_D: '/etc/x' });
  assert.is(floe.jobsDir, '/etc/x');
  assert.equal(floe.capabilities.engines, ['tar', 'rsync'], 'floe\'s own agent: what floe supports');
  const dir = tempDir();
  mkdirSync(join(dir, 'j'));
  const cfg = join(dir, 'scheduler.conf');
  writeFileSync(cfg, '[scheduler]\nclient_id = p_node2\ninterval = 30\nconf = /tmp/other\n[capabilities]\nsupported_actions = backup, restore\n[service_auth]\npassword = x\n');
  assert.equal(readConfig(cfg), { 'client-id': 'p_node2', interval: '30', 'jobs-dir': '/tmp/other', 'supported-actions': 'backup, restore' });
  const merged = settingsOf({ config: cfg, interval: '2' }, {});
  assert.equal([merged.intervalMs, merged.jobsDir, merged.capabilities.actions], [2000, '/tmp/other', ['backup', 'restore']]);
  assert.throws(() => settingsOf({ interval: '0' }, {}), /--interval/);
  assert.throws(() => settingsOf({ 'concurrent-jobs': '1.5' }, {}), /--concurrent-jobs/);
  assert.throws(() => parseArgs(['start', '--bogus']), /unknown option --bogus/);
  assert.throws(() => settingsOf({ 'centralized-scheduler': true }, {}), /not supported/);
});

test.run();
