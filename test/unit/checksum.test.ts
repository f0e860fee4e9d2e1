/**
 * Freezer's consistency checksum: floe's treeChecksum must equal what freezer/utils/checksum.py computes
 * on the same trees (run through Debian's python3 with python3-freezer), quirks included: raw readdir
 * order, the never-reset hasher, ignored links stopping the walk, the single-file name suffix, Python's
 * unicode-escape of path strings, fnmatch excludes.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs/promises';
import { join } from 'node:path';
import { checksumMatches, checksumTargetPath, pythonUnicodeEscape, treeChecksum } from '../../engine/source/checksum.js';
import { PYTHON, peerTest, removeDir, tempDir } from '../helpers/peers.js';
import { createTree, isRoot, standardTree } from '../helpers/tree.js';

interface Case {
  path: string;
  ignorelinks?: boolean;
  exclude?: string;
}

/**
 * PY_CHECKSUM does what freezer-agent's backup does: chdir to the directory (or the file's parent) and
 * checksum '.' (or the base name). Paths travel as bytes (surrogateescape) so any name works.
 */
const PY_CHECKSUM = `
import json, os, sys
from freezer.utils.checksum import CheckSum
out = []
for c in json.loads(sys.argv[1]):
    p = c['path']
    il = c.get('ignorelinks', True)
    ex = c.get('exclude', '')
    if os.path.isdir(p):
        os.chdir(p); out.append(CheckSum('.', ignorelinks=il, exclude=ex).compute())
    else:
        os.chdir(os.path.dirname(p)); out.append(CheckSum(os.path.basename(p), ignorelinks=il, exclude=ex).compute())
print(json.dumps(out))
`;

function pythonChecksums(cases: Case[]): string[] {
  const out = execFileSync(PYTHON, ['-c', PY_CHECKSUM, JSON.stringify(cases)], { encoding: 'utf8', timeout: 60_000 });
  return JSON.parse(out) as string[];
}

async function floeChecksums(cases: Case[]): Promise<string[]> {
  const results: string[] = [];
  for (const c of cases) results.push(await treeChecksum(c.path, { ignoreLinks: c.ignorelinks ?? true, exclude: c.exclude ?? '' }));
  return results;
}

async function assertSameAsFreezer(cases: Case[]): Promise<void> {
  const expected = pythonChecksums(cases);
  const actual = await floeChecksums(cases);
  cases.forEach((c, i) => assert.is(actual[i], expected[i], `${c.path} ignorelinks=${c.ignorelinks ?? true} exclude=${c.exclude ?? ''}`));
}

const py = peerTest(test, 'python-freezer');
let root = '';

test('setup', async () => {
  root = await tempDir('checksum');
});

py('standard tree, links ignored (Freezer default) and followed', async () => {
  const dir = join(root, 'standard');
  await createTree(dir, standardTree({ big: 1300 * 1024 }));
  await assertSameAsFreezer([{ path: dir }, { path: dir, ignorelinks: false }]);
});

py('ignored symlinked directory stops the walk; followed one is walked', async () => {
  const dir = join(root, 'linkdirs');
  await createTree(dir, {
    'a/one': '1',
    'b/two': '2',
    'c/three': '3',
    'z/four': '4',
    'dirlink': { type: 'symlink', target: 'b' },
    'filelink': { type: 'symlink', target: 'a/one' },
  });
  await assertSameAsFreezer([{ path: dir }, { path: dir, ignorelinks: false }]);
});

py('empty directory and single files get the name suffix', async () => {
  const empty = join(root, 'empty');
  await fs.mkdir(empty);
  const dir = join(root, 'single');
  await createTree(dir, {
    'file.txt': 'single file\n',
    'empty-file': '',
    'link.txt': { type: 'symlink', target: 'file.txt' },
  });
  const cases: Case[] = [
    { path: empty },
    { path: join(dir, 'file.txt') },
    { path: join(dir, 'empty-file') },
    { path: join(dir, 'link.txt') },
    { path: join(dir, 'link.txt'), ignorelinks: false },
  ];
  await assertSameAsFreezer(cases);
  const sum = await treeChecksum(join(dir, 'file.txt'));
  assert.ok(sum.endsWith('file.txt') && sum.length === 64 + 'file.txt'.length, sum);
  assert.ok((await treeChecksum(empty)).endsWith('.'));
});

py('names are hashed as Python escapes them', async () => {
  const dir = join(root, 'names');
  await fs.mkdir(dir);
  const names = ['tab\there', 'new\nline', 'back\\slash', 'quote\'"', 'del\x7f', 'ctl\x01', 'é', '€', '😀 emoji', 'ÿ'];
  for (const n of names) await fs.mkdir(join(dir, n));
  for (const n of names) await fs.writeFile(join(dir, n, 'f'), n);
  // Not UTF-8: Python sees surrogate escapes.
  const raw = Buffer.concat([Buffer.from(dir + '/'), Buffer.from([0x62, 0x61, 0x64, 0xff, 0xc3, 0x28, 0xed, 0xa0, 0x80])]);
  await fs.mkdir(raw);
  await fs.writeFile(Buffer.concat([raw, Buffer.from('/x')]), 'x');
  await assertSameAsFreezer([{ path: dir }]);
});

py('special files hash as their path; fifos are never opened', async () => {
  const dir = join(root, 'special');
  await createTree(dir, {
    'fifo': { type: 'fifo' },
    'dangling': { type: 'symlink', target: 'nowhere' },
    'dev': { type: 'chardev', major: 1, minor: 3 },
    'sub/file': 'x',
  });
  await assertSameAsFreezer([{ path: dir }, { path: dir, ignorelinks: false }]);
});

py('exclude patterns match any path component', async () => {
  const dir = join(root, 'exclude');
  await createTree(dir, {
    'keep.txt': 'k',
    'drop.log': 'd',
    'cache/inside.txt': 'c',
    'sub/cache/x': 'x',
    'sub/y.log': 'y',
    'sub/z[1].txt': 'z',
  });
  await assertSameAsFreezer(['*.log', 'cache', 'sub', '[!k]*.txt', 'z[1].txt', '?eep.txt'].map((exclude) => ({ path: dir, exclude })));
});

py('a big file is streamed and hashes as in Freezer', async () => {
  const dir = join(root, 'big');
  await createTree(dir, { 'big.bin': { type: 'file', random: 3 * 1024 * 1024 + 17, seed: 9 } });
  await assertSameAsFreezer([{ path: dir }, { path: join(dir, 'big.bin') }]);
});

test('checksumMatches compares the 64 hex characters only', () => {
  const h = 'a'.repeat(64);
  assert.ok(checksumMatches(h, h));
  assert.ok(checksumMatches(h + 'file.txt', h));
  assert.ok(checksumMatches(h + 'file.txt', h + 'file.txt'));
  assert.ok(checksumMatches(h.toUpperCase(), h));
  assert.not.ok(checksumMatches(h, 'b'.repeat(64)));
  assert.not.ok(checksumMatches(h, ''));
});

test('checksumTargetPath joins the single-file name', () => {
  const h = 'a'.repeat(64);
  assert.is(checksumTargetPath('/r', h), '/r');
  assert.is(checksumTargetPath('/r', h + 'file.txt'), '/r/file.txt');
});

test('a single-file checksum verifies against the restored file', async () => {
  const dir = join(root, 'restore-single');
  await createTree(dir, { 'src/file.txt': 'content\n', 'restored/file.txt': 'content\n', 'other/file.txt': 'changed\n' });
  const expected = await treeChecksum(join(dir, 'src', 'file.txt'));
  const restored = await treeChecksum(checksumTargetPath(join(dir, 'restored'), expected));
  assert.ok(checksumMatches(expected, restored));
  const other = await treeChecksum(checksumTargetPath(join(dir, 'other'), expected));
  assert.not.ok(checksumMatches(expected, other));
});

test('a changed tree gives another checksum', async () => {
  const dir = join(root, 'changes');
  await createTree(dir, { 'a/b': 'one', 'c': 'two' });
  const before = await treeChecksum(dir);
  await fs.writeFile(join(dir, 'c'), 'tw0');
  assert.is.not(await treeChecksum(dir), before);
});

test('a missing path is a SourceError', async () => {
  try {
    await treeChecksum(join(root, 'does-not-exist'));
    assert.unreachable('should have thrown');
  } catch (err) {
    assert.is((err as { code?: string }).code, 'FLOE_ERR_SOURCE');
  }
});

test('an unreadable file is a SourceError', async () => {
  if (isRoot) return; // root reads everything
  const dir = join(root, 'unreadable');
  await createTree(dir, { 'secret': { type: 'file', content: 's', mode: 0o000 } });
  try {
    await treeChecksum(dir);
    assert.unreachable('should have thrown');
  } catch (err) {
    assert.is((err as { code?: string }).code, 'FLOE_ERR_SOURCE');
  }
});

test('pythonUnicodeEscape matches CPython on sample strings', () => {
  const cases: Array<[string | Buffer, string]> = [
    ['./a b', './a b'],
    ['back\\slash', 'back\\\\slash'],
    ['t\tn\nr\r', 't\\tn\\nr\\r'],
    ['\x00\x1f\x7f', '\\x00\\x1f\\x7f'],
    ['é', '\\xe9'],
    ['€', '\\u20ac'],
    ['😀', '\\U0001f600'],
    [Buffer.from([0x61, 0xff]), 'a\\udcff'],
  ];
  for (const [input, expected] of cases) {
    assert.is(pythonUnicodeEscape(Buffer.isBuffer(input) ? input : Buffer.from(input)).toString('latin1'), expected);
  }
});

test('cleanup', async () => {
  await removeDir(root);
});

test.run();
