/**
 * Auth: tokens, roles and the policy table.
 *
 * Every `/v2` request carries `X-Auth-Token`. A token is 32 random bytes (`floe_<base64url>`), printed
 * once by `floe api token create`; the database keeps only its SHA-256, so a stolen database file gives
 * no usable token. A token belongs to one project and has one role:
 *
 *   admin   everything in its project, including central clients (`is_central`)
 *   member  everything in its project but central clients (Freezer's `admin_or_owner`)
 *   reader  read only
 *   agent   what a node needs and nothing else: register its client, read its jobs, update their run
 *           status, start/end its session jobs, post backups and run reports. It cannot delete or rewrite anything.
 *           An agent token may be bound to one client_id; then it sees and touches that client's only.
 *
 * Unlike Keystone admins, no role reaches another project: Freezer's `get_all_projects` and central
 * clients visible to every project are not implemented (see docs/api.md).
 * A missing, unknown or revoked token gets 401 with no detail; a valid token on another project's URL,
 * or a role without the permission, gets 403.
 *
 * Lookups are cached for CACHE_TTL_MS, so a revoked token may work for up to that long.
 */
import { createHash, randomBytes } from 'node:crypto';
import { Db } from './db/client.js';

export const ROLES = ['admin', 'member', 'reader', 'agent'] as const;
export type Role = (typeof ROLES)[number];

/** Principal: who a request acts as. */
export interface Principal {
  tokenId: string;
  projectId: string;
  role: Role;
  /** agent tokens bound to one client: its client_id; else "" */
  clientId: string;
  /** recorded as user_id on what the request writes */
  userId: string;
}

const READ: readonly Role[] = ['admin', 'member', 'reader'];
const WRITE: readonly Role[] = ['admin', 'member'];
const WRITE_AGENT: readonly Role[] = ['admin', 'member', 'agent'];
const READ_AGENT: readonly Role[] = ['admin', 'member', 'reader', 'agent'];

/** POLICY: which roles hold each permission. Names are freezer-api's policy rules. */
export const POLICY = {
  'backups:get_all': READ,
  'backups:get': READ,
  'backups:create': WRITE_AGENT,
  'backups:update': WRITE,
  'backups:delete': WRITE,
  'clients:get_all': READ,
  'clients:get': READ,
  'clients:create': WRITE_AGENT,
  'clients:delete': WRITE,
  'jobs:get_all': READ_AGENT,
  'jobs:get': READ_AGENT,
  'jobs:create': WRITE,
  'jobs:update': WRITE_AGENT,
  'jobs:delete': WRITE,
  'jobs:event:create': WRITE,
  'actions:get_all': READ,
  'actions:get': READ,
  'actions:create': WRITE,
  'actions:update': WRITE,
  'actions:delete': WRITE,
  'sessions:get_all': READ,
  'sessions:get': READ,
  'sessions:create': WRITE,
  'sessions:update': WRITE,
  'sessions:delete': WRITE,
  'sessions:action:create': WRITE_AGENT,
  'sessions:job:add': WRITE,
  'sessions:job:remove': WRITE,
  /** floe's run reports (api/runs.ts): agents post them, for their own client's jobs only */
  'runs:create': WRITE_AGENT,
  'runs:get_all': READ,
  /** GET /v2/ and GET /auth/token: any valid token */
  'home:get': READ_AGENT,
} as const satisfies Record<string, readonly Role[]>;

export type Permission = keyof typeof POLICY;

export function allowed(role: Role, permission: Permission): boolean {
  return (POLICY[permission] as readonly Role[]).includes(role);
}

/** TOKEN_PREFIX marks floe tokens (secret scanners can find them). */
export const TOKEN_PREFIX = 'floe_';
/** PROJECT_RE: project ids as Keystone's (hex) and readable names. */
export const PROJECT_RE = /^[A-Za-z0-9_-]{1,64}$/;
/** Token secrets are 32 random bytes: 43 base64url characters after the prefix. */
const MAX_TOKEN_CHARS = 256;

export function hashToken(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex');
}

export interface NewToken {
  projectId: string;
  role: Role;
  clientId?: string;
  userId?: string;
  description?: string;
}

/** createToken stores a new token's hash and returns the secret (the only time it exists). */
export async function createToken(db: Db, t: NewToken): Promise<{ id: string; secret: string; userId: string }> {
  const id = randomBytes(6).toString('hex');
  const secret = TOKEN_PREFIX + randomBytes(32).toString('base64url');
  const userId = t.userId || `${t.role}-${id}`;
  await db.token.create({
    data: { id, hash: hashToken(secret), projectId: t.projectId, role: t.role, clientId: t.clientId ?? '', userId, description: t.description ?? '' },
  });
  return { id, secret, userId };
}

export interface TokenInfo {
  id: string;
  projectId: string;
  role: string;
  clientId: string;
  userId: string;
  description: string;
  createdAt: Date;
}

/** listTokens lists tokens (never their hashes). */
export async function listTokens(db: Db, projectId?: string): Promise<TokenInfo[]> {
  return db.token.findMany({
    where: projectId ? { projectId } : {},
    orderBy: [{ projectId: 'asc' }, { createdAt: 'asc' }],
    select: { id: true, projectId: true, role: true, clientId: true, userId: true, description: true, createdAt: true },
  });
}

export async function revokeToken(db: Db, id: string): Promise<boolean> {
  return (await db.token.deleteMany({ where: { id } })).count > 0;
}

/** CACHE_TTL_MS: how long a lookup (found or not) is reused; a poller's every request would hit the DB. */
export const CACHE_TTL_MS = 5_000;
/** CACHE_MAX bounds the cache (a flood of random tokens cannot grow it without limit). */
const CACHE_MAX = 10_000;

/** Authenticator resolves X-Auth-Token values to principals, with a short cache. */
export class Authenticator {
  #db: Db;
  #cache = new Map<string, { at: number; principal: Principal | null }>();
  #now: () => number;

  constructor(db: Db, now: () => number = Date.now) {
    this.#db = db;
    this.#now = now;
  }

  /** authenticate returns the token's principal, or null for a missing, malformed or unknown token. */
  async authenticate(header: string | string[] | undefined): Promise<Principal | null> {
    if (typeof header !== 'string' || header.length === 0 || header.length > MAX_TOKEN_CHARS) return null;
    const hash = hashToken(header);
    const hit = this.#cache.get(hash);
    const now = this.#now();
    if (hit && now - hit.at < CACHE_TTL_MS) return hit.principal;
    const row = await this.#db.token.findUnique({ where: { hash } });
    const principal: Principal | null = row && (ROLES as readonly string[]).includes(row.role)
      ? { tokenId: row.id, projectId: row.projectId, role: row.role as Role, clientId: row.clientId, userId: row.userId }
      : null;
    if (this.#cache.size >= CACHE_MAX) this.#cache.delete(this.#cache.keys().next().value as string);
    this.#cache.delete(hash);
    this.#cache.set(hash, { at: now, principal });
    return principal;
  }

  /** forget drops the cache (tests; after a revocation in the same process). */
  forget(): void {
    this.#cache.clear();
  }
}
