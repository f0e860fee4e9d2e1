/**
 * snapshot.ts: GNU tar snapshot files (format 2 as tar 1.34 writes them, 0/1 read) and the incremental rule.
 * Round trips use snapshot files made by the real GNU tar.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs/promises';
import { join } from 'node:path';
import { IntegrityError } from '../../engine/errors.js';
import {
  buildDumpdir, parseSnapshot, PreviousState, readDumpdir, serializeSnapshot, splitNs, type Snapshot,
} from '../../engine/archive/tar/snapshot.js';
import { describe, removeDir, run, tempDir } from '../helpers/peers.js';

test('a snapshot file written by GNU tar parses and serializes back byte for byte', async () => {
  const dir = await tempDir('snapshot');
  try {
    const src = join(dir, 'src');
    await fs.mkdir(join(src, 'sub/deeper'), { recursive: true });
    await fs.mkdir(join(src, 'empty'));
    await fs.writeFile(join(src, 'a.txt'), 'a');
    await fs.writeFile(join(src, 'sub/b.o'), 'b');
    await fs.writeFile(join(src, 'sub/héllo ✓'), 'c');
    const snap = join(dir, 'snap');
    const r = await run('tar', ['--create', `--listed-incremental=${snap}`, '--exclude=*.o', '-C', src, '-f', join(dir, 'a.tar'), '.']);
    assert.is(r.code, 0, describe(r));
    const bytes = await fs.readFile(snap);
    const s = parseSnapshot(bytes);
    assert.is(s.version, 2);
    assert.equal(s.directories.map((d) => d.name).sort(), ['.', './empty', './sub', './sub/deeper']);
    const root = s.directories.find((d) => d.name === '.')!;
    assert.equal(readDumpdir(root.dumpdir!), [
      { kind: 'Y', name: 'a.txt' }, { kind: 'D', name: 'empty' }, { kind: 'D', name: 'sub' },
    ]);
    const sub = s.directories.find((d) => d.name === './sub')!;
    assert.equal(readDumpdir(sub.dumpdir!).map((e) => e.kind + e.name), ['Nb.o', 'Ddeeper', 'Yhéllo ✓']);
    assert.equal(readDumpdir(s.directories.find((d) => d.name === './empty')!.dumpdir!), []);
    const st = await fs.stat(join(src, 'sub'), { bigint: true });
    assert.is(sub.ino, st.ino);
    assert.is(sub.dev, st.dev);
    assert.ok(serializeSnapshot(s).equals(bytes), 'serialize(parse(x)) === x');
  } finally {
    await removeDir(dir);
  }
});

test('serializeSnapshot writes the exact format 2 layout', () => {
  const s: Snapshot = {
    version: 2,
    timeNs: 1_700_000_000_123_456_789n,
    directories: [
      { nfs: false, mtimeNs: 5_000_000_007n, dev: 2049n, ino: 42n, name: '.', dumpdir: buildDumpdir([{ kind: 'D', name: 'd' }, { kind: 'Y', name: 'f' }]) },
      { nfs: true, mtimeNs: 0n, dev: 7n, ino: 8n, name: './d', dumpdir: Buffer.alloc(0) },
    ],
  };
  const expected = 'GNU tar-1.34-2\n1700000000\x00123456789\x00'
    + '0\x005\x007\x002049\x0042\x00.\x00Dd\x00Yf\x00\x00\x00'
    + '1\x000\x000\x007\x008\x00./d\x00\x00\x00';
  assert.is(serializeSnapshot(s).toString('latin1'), expected);
  assert.equal(parseSnapshot(serializeSnapshot(s)), s);
});

test('times before 1970 split into a negative second and positive nanoseconds', () => {
  assert.equal(splitNs(-1n), { sec: -1n, nsec: 999_999_999n });
  assert.equal(splitNs(-1_000_000_000n), { sec: -1n, nsec: 0n });
  const s: Snapshot = { version: 2, timeNs: -1_500_000_000n, directories: [] };
  assert.ok(serializeSnapshot(s).toString('latin1').endsWith('\n-2\x00500000000\x00'));
  assert.is(parseSnapshot(serializeSnapshot(s)).timeNs, -1_500_000_000n);
});

test('formats 0 and 1 (tar < 1.16) are read, without dumpdirs', () => {
  const v1 = parseSnapshot(Buffer.from('GNU tar-1.15.1-1\n1700000000 123\n+1600000000 5 2049 1234 ./a\n1600000000 0 2049 99 ./b\\nc\n'));
  assert.is(v1.version, 1);
  assert.is(v1.timeNs, 1_700_000_000_000_000_123n);
  assert.equal(v1.directories.map((d) => [d.nfs, d.mtimeNs, d.dev, d.ino, d.name, d.dumpdir]), [
    [true, 1_600_000_000_000_000_005n, 2049n, 1234n, './a', null],
    [false, 1_600_000_000_000_000_000n, 2049n, 99n, './b\nc', null],
  ]);
  const v0 = parseSnapshot(Buffer.from('1700000000\n2049 1234 ./a\n'));
  assert.is(v0.version, 0);
  assert.is(v0.timeNs, 1_700_000_000_000_000_000n);
  assert.equal(v0.directories.map((d) => [d.dev, d.ino, d.name]), [[2049n, 1234n, './a']]);
});

test('malformed snapshot files are IntegrityErrors', () => {
  const bad = [
    'GNU tar-1.34-2\nabc\x000\x00',
    'GNU tar-1.34-2\n1\x00',
    'GNU tar-1.34-2\n1\x000\x000\x001\x000\x002049\x001\x00.\x00Yf\x00\x00', // no record terminator
    'GNU tar-1.34-9\n',
    'GNU tar\n',
  ];
  for (const b of bad) assert.throws(() => parseSnapshot(Buffer.from(b, 'latin1')), (e: unknown) => e instanceof IntegrityError, b);
});

test('an empty snapshot file means level 0', () => {
  const prev = new PreviousState(parseSnapshot(Buffer.alloc(0)));
  assert.ok(prev.changed(0n, 0n));
  assert.is(prev.classify('.', 1n, 2n, null).children, 'all');
});

test('PreviousState: new, moved and known directories; the time rule', () => {
  const s: Snapshot = {
    version: 2,
    timeNs: 1000n,
    directories: [
      { nfs: false, mtimeNs: 0n, dev: 1n, ino: 10n, name: '.', dumpdir: buildDumpdir([{ kind: 'Y', name: 'f' }]) },
      { nfs: false, mtimeNs: 0n, dev: 1n, ino: 11n, name: './old', dumpdir: null },
    ],
  };
  const prev = new PreviousState(s);
  const known = prev.classify('.', 1n, 10n, null);
  assert.is(known.children, 'changed');
  assert.ok(known.previous!.has('f'));
  assert.is(prev.classify('.', 9n, 10n, null).children, 'changed', '--no-check-device: another device is fine');
  assert.is(new PreviousState(s, true).classify('.', 9n, 10n, null).children, 'all', 'with device check');
  assert.is(prev.classify('.', 1n, 99n, null).children, 'all', 'another inode: new');
  assert.is(prev.classify('./new', 1n, 12n, 'changed').children, 'all', 'unknown name: new');
  assert.is(prev.classify('./old', 1n, 11n, 'changed').children, 'all', 'format 0/1 record: no dumpdir');
  assert.is(prev.classify('.', 1n, 10n, 'all').children, 'all', 'inside a new directory');
  assert.not.ok(prev.changed(999n, 999n));
  assert.ok(prev.changed(1000n, 0n), 'mtime at the snapshot time counts as changed');
  assert.ok(prev.changed(0n, 1500n), 'ctime alone (chmod, chown, rename) counts');
});

test('changedMs, on the ms times of a plain stat: never misses a change, re-dumps at most 2 us early', () => {
  assert.ok(new PreviousState(null).changedMs(0, 0), 'level 0');
  // a time of today, with sub-microsecond digits, in ns; the same instants as a plain stat gives them
  const t = 1_795_776_371_123_456_789n;
  const ms = (ns: bigint) => Number(ns / 1_000_000n) + Number(ns % 1_000_000n) / 1e6;
  const prev = new PreviousState({ version: 2, timeNs: t, directories: [] });
  for (const d of [0n, 1n, 250n, 999n, 1_000n, 123_456n, 10n ** 9n]) {
    assert.ok(prev.changedMs(ms(t + d), 0), `mtime ${d} ns after the snapshot time`);
    assert.ok(prev.changedMs(0, ms(t + d)), `ctime ${d} ns after the snapshot time`);
    assert.is(prev.changedMs(ms(t + d), 0), prev.changed(t + d, 0n));
  }
  assert.not.ok(prev.changedMs(ms(t - 3_000n), ms(t - 3_000n)), '3 us before: unchanged');
  assert.not.ok(prev.changedMs(ms(t - 10n ** 9n), 0), 'a second before: unchanged');
  assert.ok(prev.changedMs(ms(t - 1_000n), 0), 'within the 2 us margin: dumped again (harmless)');
  // far from 1970 a double's step is microseconds: still never a miss
  for (const far of [9_000_000_000_000_123_456_789n, -9_000_000_000_000_123_456_789n]) {
    const p = new PreviousState({ version: 2, timeNs: far, directories: [] });
    for (const d of [0n, 1n, 999n, 4_000n]) assert.ok(p.changedMs(Number(far + d) / 1e6, Number(far - 10n ** 9n) / 1e6), `${far} + ${d} ns`);
    const before = Number(far - 10n ** 9n) / 1e6;
    assert.not.ok(p.changedMs(before, before), `${far}: a second before`);
  }
});

test.run();
