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
import { backup } from './backup.js';
import { restore } from './restore.js';
import { info } from './info.js';
import { admin } from './admin.js';
import { exec } from './exec.js';
import { ApiReportOptions, prepareReport, reportBackup } from './report.js';

export { backup, restore, info, admin, exec };

/** runAction runs the action named by `o.action` and returns the exit code; errors propagate. */
export async function runAction(o: AgentOptions, out: Output, signal: AbortSignal): Promise<number> {
  for (const k of Object.keys(o.extra)) out.warn(`option '${k}' in the config file is not used by floe`);
  let r: { document: Record<string, unknown>; human: string[] };
  const api = o as AgentOptions & ApiReportOptions;
  const apiToken = o.action === 'backup' && !o.dry_run ? await prepareReport(api, out) : undefined;
  switch (o.action) {
    case 'backup': r = await backup(o, out, signal); break;
    case 'restore': r = await restore(o, out, signal); break;
    case 'info': r = await info(o, out); break;
    case 'admin': r = await admin(o, out); break;
    case 'exec': r = await exec(o, out, signal); break;
  }
  if (o.metadata_out && o.action === 'backup') await writeMetadataOut(o.metadata_out, r.document, out);
  if (apiToken !== undefined) await reportBackup(api, apiToken, r.document, out);
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
