/**
 * Search terms: how a JSON document is indexed for Freezer's filters.
 *
 * freezer-api's `match: [{k: v}]` looks the key `k` up anywhere in the nested document (objects, and
 * objects inside lists) and compares the value for equality; `match_not` excludes equal values. floe
 * stores one term row per distinct (key, canonical value) found anywhere in the document, so a filter is
 * an indexed EXISTS / NOT EXISTS sub-query. One difference, on purpose: Freezer keeps only the last value
 * it meets for a key, floe matches any of them (a job matches `backup_name: x` if any action has it).
 *
 * Values are compared as canonical JSON (`"text"`, `5`, `true`, `null`, `[...]`), so types matter as in
 * Python: `5` does not match `"5"`. Object values are not matched whole (see indexable). Values longer than MAX_VALUE_CHARS are
 * stored as `sha256:<hex>` of their canonical JSON (index entries stay small; equality still works).
 *
 * `search` is the lowercased text of every scalar value, one per line, for the `_all` free-text filter,
 * with LIKE's special characters encoded (likeSafe).
 */
import { createHash } from 'node:crypto';

/** MAX_TERMS bounds the index rows one document may produce (a 1 MiB body could otherwise make 100k). */
export const MAX_TERMS = 2000;
/** MAX_VALUE_CHARS keeps index keys far below PostgreSQL's btree limit (about 2700 bytes). */
export const MAX_VALUE_CHARS = 200;
/** Keys longer than this are not indexed (no real document has them). */
export const MAX_KEY_CHARS = 200;

export interface Term {
  key: string;
  value: string;
}

/** canonical is JSON with object keys sorted, so equal values have equal text. */
export function canonical(v: unknown): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v) ?? 'null';
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  const o = v as Record<string, unknown>;
  return `{${Object.keys(o).sort().map((k) => `${JSON.stringify(k)}:${canonical(o[k])}`).join(',')}}`;
}

/** termValue is the stored form of a value: canonical JSON, or its hash when long. */
export function termValue(v: unknown): string {
  const c = canonical(v);
  return c.length <= MAX_VALUE_CHARS ? c : `sha256:${createHash('sha256').update(c).digest('hex')}`;
}

export class TooManyTermsError extends Error {}

/**
 * indexable: scalars and lists of scalars (`supported_actions: [...]`) are indexed as values; objects
 * and lists of objects are not (their keys are indexed one by one instead). This keeps indexing linear
 * in the document's size: a canonical form of every nested object would be quadratic.
 */
function indexable(v: unknown): boolean {
  if (v === null || typeof v !== 'object') return true;
  return Array.isArray(v) && v.length <= 64 && v.every((x) => x === null || typeof x !== 'object');
}

/** indexDocument returns the distinct terms and the free-text of a document; throws TooManyTermsError. */
export function indexDocument(doc: unknown): { terms: Term[]; search: string } {
  const seen = new Set<string>();
  const terms: Term[] = [];
  const text: string[] = [];
  const add = (key: string, value: unknown) => {
    if (key.length > MAX_KEY_CHARS || !indexable(value)) return;
    const t = { key, value: termValue(value) };
    const id = `${t.key}\u0000${t.value}`;
    if (seen.has(id)) return;
    seen.add(id);
    terms.push(t);
    if (terms.length > MAX_TERMS) throw new TooManyTermsError(String(MAX_TERMS));
  };
  const walk = (node: unknown) => {
    if (Array.isArray(node)) {
      for (const item of node) walk(item);
    } else if (node !== null && typeof node === 'object') {
      for (const [k, v] of Object.entries(node as Record<string, unknown>)) {
        add(k, v);
        walk(v);
      }
    } else if (typeof node === 'string' || typeof node === 'number' || typeof node === 'boolean') {
      text.push(String(node).toLowerCase());
    }
  };
  walk(doc);
  return { terms, search: likeSafe(text.join('\n')) };
}

/**
 * likeSafe encodes text so that LIKE '%x%' has no wildcard but the outer ones. Prisma's `contains` does
 * not escape `%` and `_`, and SQLite (no default escape character) and PostgreSQL (backslash) differ, so
 * the stored search text and the needle get the same encoding of the three special characters.
 */
export function likeSafe(s: string): string {
  return s.replace(/[\u0001-\u0003]/g, '').replace(/%/g, '\u0001').replace(/_/g, '\u0002').replace(/\\/g, '\u0003');
}
