/**
 * Search filters: Freezer's `{"match": [{k: v}...], "match_not": [{k: v}...]}` turned into a Prisma
 * `where` (that is, SQL WHERE with indexed EXISTS / NOT EXISTS sub-queries on the term tables; see
 * terms.ts), never into a load-everything-and-filter loop.
 *
 *   match      [{k: v}]  every pair must be present somewhere in the document
 *   match_not  [{k: v}]  no pair may be present
 *   _all       "text"    free text: a value contains "text" (case-insensitive); in match_not: none does.
 *              freezer-api's SQL backend reads `_all` as a JSON list of {k: v}; floe does too when the
 *              text parses as such a list, else it is free text (what Freezer's web UI means by it).
 */
import { apiError } from '../errors.js';
import { likeSafe, termValue } from './terms.js';

export interface Filter {
  match: Array<[string, unknown]>;
  matchNot: Array<[string, unknown]>;
  /** lowercased free-text needles */
  text: string[];
  textNot: string[];
}

/** MAX_CONDITIONS bounds one request's sub-queries (each is an indexed lookup). */
export const MAX_CONDITIONS = 32;

/** MAX_TEXT bounds a free-text needle. */
export const MAX_TEXT = 256;

export const emptyFilter = (): Filter => ({ match: [], matchNot: [], text: [], textNot: [] });

/** parseFilter normalizes the match lists of a body or query ({k: v} alone is taken as [{k: v}]). */
export function parseFilter(match: unknown, matchNot: unknown, into: Filter = emptyFilter()): Filter {
  addPairs(match, into.match, into.text, 'match');
  addPairs(matchNot, into.matchNot, into.textNot, 'match_not');
  const n = into.match.length + into.matchNot.length + into.text.length + into.textNot.length;
  if (n > MAX_CONDITIONS) throw apiError('FLOE_API_ERR_BAD_FILTER', `more than ${MAX_CONDITIONS} conditions`);
  return into;
}

function addPairs(list: unknown, pairs: Array<[string, unknown]>, text: string[], name: string): void {
  if (list === undefined || list === null) return;
  const items = Array.isArray(list) ? list : [list];
  for (const item of items) {
    if (item === null || typeof item !== 'object' || Array.isArray(item)) {
      throw apiError('FLOE_API_ERR_BAD_FILTER', `${name} must be a list of {"key": value} objects`);
    }
    for (const [k, v] of Object.entries(item as Record<string, unknown>)) {
      if (JSON.stringify(v)?.includes('\\u0000') || k.includes('\0')) throw apiError('FLOE_API_ERR_BAD_FILTER', 'NUL characters are not allowed');
      if (k !== '_all') {
        pairs.push([k, v]);
        continue;
      }
      if (typeof v !== 'string') throw apiError('FLOE_API_ERR_BAD_FILTER', `${name} _all must be a string`);
      if (v.length > MAX_TEXT) throw apiError('FLOE_API_ERR_BAD_FILTER', `_all text longer than ${MAX_TEXT} characters`);
      const asList = tryJsonList(v);
      if (asList) addPairs(asList, pairs, text, name);
      else if (v.trim() !== '') text.push(v.toLowerCase());
    }
  }
}

function tryJsonList(v: string): unknown[] | undefined {
  if (!v.trimStart().startsWith('[')) return undefined;
  try {
    const parsed: unknown = JSON.parse(v);
    return Array.isArray(parsed) && parsed.every((x) => x !== null && typeof x === 'object' && !Array.isArray(x)) ? parsed : undefined;
  } catch {
    return undefined;
  }
}

/** parseQueryFilter reads `?match=<JSON>&match_not=<JSON>` (a string, or repeated parameters). */
export function parseQueryFilter(match: unknown, matchNot: unknown, into: Filter): Filter {
  return parseFilter(fromQuery(match, 'match'), fromQuery(matchNot, 'match_not'), into);
}

function fromQuery(v: unknown, name: string): unknown {
  if (v === undefined) return undefined;
  const values = Array.isArray(v) ? v : [v];
  const out: unknown[] = [];
  for (const s of values) {
    try {
      const parsed: unknown = JSON.parse(String(s));
      out.push(...(Array.isArray(parsed) ? parsed : [parsed]));
    } catch {
      throw apiError('FLOE_API_ERR_BAD_FILTER', `the ${name} parameter must be JSON, e.g. ${name}=[{"client_id":"node1"}]`);
    }
  }
  return out;
}

/**
 * whereOf is the Prisma where clause of a filter, for any of the five record models. `columns` maps
 * filter keys to promoted columns that answer a string `match` without the term table (a job's
 * top-level client_id: the scheduler's poll becomes an index range on (projectId, clientId)).
 */
export function whereOf(projectId: string, f: Filter, columns: Record<string, string> = {}): Record<string, unknown> {
  const and: Record<string, unknown>[] = [];
  for (const [key, v] of f.match) {
    const column = columns[key];
    and.push(column && typeof v === 'string' ? { [column]: v } : { terms: { some: { key, value: termValue(v) } } });
  }
  for (const [key, v] of f.matchNot) and.push({ terms: { none: { key, value: termValue(v) } } });
  for (const t of f.text) and.push({ search: { contains: likeSafe(t) } });
  for (const t of f.textNot) and.push({ NOT: { search: { contains: likeSafe(t) } } });
  return and.length ? { projectId, AND: and } : { projectId };
}
