/**
 * Helpers shared by the resource plugins: the caller, list parameters, optimistic read-modify-write,
 * ids and time.
 */
import { randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { apiError } from './errors.js';
import { Principal } from './auth.js';
import { emptyFilter, parseFilter, parseQueryFilter } from './db/filter.js';
import { Collection, Columns, ListQuery, StoredRecord } from './db/store.js';
import { DEFAULT_LIMIT } from './schemas/common.js';

export type Doc = Record<string, unknown>;

/** principal is the authenticated caller (every /v2 route has a permission, so one is set). */
export function principal(req: FastifyRequest): Principal {
  if (!req.principal) throw apiError('FLOE_API_ERR_UNAUTHORIZED');
  return req.principal;
}

export function projectOf(req: FastifyRequest): string {
  return (req.params as { project_id: string }).project_id;
}

/** newId makes a record id: uuid4 as 32 hex digits, as freezer-api. */
export function newId(): string {
  return randomUUID().replace(/-/g, '');
}

/** nowSeconds is the app clock in epoch seconds (Freezer's time fields). */
export function nowSeconds(app: FastifyInstance): number {
  return Math.floor(app.clock() / 1000);
}

interface ListQs {
  limit?: number;
  offset?: number;
  match?: unknown;
  match_not?: unknown;
  time_after?: string;
  time_before?: string;
}

/** listQuery merges the body filter and the query-string filter (both apply) into one ListQuery. */
export function listQuery(req: FastifyRequest, withTime = false): ListQuery {
  const qs = req.query as ListQs;
  const body = (req.body ?? {}) as { match?: unknown; match_not?: unknown; time_after?: unknown; time_before?: unknown };
  const filter = parseFilter(body.match, body.match_not, emptyFilter());
  parseQueryFilter(qs.match, qs.match_not, filter);
  const q: ListQuery = { filter, limit: qs.limit ?? DEFAULT_LIMIT, offset: qs.offset ?? 0 };
  if (withTime) {
    const after = qs.time_after ?? body.time_after;
    const before = qs.time_before ?? body.time_before;
    if (after !== undefined) q.timeAfter = toEpoch(after, 'time_after');
    if (before !== undefined) q.timeBefore = toEpoch(before, 'time_before');
  }
  return q;
}

/** toEpoch reads epoch seconds or an ISO date (no zone = the server's local time, as Freezer). */
export function toEpoch(v: unknown, name: string): number {
  let t: number;
  if (typeof v === 'number') t = v;
  else if (/^\d+$/.test(String(v))) t = Number(v);
  else t = Date.parse(String(v)) / 1000;
  if (Number.isNaN(t)) throw apiError('FLOE_API_ERR_VALIDATION', `${name} must be epoch seconds or an ISO date`);
  // stored time_stamps are at most 1e15 (schemas/backups.ts): clamping keeps the query in BIGINT range
  return Math.min(Math.max(Math.floor(t), 0), 1e15);
}

/** MUTATE_ATTEMPTS: concurrent writers to one record retry this often before a 409. */
const MUTATE_ATTEMPTS = 8;

/**
 * mutate runs a read-modify-write of one record, retried when another request changed it in between.
 * `change` returns the new document and columns, or null for "nothing to write". It may run more than
 * once: it must not have side effects on other records that a retry would repeat.
 */
export async function mutate<T>(
  coll: Collection, projectId: string, id: string, userId: string,
  change: (rec: StoredRecord) => Promise<{ doc: Doc; columns?: Columns; out: T } | { out: T; doc?: undefined }>,
): Promise<{ version: number; out: T; doc?: Doc }> {
  for (let i = 0; i < MUTATE_ATTEMPTS; i++) {
    const rec = await coll.get(projectId, id);
    if (!rec) throw apiError('FLOE_API_ERR_NOT_FOUND', coll.kind, id);
    const r = await change(rec);
    if (!r.doc) return { version: rec.version, out: r.out };
    const v = await coll.update(projectId, id, rec.version, userId, r.doc, r.columns);
    if (v !== null) return { version: v, out: r.out, doc: r.doc };
  }
  throw apiError('FLOE_API_ERR_CONFLICT', coll.kind, id);
}

/** withoutKeys returns a shallow copy of a document without the given keys. */
export function withoutKeys(doc: Doc, keys: readonly string[]): Doc {
  const out: Doc = {};
  for (const [k, v] of Object.entries(doc)) if (!keys.includes(k)) out[k] = v;
  return out;
}

/** sameJson compares two JSON values (object key order does not matter). */
export function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (a === null || b === null || typeof a !== 'object' || typeof b !== 'object') return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) {
    const bb = b as unknown[];
    return a.length === bb.length && a.every((x, i) => sameJson(x, bb[i]));
  }
  const ka = Object.keys(a as Doc);
  const kb = Object.keys(b as Doc);
  return ka.length === kb.length && ka.every((k) => Object.prototype.hasOwnProperty.call(b, k) && sameJson((a as Doc)[k], (b as Doc)[k]));
}

/** agentClient is the client an agent token is bound to ("" when not an agent or not bound). */
export function agentClient(p: Principal): string {
  return p.role === 'agent' ? p.clientId : '';
}
