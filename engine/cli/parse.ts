/**
 * Command-line and INI parsing into one typed AgentOptions.
 *
 * Precedence, as oslo.config: built-in defaults < the --config INI file < the command line. INI files follow
 * Python configparser as Freezer reads them: every section not named `storage:*` is merged into the options;
 * each `[storage:NAME]` section becomes one storage of a fan-out; `True`/`true` are true and
 * `False`/`false`/`None` are false; keys may use dashes or underscores; unknown keys are kept (the web UI
 * of Freezer sends some the agent ignores) and reported as warnings.
 */
import { readFileSync } from 'node:fs';
import { UsageError, errnoMessage } from '../errors.js';
import { ActionName, OPTIONS, OptionSpec, dest, findOption, findShort } from './options.js';

export type Raw = Record<string, unknown>;

export interface StorageSpec {
  name: string;
  storage: string;
  container: string;
  /** The rest of the section's keys (ssh_host...). */
  options: Record<string, string>;
}

export interface ParsedArgs {
  /** Values given on the command line, by dest. */
  cli: Raw;
  /** Positional arguments (none are expected by the agent actions). */
  positional: string[];
  help: boolean;
  version: boolean;
}

/** parseArgv reads `--name value`, `--name=value`, `-X value`, `--flag`, `--no-flag=false`... */
export function parseArgv(argv: readonly string[]): ParsedArgs {
  const cli: Raw = {};
  const positional: string[] = [];
  let help = false;
  let version = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--help' || arg === '-h') { help = true; continue; }
    if (arg === '--version') { version = true; continue; }
    if (arg === '--') { positional.push(...argv.slice(i + 1)); break; }
    let spec: OptionSpec | undefined;
    let inline: string | undefined;
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      const name = eq >= 0 ? arg.slice(2, eq) : arg.slice(2);
      inline = eq >= 0 ? arg.slice(eq + 1) : undefined;
      spec = findOption(name);
      // --no-NAME turns off a true/false option (--no-sync, --no-consistency-check), like GNU tools
      const negated = !spec && name.startsWith('no-') ? findOption(name.slice(3)) : undefined;
      if (negated?.type === 'bool') {
        if (inline !== undefined) throw new UsageError(`option --${name} takes no value`);
        cli[dest(negated.name)] = false;
        continue;
      }
      if (!spec) throw new UsageError(`unknown option --${name} (see floe --help)`);
    } else if (arg.startsWith('-') && arg.length >= 2 && !/^-\d/.test(arg)) {
      spec = findShort(arg[1]);
      if (!spec) throw new UsageError(`unknown option ${arg.slice(0, 2)} (see floe --help)`);
      if (arg.length > 2) inline = arg.slice(2).replace(/^=/, '');
    } else {
      positional.push(arg);
      continue;
    }
    if (spec.type === 'bool') {
      cli[dest(spec.name)] = inline === undefined ? true : toBool(inline, `--${spec.name}`);
      continue;
    }
    let value = inline;
    if (value === undefined) {
      if (i + 1 >= argv.length) throw new UsageError(`option --${spec.name} needs a value`);
      value = argv[++i];
    }
    const key = dest(spec.name);
    const converted = convert(spec, value, `--${spec.name}`);
    if (spec.type === 'list') cli[key] = [...((cli[key] as string[]) ?? []), ...(converted as string[])];
    else cli[key] = converted;
  }
  return { cli, positional, help, version };
}

/** convert checks and converts one textual value of an option. */
export function convert(spec: OptionSpec, value: string, where: string): unknown {
  switch (spec.type) {
    case 'bool':
      return toBool(value, where);
    case 'int': {
      if (!/^-?\d+$/.test(value.trim())) throw new UsageError(`${where} must be an integer, got '${value}'`);
      return Number(value);
    }
    case 'float': {
      const n = Number(value);
      if (value.trim() === '' || !Number.isFinite(n)) throw new UsageError(`${where} must be a number, got '${value}'`);
      return n;
    }
    case 'size':
      return parseSize(value, where);
    case 'list':
      return [value];
    case 'string':
      if (spec.choices && !spec.choices.includes(value)) {
        throw new UsageError(`${where} must be one of ${spec.choices.join(', ')}; got '${value}'`);
      }
      return value;
  }
}

function toBool(value: string, where: string): boolean {
  const v = value.trim().toLowerCase();
  if (['true', '1', 'yes', 'on'].includes(v)) return true;
  if (['false', '0', 'no', 'off', 'none', ''].includes(v)) return false;
  throw new UsageError(`${where} must be true or false, got '${value}'`);
}

/** parseSize reads "33554432", "32M", "32MiB", "512K", "1G". */
export function parseSize(value: string, where: string): number {
  const m = /^\s*(\d+)\s*([kmg]?)(i?b)?\s*$/i.exec(value);
  if (!m) throw new UsageError(`${where} must be a size in bytes (e.g. 33554432 or 32M), got '${value}'`);
  const mult = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[m[2].toLowerCase() as '' | 'k' | 'm' | 'g'];
  const n = Number(m[1]) * mult;
  if (n < 4096 || n > 4 * 1024 ** 3) throw new UsageError(`${where} must be between 4 KiB and 4 GiB, got '${value}'`);
  return n;
}

export interface IniFile {
  values: Raw;
  storages: StorageSpec[];
  unknown: string[];
}

/** readIni loads a Freezer-style INI file. */
export function readIni(path: string): IniFile {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read config file ${path}: ${errnoMessage(err)}`);
  }
  return parseIni(text, path);
}

export function parseIni(text: string, path = 'config'): IniFile {
  const sections = new Map<string, Map<string, string>>();
  let current: Map<string, string> | undefined;
  let lastKey: string | undefined;
  const lines = text.split(/\r?\n/);
  for (let n = 0; n < lines.length; n++) {
    const line = lines[n];
    if (/^\s*([#;].*)?$/.test(line)) continue;
    const sec = /^\s*\[([^\]]+)\]\s*$/.exec(line);
    if (sec) {
      const name = sec[1].trim();
      current = sections.get(name) ?? new Map();
      sections.set(name, current);
      lastKey = undefined;
      continue;
    }
    if (/^\s/.test(line) && current && lastKey) {
      // configparser continuation line
      current.set(lastKey, `${current.get(lastKey)}\n${line.trim()}`);
      continue;
    }
    const kv = /^\s*([^=:\s][^=:]*?)\s*[=:]\s*(.*?)\s*$/.exec(line);
    if (!kv || !current) throw new UsageError(`${path}:${n + 1}: not a section, key = value or comment: '${line.trim()}'`);
    lastKey = kv[1].toLowerCase();
    current.set(lastKey, kv[2]);
  }
  const values: Raw = {};
  const storages: StorageSpec[] = [];
  const unknown: string[] = [];
  for (const [name, kv] of sections) {
    if (name.startsWith('storage:')) {
      const opts: Record<string, string> = {};
      for (const [k, v] of kv) opts[dest(k)] = v;
      const storage = opts.storage ?? 'local';
      const container = opts.container;
      if (!container) throw new UsageError(`${path}: [${name}] needs a container`);
      delete opts.storage;
      delete opts.container;
      storages.push({ name: name.slice('storage:'.length), storage, container, options: opts });
      continue;
    }
    for (const [k, v] of kv) {
      const spec = findOption(k);
      if (!spec) {
        unknown.push(k);
        values[dest(k)] = v;
        continue;
      }
      const key = dest(spec.name);
      if (spec.type === 'bool') values[key] = iniBool(v, `${path}: ${k}`);
      else if (spec.type === 'list') values[key] = v.split('\n').map((s) => s.trim()).filter(Boolean);
      else if (v === 'None' || v === '') continue;
      else values[key] = convert(spec, v, `${path}: ${k}`);
    }
  }
  return { values, storages, unknown };
}

function iniBool(v: string, where: string): boolean {
  if (v === 'True' || v === 'true') return true;
  if (v === 'False' || v === 'false' || v === 'None' || v === '') return false;
  return toBool(v, where);
}

/** defaults returns every option's default by dest. */
export function defaults(): Raw {
  const out: Raw = {};
  for (const o of OPTIONS) if (o.default !== undefined) out[dest(o.name)] = o.default;
  return out;
}

/** The merged options, typed. Field names are Freezer's dests. */
export interface AgentOptions {
  action: ActionName;
  mode: string;
  engine: string;
  path_to_backup?: string;
  backup_name?: string;
  container: string;
  storage: string;
  hostname: string;
  storages: StorageSpec[];
  dry_run: boolean;
  metadata_out?: string;
  quiet: boolean;
  json: boolean;
  log_file?: string;
  debug: boolean;
  incremental: boolean;
  no_incremental: boolean;
  max_level?: number;
  always_level?: number;
  restart_always_level?: number;
  compression: 'gzip' | 'bzip2' | 'xz' | 'zstd' | 'none';
  compression_level?: number;
  encrypt_pass_file?: string;
  crypto_backend: 'native' | 'wasm';
  rsync_block_size?: number;
  exclude: string[];
  dereference_symlink: 'none' | 'soft' | 'hard' | 'all';
  max_segment_size: number;
  consistency_check: boolean;
  consistency_checksum?: string;
  restore_abs_path?: string;
  restore_from_date?: string;
  overwrite: boolean;
  remove_older_than?: number;
  remove_from_date?: string;
  command?: string;
  sync: boolean;
  /** Everything else that came in (INI keys floe does not know), for the result document. */
  extra: Raw;
}
