/**
 * The action form's model, generated from the agent's own option table (engine/cli/options.ts, bundled
 * at build time), so every agent option is offered and checked the way the agent checks it.
 *
 * An action is Freezer's `freezer_action` document: option dests (dashes -> underscores) to values.
 * Options that only make sense on a terminal (config, quiet, json, debug, the API token) are left out:
 * the scheduler sets them. validateAction returns {dest: message} for the bad ones.
 */
import { ACTIONS, OPTIONS, OptionSpec, dest } from '../../engine/cli/options.js';

export { ACTIONS };
export type { OptionSpec };

/** Terminal-only options: a scheduled action never sets them. */
const HIDDEN = new Set(['action', 'config', 'quiet', 'json', 'debug', 'token', 'token-file', 'metadata-out']);

/** optionsFor: the options an action offers, in the table's order (its groups). */
export function optionsFor(action: string): OptionSpec[] {
  return OPTIONS.filter((o) => !HIDDEN.has(o.name) && (!o.actions || o.actions.includes(action as never)));
}

/** REQUIRED: what each action cannot run without (the agent refuses it otherwise). */
export const REQUIRED: Record<string, string[]> = {
  backup: ['path_to_backup', 'backup_name'],
  restore: ['backup_name', 'restore_abs_path'],
  info: ['backup_name'],
  admin: ['backup_name'],
  exec: ['command'],
};

const SIZE_RE = /^\d+(\.\d+)?\s*([kKmMgGtT]i?[bB]?)?$/;
const DATE_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})?$/;

/** parseValue turns a form's text into the document's value; throws a message when it is not valid. */
export function parseValue(o: OptionSpec, text: string | boolean): unknown {
  if (o.type === 'bool') return !!text;
  const t = String(text).trim();
  if (o.choices && !o.choices.includes(t)) throw new Error(`must be one of ${o.choices.join(', ')}`);
  switch (o.type) {
    case 'int':
      if (!/^-?\d+$/.test(t)) throw new Error('must be a whole number');
      if (Number(t) < 0) throw new Error('must be 0 or more');
      return Number(t);
    case 'float':
      if (!/^\d+(\.\d+)?$/.test(t)) throw new Error('must be a number, like 7 or 0.5');
      return Number(t);
    case 'size':
      if (!SIZE_RE.test(t)) throw new Error('must be a size in bytes, like 33554432 or 32M');
      return t;
    case 'list':
      return t.split(/\s*,\s*/).filter(Boolean);
  }
  if (/date/.test(o.name) && !DATE_RE.test(t)) throw new Error('must be a date YYYY-MM-DDThh:mm:ss (optional Z or +hh:mm)');
  return t;
}

/** validateAction checks a whole freezer_action; {} when it is fine. */
export function validateAction(a: Record<string, unknown>): Record<string, string> {
  const errs: Record<string, string> = {};
  const action = String(a.action ?? '');
  if (!ACTIONS.includes(action as never)) errs.action = `must be one of ${ACTIONS.join(', ')}`;
  for (const k of REQUIRED[action] ?? []) {
    if (a[k] === undefined || a[k] === '') errs[k] = 'is required for a ' + action + ' action';
  }
  return errs;
}

export function destOf(o: OptionSpec): string {
  return dest(o.name);
}
