/**
 * The `floe` command: subcommands, help, option merging, and the one place errors become exit codes.
 *
 *   floe backup|restore|info|admin|exec [options]     one agent action
 *   floe agent --action ACTION [options]               freezer-agent's form (what schedulers run)
 *   floe help [ACTION]                                 help
 *   floe api ...                                       the API server and its tokens (api/cli.ts)
 *   floe scheduler ...                                 this node's job scheduler (scheduler/cli.ts)
 *   floe start                                         API + web UI + scheduler on one machine (api/start.ts)
 * Any failure ends as one line `floe: <message>` on stderr and a documented exit code (docs/exit-codes.md).
 */
import { hostname as osHostname } from 'node:os';
import { resolve } from 'node:path';
import { ExitCode, FloeError, InterruptedError, UsageError } from '../errors.js';
import { runAction } from '../actions/index.js';
import { allowPoolPrestart, closeSharedPool, prewarmSharedPool } from '../pipeline/pool.js';
import { compressesInline } from '../transform/blocks.js';
import { prewarmSerialWorker } from '../pipeline/serial.js';
import { ACTIONS, ActionName } from './options.js';
import { AgentOptions, Raw, defaults, parseArgv, readIni } from './parse.js';
import { Output } from './output.js';
import { helpText, VERSION } from './help.js';

/** main runs the CLI and resolves to the process exit code. It never throws. */
export async function main(argv: string[]): Promise<number> {
  let out = new Output({ json: argv.includes('--json'), quiet: argv.includes('--quiet') || argv.includes('-q') });
  const controller = new AbortController();
  const onSignal = (sig: NodeJS.Signals) => controller.abort(new InterruptedError(`interrupted by ${sig}`));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  // The reader of our standard output went away: stop as if interrupted (bin/floe.js says why).
  const onStdoutError = (err: NodeJS.ErrnoException) => {
    if (err?.code === 'EPIPE' || err?.code === 'ERR_STREAM_DESTROYED') controller.abort(new InterruptedError("the reader of floe's output went away"));
  };
  process.stdout.on('error', onStdoutError);
  // Started with an IPC channel (`floe start` runs its scheduler so): the channel closes when the parent
  // ends, even by SIGKILL, which no signal handler of the parent's can pass on; then stop as if asked to.
  // A parent that died while this process was still loading left it disconnected already (`connected` is
  // false; undefined without a channel). Unreferenced: the channel alone must not keep this process running.
  const onParentGone = () => controller.abort(new InterruptedError('the parent process went away'));
  if (process.connected === false) onParentGone();
  else if (process.channel) {
    process.once('disconnect', onParentGone);
    process.channel.unref();
  }
  try {
    const [first, ...rest] = argv;
    if (first === undefined || first === '--help' || first === '-h' || first === 'help') {
      const topic = first === 'help' ? rest[0] : undefined;
      if (topic && !ACTIONS.includes(topic as ActionName) && topic !== 'agent') throw new UsageError(`no help for '${topic}'`);
      process.stdout.write(helpText(topic as ActionName | 'agent' | undefined));
      return first === undefined ? ExitCode.USAGE : ExitCode.OK;
    }
    if (first === '--version') {
      process.stdout.write(`floe ${VERSION}\n`);
      return ExitCode.OK;
    }
    if (first === 'api') {
      // the API server and its tokens (api/cli.ts); loaded only here, agent runs never load Prisma
      const { runApiCommand } = await import('../../api/cli.js');
      return await runApiCommand(rest, controller.signal);
    }
    if (first === 'scheduler') return await (await import('../../scheduler/cli.js')).runSchedulerCommand(rest, controller.signal);
    // the whole service on one machine: API + UI + this node's scheduler (api/start.ts; npm start)
    if (first === 'start') return await (await import('../../api/start.js')).runStart(rest, controller.signal);
    let action: ActionName | undefined;
    let args = rest;
    if (ACTIONS.includes(first as ActionName)) action = first as ActionName;
    else if (first !== 'agent') {
      // freezer-agent style without the subcommand: `floe --action backup ...`
      if (first.startsWith('-')) args = argv;
      else throw new UsageError(`unknown command '${first}' (commands: ${ACTIONS.join(', ')}, agent, api, scheduler, start, help)`);
    }
    const parsed = parseArgv(args);
    if (parsed.help) {
      process.stdout.write(helpText(action ?? 'agent'));
      return ExitCode.OK;
    }
    if (parsed.version) {
      process.stdout.write(`floe ${VERSION}\n`);
      return ExitCode.OK;
    }
    if (parsed.positional.length > 0) throw new UsageError(`unexpected argument '${parsed.positional[0]}'`);
    const opts = mergeOptions(parsed.cli, action);
    // Every backup and restore runs a serial stage: its thread loads while the action's modules do.
    if (opts.action === 'backup' || opts.action === 'restore') prewarmSerialWorker();
    // This process runs one action and closes the pool when it ends (finally, below): its threads may start
    // before work comes. A backup that compresses with gzip (or a slow zstd level) keeps them busy: they
    // start (two, the rest when blocks queue) and load while the action's modules load and the tree is
    // scanned. Fast zstd levels compress on the main thread until the pool pays: it starts with a level 0
    // (actions/backup.ts) or once a level 1 turns out large (transform/parallel.ts).
    allowPoolPrestart();
    if (opts.action === 'backup' && opts.engine === 'tar' && (opts.compression === 'gzip' || opts.compression === 'zstd')
      && !compressesInline(opts.compression, opts.compression_level)) {
      prewarmSharedPool(opts.compression);
    }
    out = new Output({
      json: opts.json, quiet: opts.quiet, logFile: opts.log_file,
      stdoutReserved: opts.metadata_out === '-',
    });
    return await runAction(opts, out, controller.signal);
  } catch (err) {
    return report(out, err, argv.includes('--debug'));
  } finally {
    await closeSharedPool().catch(() => undefined);
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
    process.stdout.removeListener('error', onStdoutError);
    process.removeListener('disconnect', onParentGone);
  }
}

function report(out: Output, err: unknown, debug: boolean): number {
  if (err instanceof FloeError) {
    out.error(err.code, err.message, err.exitCode, debug ? causeChain(err) : undefined);
    return err.exitCode;
  }
  const e = err as Error;
  out.error('FLOE_ERR_INTERNAL', `unexpected error: ${e?.message ?? String(err)}`, ExitCode.FAILURE, debug ? e?.stack : undefined);
  return ExitCode.FAILURE;
}

function causeChain(err: unknown): string | undefined {
  const parts: string[] = [];
  let c = (err as { cause?: unknown }).cause;
  while (c) {
    parts.push(`  caused by: ${(c as Error).stack ?? String(c)}`);
    c = (c as { cause?: unknown }).cause;
  }
  return parts.length ? parts.join('\n') : undefined;
}

/** mergeOptions applies defaults < INI < command line and checks what applies to every action. */
export function mergeOptions(cli: Raw, subcommand?: ActionName): AgentOptions {
  const merged: Raw = defaults();
  let storages: AgentOptions['storages'] = [];
  const extra: Raw = {};
  if (typeof cli.config === 'string') {
    const ini = readIni(cli.config);
    Object.assign(merged, ini.values);
    storages = ini.storages;
    for (const k of ini.unknown) extra[k] = ini.values[k];
  }
  Object.assign(merged, cli);
  if (subcommand) {
    if (cli.action !== undefined && cli.action !== subcommand) {
      throw new UsageError(`--action ${String(cli.action)} contradicts the subcommand '${subcommand}'`);
    }
    merged.action = subcommand;
  }
  if (!ACTIONS.includes(merged.action as ActionName)) {
    throw new UsageError(`--action must be one of ${ACTIONS.join(', ')}; got '${String(merged.action)}'`);
  }
  const o = merged as unknown as AgentOptions;
  o.hostname = (merged.hostname as string | undefined) || osHostname();
  o.exclude = (merged.exclude as string[] | undefined) ?? [];
  o.storages = storages;
  o.extra = extra;
  if (cli.no_incremental === true || merged.no_incremental === true) o.incremental = false;
  if (o.container && o.storage === 'local') o.container = resolve(o.container);
  for (const s of o.storages) if (s.storage === 'local') s.container = resolve(s.container);
  if (o.max_level !== undefined && o.max_level < 1) throw new UsageError('--max-level must be at least 1');
  if (o.always_level !== undefined && o.always_level < 1) throw new UsageError('--always-level must be at least 1');
  if (o.restart_always_level !== undefined && o.restart_always_level <= 0) throw new UsageError('--restart-always-level must be a positive number of days');
  if (o.remove_older_than !== undefined && o.remove_older_than < 0) throw new UsageError('--remove-older-than must not be negative');
  return o;
}
