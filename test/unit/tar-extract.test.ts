/**
 * Tests of the incremental extractor against the real GNU tar: the same level 0 and level 1 archives
 * (made by `tar --listed-incremental`) are restored by `tar --incremental --extract` and by extractTar,
 * and the two trees must be identical (content, type, mode, owner, mtime, link targets, hard-link
 * identity, sparse block usage).
 */
import { execFileSync } from 'node:child_process';
import {
  chmodSync, chownSync, closeSync, createReadStream, existsSync, ftruncateSync, linkSync, lstatSync, mkdirSync,
  mkdtempSync, openSync, readFileSync, readdirSync, readlinkSync, renameSync, rmSync, symlinkSync, truncateSync,
  unlinkSync, utimesSync, lutimesSync, writeFileSync, writeSync,
} from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { IntegrityError, StorageError } from '../../engine/errors.js';
import { extractTar, type ExtractOptions } from '../../engine/archive/tar/extract.js';
import { encodeHeader, END_OF_ARCHIVE, padding, type TarHeader } from '../../engine/archive/tar/header.js';
import { parseIdFile } from '../../engine/source/owners.js';

const isRoot = process.getuid?.() === 0;
const TAR_EXTRACT = ['--incremental', '--extract', '--ignore-zeros', '--overwrite', '--same-owner', '--preserve-permissions'];

function tmp(): string {
  return mkdtempSync(join(tmpdir(), 'floe-tarx-'));
}

function stream(path: string, chunk = 64 * 1024): AsyncIterable<Buffer> {
  return createReadStream(path, { highWaterMark: chunk });
}

async function* fromBuffer(buf: Buffer): AsyncIterable<Buffer> {
  yield buf;
}

/**
 * describe lists a tree: one line of facts per entry (atime excluded: tar sets it to the extraction time),
 * and hard-link groups by inode.
 */
function describe(root: string): { entries: Record<string, string>; links: string[] } {
  const entries: Record<string, string> = {};
  const byInode = new Map<number, string[]>();
  const walk = (rel: string) => {
    const abs = rel === '' ? root : join(root, rel);
    const st = lstatSync(abs);
    let what: string;
    if (st.isDirectory()) what = 'dir';
    else if (st.isSymbolicLink()) what = `link->${readlinkSync(abs)}`;
    else if (st.isFile()) {
      // Exact block counts vary with ext4's delayed allocation and extent-tree blocks: compare the class.
      const holey = st.blocks * 512 < st.size / 2;
      what = `file ${st.size} ${createHash('sha256').update(readFileSync(abs)).digest('hex').slice(0, 16)}${holey ? ' holey' : ''}`;
      if (st.nlink > 1) byInode.set(st.ino, [...(byInode.get(st.ino) ?? []), rel]);
    } else if (st.isFIFO()) what = 'fifo';
    else if (st.isCharacterDevice()) what = `chr ${st.rdev}`;
    else if (st.isBlockDevice()) what = `blk ${st.rdev}`;
    else what = 'other';
    const mtime = ` mtime=${Math.floor(st.mtimeMs / 1000)}`;
    entries[rel || '.'] = `${what} mode=${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid}${mtime}`;
    if (st.isDirectory()) for (const n of readdirSync(abs).sort()) walk(rel === '' ? n : `${rel}/${n}`);
  };
  walk('');
  return { entries, links: [...byInode.values()].map((g) => g.sort().join(' = ')).sort() };
}

/** stamp gives each path (relative to root) its own old mtime, so time restoration is really compared. */
function stamp(root: string, rels: string[], base: number): void {
  rels.forEach((rel, i) => {
    const abs = rel === '' ? root : join(root, rel);
    const t = base + i * 3600;
    if (lstatSync(abs).isSymbolicLink()) lutimesSync(abs, t, t); else utimesSync(abs, t, t);
  });
}

/** everything lists a tree's paths, deepest first (so stamping a child does not change its directory). */
function everything(root: string): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    const abs = rel === '' ? root : join(root, rel);
    if (lstatSync(abs).isDirectory()) for (const n of readdirSync(abs).sort()) walk(rel === '' ? n : `${rel}/${n}`);
    out.push(rel);
  };
  walk('');
  return out;
}

/** buildLevel0 makes a source tree exercising every member type. */
function buildLevel0(src: string): void {
  mkdirSync(join(src, 'dir1/inner'), { recursive: true });
  mkdirSync(join(src, 'keep'));
  mkdirSync(join(src, 'becomes-file'));
  writeFileSync(join(src, 'becomes-file/x'), 'x');
  writeFileSync(join(src, 'becomes-dir'), 'f');
  writeFileSync(join(src, 'dir1/f'), 'f in dir1');
  writeFileSync(join(src, 'dir1/inner/g'), 'g'.repeat(5000));
  writeFileSync(join(src, 'keep/k'), 'k');
  writeFileSync(join(src, 'keep/unchanged'), 'same');
  writeFileSync(join(src, 'to-rename'), 'rename me');
  writeFileSync(join(src, 'to-change'), 'v1');
  writeFileSync(join(src, 'suid'), '#!/bin/sh\n');
  chmodSync(join(src, 'suid'), 0o4755);
  chmodSync(join(src, 'keep'), 0o750);
  const longDir = join(src, 'ü'.repeat(70));
  mkdirSync(longDir);
  writeFileSync(join(longDir, 'ñ'.repeat(60) + '.txt'), 'unicode long name');
  symlinkSync('dir1/f', join(src, 'sym'));
  symlinkSync('/nonexistent/' + 't'.repeat(120), join(src, 'sym-long'));
  linkSync(join(src, 'keep/k'), join(src, 'hard-k'));
  execFileSync('mkfifo', [join(src, 'fifo')]);
  if (isRoot) {
    execFileSync('mknod', [join(src, 'null-dev'), 'c', '1', '3']);
    writeFileSync(join(src, 'owned-numeric'), 'n');
    chownSync(join(src, 'owned-numeric'), 4321, 4322);
    writeFileSync(join(src, 'owned-daemon'), 'd');
    chownSync(join(src, 'owned-daemon'), 1, 1);
  }
  const fd = openSync(join(src, 'sparse'), 'w');
  ftruncateSync(fd, 256 << 20);
  for (let i = 1; i <= 6; i++) writeSync(fd, Buffer.from(`chunk${i}`), 0, 6, i * (40 << 20));
  closeSync(fd);
  stamp(src, everything(src), 1_500_000_000);
}

/** changeForLevel1 deletes, renames, changes and adds entries (including a renamed directory). */
function changeForLevel1(src: string): void {
  renameSync(join(src, 'dir1'), join(src, 'dir2'));
  renameSync(join(src, 'to-rename'), join(src, 'renamed'));
  unlinkSync(join(src, 'keep/k'));
  writeFileSync(join(src, 'keep/new'), 'new in keep');
  writeFileSync(join(src, 'to-change'), 'version 2, longer');
  unlinkSync(join(src, 'sym'));
  // The new directory is made while the old one still exists: were it to reuse the removed directory's
  // inode, GNU tar would rightly take it for a rename (a flaky failure, depending on the filesystem).
  unlinkSync(join(src, 'becomes-dir'));
  mkdirSync(join(src, 'becomes-dir'));
  rmSync(join(src, 'becomes-file'), { recursive: true });
  writeFileSync(join(src, 'becomes-file'), 'now a file');
  writeFileSync(join(src, 'becomes-dir/inside'), 'i');
  writeFileSync(join(src, 'dir2/inner/g2'), 'added under the renamed dir');
  linkSync(join(src, 'to-change'), join(src, 'hard-change'));
  truncateSync(join(src, 'sparse'), 300 << 20);
  stamp(src, ['keep/new', 'to-change', 'becomes-file', 'becomes-dir/inside', 'becomes-dir', 'dir2/inner/g2', 'dir2/inner', 'keep', ''], 1_600_000_000);
}

async function ours(archive: string, target: string, chunk?: number, extra: Partial<ExtractOptions> = {}) {
  const warnings: string[] = [];
  const r = await extractTar(stream(archive, chunk), { target, incremental: true, progress: { onWarning: (m) => warnings.push(m) }, ...extra });
  return { ...r, warnings };
}

test('level 0 + level 1 restore matches GNU tar --incremental --extract', async () => {
  const dir = tmp();
  try {
    const src = join(dir, 'src');
    mkdirSync(src);
    buildLevel0(src);
    const snap = join(dir, 'snap');
    const create = (out: string) => execFileSync('tar', ['--create', '--format=gnu', `--listed-incremental=${snap}`, '--sparse', '-f', out, '-C', src, '.']);
    create(join(dir, 'l0.tar'));
    // File times come from the kernel's coarse clock (one tick, up to 10 ms, behind the wall clock GNU tar
    // stamps its snapshot with): changes made within a tick of level 0 can look older than it and GNU tar
    // would rightly skip them. Wait past a tick so level 1 sees them (this was a flaky failure).
    await new Promise((r) => setTimeout(r, 50));
    changeForLevel1(src);
    create(join(dir, 'l1.tar'));
    const l1 = readFileSync(join(dir, 'l1.tar')).toString('latin1');
    assert.ok(l1.includes('R./dir1\0T./dir2\0'), 'level 1 records the directory rename');

    const real = join(dir, 'real');
    const mine = join(dir, 'mine');
    mkdirSync(real);
    // Pre-existing content that level 0's root dumpdir must purge, in both targets.
    for (const t of [real, mine]) {
      mkdirSync(join(t, 'stale-dir/deep'), { recursive: true });
      writeFileSync(join(t, 'stale-file'), 'stale');
      symlinkSync('/nonexistent', join(t, 'stale-dangling'));
    }
    for (const level of ['l0.tar', 'l1.tar']) {
      execFileSync('tar', [...TAR_EXTRACT, '-C', real, '-f', join(dir, level)], { cwd: dir });
      const r = await ours(join(dir, level), mine, level === 'l0.tar' ? 64 * 1024 : 1000);
      assert.equal(r.warnings, [], `${level}: no warnings`);
      assert.ok(r.files > 5);
      const a = describe(real);
      const b = describe(mine);
      assert.equal(b.entries, a.entries, `${level}: same tree as GNU tar`);
      assert.equal(b.links, a.links, `${level}: same hard links`);
    }
    const after = describe(mine);
    assert.ok(after.entries['dir2/inner/g2'] && !after.entries.dir1, 'directory renamed');
    assert.ok(!after.entries['keep/k'] && after.entries['keep/unchanged'], 'deleted file purged, unchanged kept');
    assert.ok(!after.entries['stale-file'] && !after.entries['stale-dir'] && !after.entries['stale-dangling']);
    const sparse = lstatSync(join(mine, 'sparse'));
    const realSparse = lstatSync(join(real, 'sparse'));
    assert.is(sparse.size, 300 << 20);
    assert.ok(sparse.blocks * 512 < 1 << 20, `sparse file keeps its holes (${sparse.blocks} blocks)`);
    assert.ok(Math.abs(sparse.blocks - realSparse.blocks) * 512 <= 64 * 1024, `${sparse.blocks} ~ ${realSparse.blocks} blocks`);
    if (isRoot) assert.is(lstatSync(join(mine, 'suid')).mode & 0o7777, 0o4755);
    assert.is(readdirSync(mine).filter((n) => n.startsWith('.floe-')).length, 0, 'no temporary files left');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** restoreBoth restores the levels with GNU tar and with extractTar, comparing the trees after each. */
async function restoreBoth(dir: string, levels: string[]): Promise<string> {
  const real = join(dir, 'real');
  const mine = join(dir, 'mine');
  mkdirSync(real);
  for (const level of levels) {
    // cwd: GNU tar 1.34 makes its rename-cycle stand-in (tar.XXXXXX) in its working directory, not under -C
    execFileSync('tar', [...TAR_EXTRACT, '-C', real, '-f', level], { cwd: dir });
    const r = await ours(level, mine, 777);
    assert.equal(r.warnings, [], `${level}: no warnings`);
    assert.equal(describe(mine), describe(real), `${level}: same tree as GNU tar`);
  }
  return mine;
}

test('directory rename cycle (X/R/T with a temporary directory) and nested renames', async () => {
  const dir = tmp();
  try {
    const src = join(dir, 'src');
    mkdirSync(join(src, 'a'), { recursive: true });
    mkdirSync(join(src, 'b'));
    mkdirSync(join(src, 'p/q'), { recursive: true });
    writeFileSync(join(src, 'a/fa'), 'A');
    writeFileSync(join(src, 'b/fb'), 'B');
    writeFileSync(join(src, 'p/q/fq'), 'Q');
    stamp(src, everything(src), 1_400_000_000);
    const snap = join(dir, 'snap');
    const create = (out: string) => execFileSync('tar', ['--create', '--format=gnu', `--listed-incremental=${snap}`, '-f', out, '-C', src, '.']);
    create(join(dir, 'l0.tar'));
    renameSync(join(src, 'a'), join(src, 't'));
    renameSync(join(src, 'b'), join(src, 'a'));
    renameSync(join(src, 't'), join(src, 'b'));
    renameSync(join(src, 'p'), join(src, 'p2'));
    renameSync(join(src, 'p2/q'), join(src, 'p2/q2'));
    create(join(dir, 'l1.tar'));
    assert.ok(readFileSync(join(dir, 'l1.tar')).includes(Buffer.from('X.\0')), 'level 1 uses a temporary directory');
    const mine = await restoreBoth(dir, [join(dir, 'l0.tar'), join(dir, 'l1.tar')]);
    assert.is(readFileSync(join(mine, 'a/fb'), 'utf8'), 'B');
    assert.is(readFileSync(join(mine, 'b/fa'), 'utf8'), 'A');
    assert.is(readFileSync(join(mine, 'p2/q2/fq'), 'utf8'), 'Q');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('dry run lists members and writes nothing', async () => {
  const dir = tmp();
  try {
    const src = join(dir, 'src');
    mkdirSync(join(src, 'sub'), { recursive: true });
    writeFileSync(join(src, 'sub/a'), 'a');
    execFileSync('tar', ['--create', '--format=gnu', `--listed-incremental=${join(dir, 'snap')}`, '-f', join(dir, 'a.tar'), '-C', src, '.']);
    const listed: string[] = [];
    const target = join(dir, 'out');
    const r = await extractTar(stream(join(dir, 'a.tar')), { target, incremental: true, dryRun: true, onList: (h) => listed.push(h.name) });
    assert.equal(listed, ['./', './sub/', './sub/a']);
    assert.is(r.files, 3);
    assert.not.ok(existsSync(target));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('truncated archive: IntegrityError and no partial file under its real name', async () => {
  const dir = tmp();
  try {
    const src = join(dir, 'src');
    mkdirSync(src);
    writeFileSync(join(src, 'a-small'), 'small');
    writeFileSync(join(src, 'b-big'), Buffer.alloc(1 << 20, 0x61));
    execFileSync('tar', ['--create', '--format=gnu', '-f', join(dir, 'a.tar'), '-C', src, '.']);
    const full = readFileSync(join(dir, 'a.tar'));
    const cut = join(dir, 'cut.tar');
    writeFileSync(cut, full.subarray(0, full.indexOf(Buffer.from('./b-big')) + 512 + 300_000));
    const target = join(dir, 'out');
    try {
      await extractTar(stream(cut, 4096), { target, incremental: true });
      assert.unreachable('must fail');
    } catch (err) {
      assert.ok(err instanceof IntegrityError, String(err));
      assert.match((err as Error).message, /truncated archive/);
    }
    assert.is(readFileSync(join(target, 'a-small'), 'utf8'), 'small');
    assert.not.ok(existsSync(join(target, 'b-big')), 'no half-written file');
    assert.equal(readdirSync(target).filter((n) => n.startsWith('.floe-')), [], 'temporary file removed');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

function member(h: Partial<TarHeader> & { name: string }, data = ''): Buffer {
  const body = Buffer.from(data);
  const full: TarHeader = {
    mode: 0o644, uid: 0, gid: 0, size: body.length, mtime: 1_700_000_000, type: '0', linkname: '',
    uname: 'root', gname: 'root', devmajor: 0, devminor: 0, ...h,
  };
  return Buffer.concat([encodeHeader(full), body, Buffer.alloc(padding(body.length))]);
}

test('hostile names: absolute, "..", writing through a symlink', async () => {
  const dir = tmp();
  try {
    const target = join(dir, 'out');
    const outside = join(dir, 'outside');
    mkdirSync(outside);
    const archive = Buffer.concat([
      member({ name: '/abs.txt' }, 'abs'),
      member({ name: './../escape.txt' }, 'escape'),
      member({ name: './evil', type: '2', linkname: outside }),
      member({ name: './evil/pwned' }, 'pwned'),
      member({ name: './hl', type: '1', linkname: '../../etc/passwd' }),
      END_OF_ARCHIVE,
    ]);
    const warnings: string[] = [];
    const r = await extractTar(fromBuffer(archive), { target, incremental: true, progress: { onWarning: (m) => warnings.push(m) } });
    assert.is(readFileSync(join(target, 'abs.txt'), 'utf8'), 'abs');
    assert.not.ok(existsSync(join(dir, 'escape.txt')));
    assert.equal(readdirSync(outside), []);
    assert.not.ok(existsSync(join(target, 'hl')));
    assert.ok(lstatSync(join(target, 'evil')).isSymbolicLink());
    assert.is(r.warnings, warnings.length);
    assert.is(warnings.length, 4, warnings.join('\n'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('overwrite: a file replaces a symlink, a directory replaces a file, and vice versa', async () => {
  const dir = tmp();
  try {
    const target = join(dir, 'out');
    mkdirSync(join(target, 'was-dir'), { recursive: true });
    writeFileSync(join(target, 'was-file'), 'old');
    writeFileSync(join(dir, 'victim'), 'do not touch');
    symlinkSync(join(dir, 'victim'), join(target, 'was-link'));
    symlinkSync(join(dir, 'planted'), join(target, 'was-dangling'));
    const archive = Buffer.concat([
      member({ name: './was-dir' }, 'now a file'),
      member({ name: './was-file/', type: '5', mode: 0o755 }),
      member({ name: './was-link' }, 'replaced the link'),
      member({ name: './was-dangling', mode: 0o640 }, 'replaced the dangling link'),
      END_OF_ARCHIVE,
    ]);
    await extractTar(fromBuffer(archive), { target, incremental: false });
    assert.is(readFileSync(join(target, 'was-dir'), 'utf8'), 'now a file');
    assert.ok(lstatSync(join(target, 'was-file')).isDirectory());
    assert.ok(lstatSync(join(target, 'was-link')).isFile());
    assert.is(readFileSync(join(dir, 'victim'), 'utf8'), 'do not touch');
    // a dangling link is replaced too, and nothing is created where it pointed
    assert.ok(lstatSync(join(target, 'was-dangling')).isFile());
    assert.is(readFileSync(join(target, 'was-dangling'), 'utf8'), 'replaced the dangling link');
    assert.is(lstatSync(join(target, 'was-dangling')).mode & 0o777, 0o640);
    assert.not.ok(existsSync(join(dir, 'planted')), 'nothing written through the link');
    assert.equal(readdirSync(target).filter((n) => n.startsWith('.floe-')), [], 'no temporary file left');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('owners: names known on this host win over numeric ids, as GNU tar does', async () => {
  if (!isRoot) return; // chown needs root
  const dir = tmp();
  try {
    const archive = Buffer.concat([
      member({ name: './', type: '5', mode: 0o755 }),
      member({ name: './by-name', uid: 5555, gid: 5556, uname: 'daemon', gname: 'daemon' }, 'n'),
      member({ name: './by-id', uid: 5555, gid: 5556, uname: 'no-such-user-floe', gname: 'no-such-group-floe' }, 'i'),
      member({ name: './setgid', mode: 0o2755, uid: 1, gid: 1, uname: '', gname: '' }, 's'),
      END_OF_ARCHIVE,
    ]);
    const file = join(dir, 'crafted.tar');
    writeFileSync(file, archive);
    const mine = await restoreBoth(dir, [file]);
    const st = lstatSync(join(mine, 'by-id'));
    assert.equal([st.uid, st.gid], [5555, 5556]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('parseIdFile: first entry wins, junk lines ignored', () => {
  const { byName, byId } = parseIdFile('root:x:0:0:root:/root:/bin/bash\n# c\nbad\ntoor:x:0:0::/:/bin/sh\nroot:x:7:7::/:\n+nis\n');
  assert.is(byName.get('root'), 0);
  assert.is(byName.get('toor'), 0);
  assert.is(byId.get(0), 'root');
  assert.is(byId.get(7), 'root');
  assert.is(byName.size, 2);
});

test('a target that cannot be made: the error, and the input given up (its producer stops)', async () => {
  const dir = tmp();
  try {
    writeFileSync(join(dir, 'file'), 'x');
    let stopped = false;
    async function* input(): AsyncGenerator<Buffer> {
      try {
        for (;;) yield Buffer.alloc(512);
      } finally {
        stopped = true;
      }
    }
    try {
      await extractTar(input(), { target: join(dir, 'file', 'under'), incremental: true });
      assert.unreachable('must fail');
    } catch (err) {
      assert.ok(err instanceof StorageError, String(err));
    }
    assert.ok(stopped, 'the input was given up, not left waiting');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('sparseAware makes holes for zero blocks of regular files', async () => {
  const dir = tmp();
  try {
    const data = Buffer.alloc(8 << 20);
    data.write('head', 0);
    data.write('tail', data.length - 4);
    const archive = Buffer.concat([member({ name: './z' }, ''), END_OF_ARCHIVE]);
    const body = Buffer.concat([
      encodeHeader({ name: './z', mode: 0o600, uid: 0, gid: 0, size: data.length, mtime: 1, type: '0', linkname: '', uname: '', gname: '', devmajor: 0, devminor: 0 }),
      data, END_OF_ARCHIVE,
    ]);
    assert.ok(archive.length > 0);
    const target = join(dir, 'out');
    await extractTar(fromBuffer(body), { target, incremental: false, sparseAware: true });
    const st = lstatSync(join(target, 'z'));
    assert.is(st.size, data.length);
    assert.ok(st.blocks * 512 <= 64 * 1024, `holes kept (${st.blocks} blocks)`);
    assert.ok(readFileSync(join(target, 'z')).equals(data));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
