/**
 * Store: the five record collections (backups, clients, jobs, actions, sessions) over Prisma, one code
 * path for all of them and for both providers.
 *
 * A record is Freezer's document (JSON text) plus promoted columns, its term rows (terms.ts) and a
 * version. Writes replace the record and its terms in one transaction. Updates are optimistic: they
 * name the version they read and change nothing when another request got there first (`update` returns
 * null; the caller re-reads and retries). Every method takes the project id: records never cross projects.
 */
import { apiError } from '../errors.js';
import { Db } from './client.js';
import { Filter, whereOf } from './filter.js';
import { TooManyTermsError, indexDocument } from './terms.js';

export type Kind = 'backup' | 'client' | 'job' | 'action' | 'session';

/** Columns promoted out of the document, per kind (everything else stays in `doc`). */
export interface Columns {
  status?: string;
  jobId?: string;
  userName?: string;
  timeStamp?: number;
  isCentral?: boolean;
  clientId?: string;
  sessionId?: string;
  /** backups: the natural identity (backups.ts identityOf), unique in a project */
  identity?: string;
}

export interface StoredRecord {
  id: string;
  projectId: string;
  userId: string;
  version: number;
  doc: Record<string, unknown>;
  status?: string;
  userName?: string;
}

export interface ListQuery {
  filter: Filter;
  limit: number;
  offset: number;
  /** backups only: time_stamp bounds, epoch seconds, inclusive */
  timeAfter?: number;
  timeBefore?: number;
  /** extra exact column conditions (an agent token bound to one client) */
  where?: Record<string, unknown>;
}

interface KindSpec {
  model: 'backup' | 'client' | 'job' | 'action' | 'session';
  term: 'backupTerm' | 'clientTerm' | 'jobTerm' | 'actionTerm' | 'sessionTerm';
  fk: 'backupId' | 'clientId' | 'jobId' | 'actionId' | 'sessionId';
  orderBy: Array<Record<string, 'asc' | 'desc'>>;
  select: Record<string, true>;
  /** filter keys answered by a column (filter.ts whereOf) */
  columns?: Record<string, string>;
}

const BASE_SELECT = { id: true, projectId: true, userId: true, version: true, doc: true } as const;

/** Listing orders: backups newest first (by time_stamp), the rest in creation order; id breaks ties. */
const KINDS: Record<Kind, KindSpec> = {
  backup: { model: 'backup', term: 'backupTerm', fk: 'backupId', orderBy: [{ timeStamp: 'desc' }, { id: 'asc' }], select: { ...BASE_SELECT, status: true, userName: true } },
  client: { model: 'client', term: 'clientTerm', fk: 'clientId', orderBy: [{ createdAt: 'asc' }, { id: 'asc' }], select: { ...BASE_SELECT } },
  job: { model: 'job', term: 'jobTerm', fk: 'jobId', orderBy: [{ createdAt: 'asc' }, { id: 'asc' }], select: { ...BASE_SELECT }, columns: { client_id: 'clientId' } },
  action: { model: 'action', term: 'actionTerm', fk: 'actionId', orderBy: [{ createdAt: 'asc' }, { id: 'asc' }], select: { ...BASE_SELECT } },
  session: { model: 'session', term: 'sessionTerm', fk: 'sessionId', orderBy: [{ createdAt: 'asc' }, { id: 'asc' }], select: { ...BASE_SELECT } },
};

/** The Prisma delegates are typed per model; this store drives them generically. */
type Delegate = {
  findUnique(a: unknown): Promise<any>;
  findMany(a: unknown): Promise<any[]>;
  create(a: unknown): Promise<unknown>;
  updateMany(a: unknown): Promise<{ count: number }>;
  deleteMany(a: unknown): Promise<{ count: number }>;
  createMany(a: unknown): Promise<{ count: number }>;
  upsert(a: unknown): Promise<unknown>;
};
type Tx = Pick<Db, 'backup' | 'client' | 'job' | 'action' | 'session' | 'backupTerm' | 'clientTerm' | 'jobTerm' | 'actionTerm' | 'sessionTerm'>;

export class Collection {
  readonly kind: Kind;
  #db: Db;
  #spec: KindSpec;

  constructor(db: Db, kind: Kind) {
    this.kind = kind;
    this.#db = db;
    this.#spec = KINDS[kind];
  }

  #model(tx: Tx = this.#db): Delegate {
    return tx[this.#spec.model] as unknown as Delegate;
  }

  #terms(tx: Tx = this.#db): Delegate {
    return tx[this.#spec.term] as unknown as Delegate;
  }

  async get(projectId: string, id: string): Promise<StoredRecord | null> {
    const row = await this.#model().findUnique({ where: { projectId_id: { projectId, id } }, select: this.#spec.select });
    return row ? toRecord(row) : null;
  }

  async list(projectId: string, q: ListQuery): Promise<StoredRecord[]> {
    const where: Record<string, unknown> = { ...whereOf(projectId, q.filter, this.#spec.columns), ...(q.where ?? {}) };
    if (q.timeAfter !== undefined || q.timeBefore !== undefined) {
      where.timeStamp = {
        ...(q.timeAfter !== undefined ? { gte: q.timeAfter } : {}),
        ...(q.timeBefore !== undefined ? { lte: q.timeBefore } : {}),
      };
    }
    const rows = await this.#model().findMany({ where, orderBy: this.#spec.orderBy, skip: q.offset, take: q.limit, select: this.#spec.select });
    return rows.map(toRecord);
  }

  /** create stores a new record; throws FLOE_API_ERR_EXISTS when the id is taken in the project. */
  async create(projectId: string, id: string, userId: string, doc: object, columns: Columns = {}): Promise<void> {
    const { terms, search } = index(doc);
    try {
      await this.#db.$transaction([
        this.#model().create({ data: { projectId, id, userId, doc: JSON.stringify(doc), search, ...dbColumns(columns) } }) as any,
        this.#terms().createMany({ data: terms.map((t) => ({ projectId, [this.#spec.fk]: id, ...t })) }) as any,
      ]);
    } catch (err) {
      if ((err as { code?: string })?.code === 'P2002') throw apiError('FLOE_API_ERR_EXISTS', this.kind, id);
      throw err;
    }
  }

  /** replace creates or overwrites a record (Freezer's POST /{resource}/{id}); returns the new version. */
  async replace(projectId: string, id: string, userId: string, doc: object, columns: Columns = {}): Promise<number> {
    const { terms, search } = index(doc);
    const data = { userId, doc: JSON.stringify(doc), search, ...dbColumns(columns) };
    return this.#db.$transaction(async (tx) => {
      const old = await this.#model(tx as Tx).findUnique({ where: { projectId_id: { projectId, id } }, select: { version: true } });
      const version = old ? old.version + 1 : 1;
      await this.#model(tx as Tx).upsert({
        where: { projectId_id: { projectId, id } },
        create: { projectId, id, ...data, version },
        update: { ...data, version },
      });
      await this.#replaceTerms(tx as Tx, projectId, id, terms);
      return version;
    });
  }

  /** update writes `doc` if the record is still at `version`; returns the new version, or null if not. */
  async update(projectId: string, id: string, version: number, userId: string, doc: object, columns: Columns = {}): Promise<number | null> {
    const { terms, search } = index(doc);
    return this.#db.$transaction(async (tx) => {
      const r = await this.#model(tx as Tx).updateMany({
        where: { projectId, id, version },
        data: { userId, doc: JSON.stringify(doc), search, ...dbColumns(columns), version: version + 1 },
      });
      if (r.count === 0) return null;
      await this.#replaceTerms(tx as Tx, projectId, id, terms);
      return version + 1;
    });
  }

  /** delete removes a record and its terms; false when there was none. */
  async delete(projectId: string, id: string): Promise<boolean> {
    const [, r] = await this.#db.$transaction([
      this.#terms().deleteMany({ where: { projectId, [this.#spec.fk]: id } }) as any,
      this.#model().deleteMany({ where: { projectId, id } }) as any,
    ]);
    return (r as { count: number }).count > 0;
  }

  async #replaceTerms(tx: Tx, projectId: string, id: string, terms: Array<{ key: string; value: string }>): Promise<void> {
    await this.#terms(tx).deleteMany({ where: { projectId, [this.#spec.fk]: id } });
    if (terms.length) await this.#terms(tx).createMany({ data: terms.map((t) => ({ projectId, [this.#spec.fk]: id, ...t })) });
  }
}

/** Store groups the collections of one database. */
export class Store {
  readonly backups: Collection;
  readonly clients: Collection;
  readonly jobs: Collection;
  readonly actions: Collection;
  readonly sessions: Collection;
  readonly db: Db;

  constructor(db: Db) {
    this.db = db;
    this.backups = new Collection(db, 'backup');
    this.clients = new Collection(db, 'client');
    this.jobs = new Collection(db, 'job');
    this.actions = new Collection(db, 'action');
    this.sessions = new Collection(db, 'session');
  }
}

function index(doc: object): ReturnType<typeof indexDocument> {
  try {
    return indexDocument(doc);
  } catch (err) {
    if (err instanceof TooManyTermsError) throw apiError('FLOE_API_ERR_TOO_COMPLEX', err.message);
    throw err;
  }
}

function dbColumns(c: Columns): Record<string, unknown> {
  const out: Record<string, unknown> = { ...c };
  if (c.timeStamp !== undefined) out.timeStamp = BigInt(Math.trunc(c.timeStamp));
  return out;
}

function toRecord(row: any): StoredRecord {
  return {
    id: row.id, projectId: row.projectId, userId: row.userId, version: row.version,
    doc: JSON.parse(row.doc) as Record<string, unknown>,
    ...(row.status !== undefined ? { status: row.status } : {}),
    ...(row.userName !== undefined ? { userName: row.userName } : {}),
  };
}
