/**
 * Exclusion patterns with GNU tar's `--exclude` semantics (tar 1.34, default matching options).
 *
 * The model, checked against real `tar --exclude` runs:
 * - A pattern is a shell wildcard: `*` (any run of characters), `?` (one character), `[...]` (a class,
 *   negated by `!` or `^`, with ranges and `[:alpha:]`-style classes) and `\x` (a literal `x`).
 * - Wildcards match `/` too (`--wildcards-match-slash` is tar's default for exclusion): `a?f1` matches
 *   `a/f1`, `*.o` matches `b/c/x.o`.
 * - Patterns are not anchored: a pattern excludes a member when it matches the whole member name as tar
 *   sees it (`./b/c`, or `.` for the top directory) or any trailing part that starts right after a `/`
 *   (`b/c`, `c`). So `c`, `b/c` and `./b/c` all exclude `./b/c`, while `/c` and `ex/b/c` exclude nothing.
 * - A pattern must match a whole name or suffix: `\*` does not exclude `st*r`, `st\*r` does.
 * - The top directory itself is subject to exclusion: `*` or `.` exclude everything, as in tar.
 * An excluded directory is not descended into, so its contents never need testing.
 */

/** Excluder tells whether a path, relative to the backup root without a leading `./`, is excluded. */
export type Excluder = (relPath: string) => boolean;

/**
 * compileExcludes builds one matcher for all `patterns`. `relPath` is the member's path relative to the
 * root, without `./` (`sub/a.txt`); the root itself is `''` or `'.'`. The matcher is pure and cheap:
 * one regular-expression test per call.
 */
export function compileExcludes(patterns: string[]): Excluder {
  const usable = patterns.filter((p) => p.length > 0);
  if (usable.length === 0) return () => false;
  const alternatives = usable.map(wildcardToRegex).join('|');
  // (^|/) tries the whole name and every suffix that starts right after a '/', as gnulib's
  // exclude_fnmatch does when EXCLUDE_ANCHORED is off.
  const re = new RegExp(`(?:^|/)(?:${alternatives})$`, 'su');
  return (relPath: string) => {
    const name = relPath === '' || relPath === '.' ? '.' : `./${relPath}`;
    return re.test(name);
  };
}

/** POSIX_CLASSES maps the `[:name:]` classes fnmatch knows to regex class bodies (Unicode-aware). */
const POSIX_CLASSES: Record<string, string> = {
  alpha: '\\p{L}',
  digit: '0-9',
  alnum: '\\p{L}\\p{Nd}',
  upper: '\\p{Lu}',
  lower: '\\p{Ll}',
  space: '\\s',
  blank: ' \\t',
  punct: '\\p{P}\\p{S}',
  xdigit: '0-9A-Fa-f',
  cntrl: '\\p{Cc}',
  print: '\\P{Cc}',
  graph: '\\p{L}\\p{M}\\p{N}\\p{P}\\p{S}',
};

const REGEX_SPECIAL = /[\\^$.*+?()[\]{}|/]/;

function escapeChar(ch: string): string {
  return REGEX_SPECIAL.test(ch) ? `\\${ch}` : ch;
}

function escapeClassChar(ch: string): string {
  return /[\\\]\[^-]/.test(ch) ? `\\${ch}` : ch;
}

/** wildcardToRegex translates one fnmatch pattern (no FNM_PATHNAME, no FNM_PERIOD) to a regex body. */
export function wildcardToRegex(pattern: string): string {
  const chars = Array.from(pattern); // code points, so '?' matches one character, not one UTF-16 unit
  let out = '';
  for (let i = 0; i < chars.length; i++) {
    const ch = chars[i];
    if (ch === '*') {
      while (chars[i + 1] === '*') i++;
      out += '.*';
    } else if (ch === '?') {
      out += '.';
    } else if (ch === '\\') {
      // A trailing backslash stands for itself.
      out += escapeChar(i + 1 < chars.length ? chars[++i] : '\\');
    } else if (ch === '[') {
      const cls = parseClass(chars, i);
      if (cls) {
        out += cls.regex;
        i = cls.end;
      } else {
        out += '\\['; // no closing ']': a literal '[' as fnmatch treats it
      }
    } else {
      out += escapeChar(ch);
    }
  }
  return out;
}

/** parseClass reads a bracket expression starting at chars[start] === '['; null when it is unterminated. */
function parseClass(chars: string[], start: number): { regex: string; end: number } | null {
  let i = start + 1;
  let negate = false;
  if (chars[i] === '!' || chars[i] === '^') {
    negate = true;
    i++;
  }
  let body = '';
  let first = true;
  while (i < chars.length) {
    const ch = chars[i];
    if (ch === ']' && !first) {
      // Only reversed ranges inside: the class matches nothing (or, negated, anything).
      if (body === '') return { regex: negate ? '.' : '(?!)', end: i };
      return { regex: `[${negate ? '^' : ''}${body}]`, end: i };
    }
    first = false;
    if (ch === '[' && chars[i + 1] === ':') {
      const close = chars.indexOf(':', i + 2);
      if (close > 0 && chars[close + 1] === ']') {
        const name = chars.slice(i + 2, close).join('');
        const cls = POSIX_CLASSES[name];
        if (cls !== undefined) {
          body += cls;
          i = close + 2;
          continue;
        }
      }
    }
    let lo = ch;
    if (ch === '\\' && i + 1 < chars.length) lo = chars[++i];
    if (chars[i + 1] === '-' && i + 2 < chars.length && chars[i + 2] !== ']') {
      let hi = chars[i + 2];
      i += 2;
      if (hi === '\\' && i + 1 < chars.length) hi = chars[++i];
      // A reversed range matches nothing in fnmatch; a regex would throw, so drop it.
      if (lo.codePointAt(0)! <= hi.codePointAt(0)!) body += `${escapeClassChar(lo)}-${escapeClassChar(hi)}`;
    } else {
      body += escapeClassChar(lo);
    }
    i++;
  }
  return null;
}
