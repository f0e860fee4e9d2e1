/**
 * `floe api ...`: the API server and its administration.
 *
 *   floe api [--host H] [--port P] [--db URL] [--log-level L]    serve (default 127.0.0.1:9090)
 *   floe api token create --project P --role admin|member|reader|agent
 *                         [--client CLIENT_ID] [--user NAME] [--description TEXT] [--db URL]
 *   floe api token list [--project P] [--db URL]
 *   floe api token revoke TOKEN_ID [--db URL]
 *   floe api migrate [--db URL]                                   apply pending migrations, then exit
 *
 * The database is `--db`, else DATABASE_URL, else `$FLOE_HOME/floe.db` (default ~/.floe/floe.db),
 * created and migrated on first use. `token create` prints the new token alone on stdout (capture it:
 * it is shown once, only its hash is kept); everything else it says goes to stderr.
 */
import { UsageError } from '../engine/errors.js';
import { PROJECT_RE, ROLES, Role, createToken, listTokens, revokeToken } from './auth.js';
import { openDatabase } from './db/client.js';
import { describeDb, resolveDb } from './db/url.js';
import { DEFAULT_HOST, DEFAULT_PORT, serve } from './server.js';
import { CLIENT_ID_PATTERN } from './schemas/common.js';

const HELP = `floe api: the freezer-api v2 compatible REST API

  floe api [--host H] [--port P] [--db URL] [--log-level LEVEL]
      Serve the API (default ${DEFAULT_HOST}:${DEFAULT_PORT}). OpenAPI at /docs, metrics at /metrics.
  floe api token create --project P --role admin|member|reader|agent [--client CLIENT_ID]
                        [--user NAME] [--description TEXT] [--db URL]
      Make a token; it is printed once, alone on stdout. --client binds an agent token to one client.
  floe api token list [--project P] [--db URL]
  floe api token revoke TOKEN_ID [--db URL]
  floe api migrate [--db URL]

The database: --db URL (postgres://user:password@host/db, or a SQLite file), else DATABASE_URL, else
$FLOE_HOME/floe.db (default ~/.floe/floe.db). Prefer DATABASE_URL for a URL with a password: process
arguments are visible to every user.
`;

interface Parsed {
  flags: Record<string, string | boolean>;
  positional: string[];
}

const VALUE_FLAGS = new Set(['host', 'port', 'db', 'log-level', 'project', 'role', 'client', 'user', 'description', 'pool-size']);

function parse(argv: readonly string[]): Parsed {
  const flags: Record<string, string | boolean> = {};
  const positional: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--help' || a === '-h') { flags.help = true; continue; }
    if (!a.startsWith('--')) { positional.push(a); continue; }
    const eq = a.indexOf('=');
    const name = eq > 0 ? a.slice(2, eq) : a.slice(2);
    if (!VALUE_FLAGS.has(name)) throw new UsageError(`unknown option --${name} for floe api (see floe api --help)`);
    const value = eq > 0 ? a.slice(eq + 1) : argv[++i];
    if (value === undefined) throw new UsageError(`option --${name} needs a value`);
    flags[name] = value;
  }
  return { flags, positional };
}

function str(p: Parsed, name: string): string | undefined {
  const v = p.flags[name];
  return typeof v === 'string' ? v : undefined;
}

/** runApiCommand runs `floe api ...` (argv after "api"); resolves to the exit code. */
export async function runApiCommand(argv: readonly string[], signal: AbortSignal): Promise<number> {
  const p = parse(argv);
  if (p.flags.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const [cmd, sub, ...rest] = p.positional;
  const target = resolveDb(str(p, 'db'));
  if (cmd === undefined) {
    const port = Number(str(p, 'port') ?? DEFAULT_PORT);
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`--port must be 0..65535, got '${str(p, 'port')}'`);
    const poolSize = str(p, 'pool-size') === undefined ? undefined : Number(str(p, 'pool-size'));
    await serve({ host: str(p, 'host') ?? DEFAULT_HOST, port, db: target, logLevel: str(p, 'log-level'), poolSize }, signal);
    return 0;
  }
  if (cmd === 'migrate' && sub === undefined) {
    const db = await openDatabase(target);
    await db.close();
    process.stderr.write(db.applied.length ? `applied ${db.applied.join(', ')} to ${describeDb(target)}\n` : `${describeDb(target)} is up to date\n`);
    return 0;
  }
  if (cmd !== 'token' || !['create', 'list', 'revoke'].includes(sub ?? '')) {
    throw new UsageError(`unknown command 'floe api ${p.positional.join(' ')}' (see floe api --help)`);
  }
  const db = await openDatabase(target);
  try {
    if (sub === 'create') return await tokenCreate(db.prisma, p);
    if (sub === 'list') return await tokenList(db.prisma, p);
    if (rest.length !== 1) throw new UsageError('usage: floe api token revoke TOKEN_ID');
    if (!(await revokeToken(db.prisma, rest[0]))) throw new UsageError(`no token with id '${rest[0]}'`);
    process.stderr.write(`token ${rest[0]} revoked (a running server forgets it within seconds)\n`);
    return 0;
  } finally {
    await db.close();
  }
}

async function tokenCreate(db: Parameters<typeof createToken>[0], p: Parsed): Promise<number> {
  const project = str(p, 'project');
  const role = str(p, 'role');
  if (!project || !PROJECT_RE.test(project)) throw new UsageError('--project is required: letters, digits, _ and - (at most 64)');
  if (!role || !(ROLES as readonly string[]).includes(role)) throw new UsageError(`--role is required: one of ${ROLES.join(', ')}`);
  const client = str(p, 'client');
  if (client !== undefined && (role !== 'agent' || !new RegExp(CLIENT_ID_PATTERN).test(client))) {
    throw new UsageError('--client binds an agent token (--role agent) to one client id ([project_]hostname)');
  }
  const user = str(p, 'user');
  if (user !== undefined && !/^[\w-]{1,64}$/.test(user)) throw new UsageError('--user: letters, digits, _ and - (at most 64)');
  const t = await createToken(db, { projectId: project, role: role as Role, clientId: client, userId: user, description: str(p, 'description') });
  process.stdout.write(`${t.secret}\n`);
  process.stderr.write(`token ${t.id} (project ${project}, role ${role}${client ? `, client ${client}` : ''}, user ${t.userId}): ` +
    'shown once, keep it secret; pass it with --token-file or FLOE_TOKEN\n');
  return 0;
}

async function tokenList(db: Parameters<typeof listTokens>[0], p: Parsed): Promise<number> {
  const rows = await listTokens(db, str(p, 'project'));
  process.stdout.write('ID            PROJECT                          ROLE    CLIENT                USER                 CREATED\n');
  for (const t of rows) {
    process.stdout.write(`${t.id.padEnd(13)} ${t.projectId.padEnd(32)} ${t.role.padEnd(7)} ${(t.clientId || '-').padEnd(21)} ${t.userId.padEnd(20)} ${t.createdAt.toISOString()}\n`);
  }
  return 0;
}
