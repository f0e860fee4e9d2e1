/**
 * Actions: what `floe backup|restore|info|admin|exec` do. Each action orchestrates the engine's parts
 * (chain, archive, transform, storage) and returns a result document plus a human summary; none prints
 * while working (progress goes through the Progress interface) and none handles bytes itself.
 * The scheduler will call these same functions in-process.
 */
import { promises as fsp } from 'node:fs';
import { ExitCode, StorageError, errnoMessage } from '../errors.js';
import { AgentOptions } from '../cli/parse.js';
import { Output } from '../cli/output.js';
import type { ApiReportOptions } from './report.js';

/** ActionResult: an action's result document and its human summary. */
export interface ActionResult {
  document: Record<string, unknown>;
  human: string[];
}

/**
 * performAction runs the action named by `o.action`; errors propagate. Each action's module is loaded
 * when it runs: loading all of them cost ~20 ms of every start.
 */
export async function performAction(o: AgentOptions, out: Output, signal: AbortSignal): Promise<ActionResult> {
  switch (o.action) {
    case 'backup': return (await import('./backup.js')).backup(o, out, signal);
    case 'restore': return (await import('./restore.js')).restore(o, out, signal);
    case 'info': return (await import('./info.js')).info(o, out);
    case 'admin': return (await import('./admin.js')).admin(o, out);
    case 'exec': return (await import('./exec.js')).exec(o, out, signal);
  }
}

/** runAction runs the action named by `o.action`, prints its result and returns the exit code; errors propagate. */
export async function runAction(o: AgentOptions, out: Output, signal: AbortSignal): Promise<number> {
  for (const k of Object.keys(o.extra)) out.warn(`option '${k}' in the config file is not used by floe`);
  const api = o as AgentOptions & ApiReportOptions;
  const report = o.action === 'backup' && !o.dry_run ? await import('./report.js') : undefined;
  const apiToken = report ? await report.prepareReport(api, out) : undefined;
  const r = await performAction(o, out, signal);
  if (o.metadata_out && o.action === 'backup') await writeMetadataOut(o.metadata_out, r.document, out);
  if (report && apiToken !== undefined) await report.reportBackup(api, apiToken, r.document, out);
  out.result(r.document, o.metadata_out === '-' ? [] : r.human);
  return ExitCode.OK;
}

/** writeMetadataOut writes freezer-agent's result document: one JSON object, to a file or stdout (-). */
async function writeMetadataOut(where: string, doc: Record<string, unknown>, out: Output): Promise<void> {
  const text = JSON.stringify(doc);
  if (where === '-') {
    out.write(`${text}\n`);
    return;
  }
  try {
    await fsp.writeFile(where, text);
  } catch (err) {
    throw new StorageError(`cannot write --metadata-out ${where}: ${errnoMessage(err)}`);
  }
}
