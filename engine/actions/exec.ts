/**
 * The exec action, as freezer-agent's: `--command` is split on `|` into a pipeline and each stage on
 * spaces; no shell is involved. The command fails when the last stage exits non-zero.
 */
import { spawn, ChildProcess } from 'node:child_process';
import { ExecFailedError, UsageError } from '../errors.js';
import { AgentOptions } from '../cli/parse.js';
import { Output } from '../cli/output.js';

export async function exec(o: AgentOptions, _out: Output, signal: AbortSignal): Promise<{ document: Record<string, unknown>; human: string[] }> {
  if (!o.command || !o.command.trim()) throw new UsageError('exec needs --command');
  const stages = o.command.split('|').map((s) => s.trim().split(' ').filter(Boolean));
  if (stages.some((s) => s.length === 0)) throw new UsageError(`--command has an empty pipeline stage: '${o.command}'`);
  const children: ChildProcess[] = [];
  const done: Array<Promise<number>> = [];
  for (let i = 0; i < stages.length; i++) {
    const [cmd, ...args] = stages[i];
    const last = i === stages.length - 1;
    const child = spawn(cmd, args, {
      stdio: [i === 0 ? 'inherit' : 'pipe', last ? 'inherit' : 'pipe', 'inherit'],
      signal,
    });
    if (i > 0) {
      // A stage that exits before reading all its input (head, a failing grep) breaks the pipe, as in a
      // shell: closing the reading end gives the writer EPIPE/SIGPIPE, and each stage's exit status
      // tells what happened.
      const upstream = children[i - 1].stdout!;
      child.stdin!.on('error', () => upstream.destroy());
      child.on('close', () => upstream.destroy());
      upstream.pipe(child.stdin!);
    }
    children.push(child);
    done.push(new Promise((resolveP) => {
      child.on('error', (err) => {
        const e = err as NodeJS.ErrnoException;
        resolveP(e.code === 'ENOENT' ? -2 : -1);
      });
      child.on('close', (code, sig) => resolveP(code ?? (sig ? 128 : -1)));
    }));
  }
  const codes = await Promise.all(done);
  const rc = codes[codes.length - 1];
  if (codes.some((c) => c === -2)) {
    const missing = stages[codes.findIndex((c) => c === -2)][0];
    throw new ExecFailedError(`exec: command not found: ${missing}`);
  }
  if (rc !== 0) throw new ExecFailedError(`exec: '${o.command}' exited with status ${rc}`);
  return { document: { action: 'exec', command: o.command, exit_code: rc }, human: [] };
}
