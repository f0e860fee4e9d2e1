/**
 * exclude.ts against GNU tar 1.34's --exclude behaviour. The table was recorded by running
 * `tar -cf - -C ex --exclude=P . | tar tf -` on the tree below and noting which members disappeared.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { compileExcludes } from '../../engine/source/exclude.js';

/** The tree of the recording: every path (without './'), the root being ''. */
const TREE = ['', 'a', 'a/.hid', 'a/f1', 'b', 'b/c', 'b/c/f3', 'b/f2', 'st*r', 'star', 'x[y', 'x[y/q'];

/** pattern -> paths tar still archived (children of an excluded directory are gone with it). */
const KEPT: Array<[string, string[]]> = [
  ['b', ['', 'a', 'a/.hid', 'a/f1', 'st*r', 'star', 'x[y', 'x[y/q']],
  ['b/c', ['', 'a', 'a/.hid', 'a/f1', 'b', 'b/f2', 'st*r', 'star', 'x[y', 'x[y/q']],
  ['./b', ['', 'a', 'a/.hid', 'a/f1', 'st*r', 'star', 'x[y', 'x[y/q']],
  ['*.o', TREE],
  ['a?f1', ['', 'a', 'a/.hid', 'b', 'b/c', 'b/c/f3', 'b/f2', 'st*r', 'star', 'x[y', 'x[y/q']],
  ['[ab]', ['', 'st*r', 'star', 'x[y', 'x[y/q']],
  ['\\*', TREE],
  ['st\\*r', ['', 'a', 'a/.hid', 'a/f1', 'b', 'b/c', 'b/c/f3', 'b/f2', 'star', 'x[y', 'x[y/q']],
  ['ex/b', TREE],
  ['f*', ['', 'a', 'a/.hid', 'b', 'b/c', 'st*r', 'star', 'x[y', 'x[y/q']],
  ['*/f1', ['', 'a', 'a/.hid', 'b', 'b/c', 'b/c/f3', 'b/f2', 'st*r', 'star', 'x[y', 'x[y/q']],
  ['b/*', ['', 'a', 'a/.hid', 'a/f1', 'b', 'st*r', 'star', 'x[y', 'x[y/q']],
  ['x[[]y', ['', 'a', 'a/.hid', 'a/f1', 'b', 'b/c', 'b/c/f3', 'b/f2', 'st*r', 'star']],
  ['.', []],
  ['./', TREE],
  ['*', []],
  ['c/f3', ['', 'a', 'a/.hid', 'a/f1', 'b', 'b/c', 'b/f2', 'st*r', 'star', 'x[y', 'x[y/q']],
  ['/f3', TREE],
  ['f[!1]', ['', 'a', 'a/.hid', 'a/f1', 'b', 'b/c', 'st*r', 'star', 'x[y', 'x[y/q']],
  ['f[^1]', ['', 'a', 'a/.hid', 'a/f1', 'b', 'b/c', 'st*r', 'star', 'x[y', 'x[y/q']],
  ['.hid', ['', 'a', 'a/f1', 'b', 'b/c', 'b/c/f3', 'b/f2', 'st*r', 'star', 'x[y', 'x[y/q']],
  ['*hid', ['', 'a', 'a/f1', 'b', 'b/c', 'b/c/f3', 'b/f2', 'st*r', 'star', 'x[y', 'x[y/q']],
  ['a/', TREE],
  ['b*', ['', 'a', 'a/.hid', 'a/f1', 'st*r', 'star', 'x[y', 'x[y/q']],
];

/** kept walks TREE like tar: an excluded directory hides everything below it. */
function kept(patterns: string[]): string[] {
  const excluded = compileExcludes(patterns);
  const gone: string[] = [];
  return TREE.filter((p) => {
    if (gone.some((g) => g === '' || p.startsWith(`${g}/`))) return false;
    if (excluded(p)) {
      gone.push(p);
      return false;
    }
    return true;
  });
}

for (const [pattern, expected] of KEPT) {
  test(`--exclude=${JSON.stringify(pattern)} keeps what GNU tar keeps`, () => {
    assert.equal(kept([pattern]), expected);
  });
}

test('several patterns combine', () => {
  assert.equal(kept(['b', 'st*']), ['', 'a', 'a/.hid', 'a/f1', 'x[y', 'x[y/q']);
});

test('no pattern, or empty patterns, exclude nothing', () => {
  assert.equal(kept([]), TREE);
  assert.equal(kept(['']), TREE);
});

test('wildcards match "/" and unicode characters as one character', () => {
  const ex = compileExcludes(['d?r/*.txt', 'caf?', 'x[[:digit:]]']);
  assert.ok(ex('a/dir/sub/x.txt'));
  assert.ok(ex('d/r/y.txt'));
  assert.ok(ex('café'));
  assert.ok(ex('😀/x7'));
  assert.not.ok(ex('xa'));
});

test('regex metacharacters in patterns are literal', () => {
  const ex = compileExcludes(['a+b(c).{1}|$', 'back\\\\slash']);
  assert.ok(ex('a+b(c).{1}|$'));
  assert.not.ok(ex('aab(c).{1}|$'));
  assert.ok(ex('back\\slash'));
});

test('an unterminated "[" is a literal, ranges and "]" first in a class work', () => {
  const ex = compileExcludes(['x[y', '[]]z', '[a-c]1']);
  assert.ok(ex('x[y'));
  assert.ok(ex(']z'));
  assert.ok(ex('b1'));
  assert.not.ok(ex('d1'));
});

test.run();
