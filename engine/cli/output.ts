/**
 * Output: everything the CLI shows a person or a program.
 *
 * Three modes: human (a progress bar on stderr when it is a terminal, a short summary on stdout), --json
 * (one JSON object per line on stdout: progress at most once a second, warnings, the result, the error),
 * and --quiet (nothing but what was asked for, e.g. --metadata-out -). Errors are one line: `floe: <msg>`.
 */
import { appendFileSync } from 'node:fs';
import { Progress } from '../progress.js';

export interface OutputOptions {
  json: boolean;
  quiet: boolean;
  logFile?: string;
  /** stdout is reserved for a document (--metadata-out -): JSON lines go to stderr instead. */
  stdoutReserved?: boolean;
  stderr?: NodeJS.WriteStream;
  stdout?: NodeJS.WriteStream;
  now?: () => number;
}

const MAX_PRINTED_WARNINGS = 20;

export class Output {
  readonly json: boolean;
  readonly quiet: boolean;
  #logFile?: string;
  #out: NodeJS.WriteStream;
  #err: NodeJS.WriteStream;
  #jsonOut: NodeJS.WriteStream;
  #now: () => number;
  #bar?: ProgressBar;
  warnings = 0;

  constructor(o: OutputOptions) {
    this.json = o.json;
    this.quiet = o.quiet;
    this.#logFile = o.logFile;
    this.#out = o.stdout ?? process.stdout;
    this.#err = o.stderr ?? process.stderr;
    this.#jsonOut = o.stdoutReserved ? this.#err : this.#out;
    this.#now = o.now ?? Date.now;
  }

  /** progress returns the Progress the engine reports to, rendered for this mode. */
  progress(action: string): Progress {
    const tracker = new Tracker(this.#now);
    const showBar = !this.json && !this.quiet && this.#err.isTTY === true;
    if (showBar) this.#bar = new ProgressBar(this.#err, tracker, action, this.#now);
    let lastJson = 0;
    const tick = () => {
      if (this.#bar) this.#bar.render(false);
      else if (this.json) {
        const t = this.#now();
        if (t - lastJson >= 1000) {
          lastJson = t;
          this.emit({ type: 'progress', action, ...tracker.snapshot() });
        }
      }
    };
    return {
      onTotal: (bytes, files) => { tracker.totalBytes = bytes; tracker.totalFiles = files; },
      onFile: () => { tracker.files++; tick(); },
      onBytes: (n) => { tracker.bytes += n; tick(); },
      onStored: (n) => { tracker.stored += n; },
      onWarning: (m) => this.warn(m),
    };
  }

  /** endProgress clears the bar before the summary. */
  endProgress(): void {
    this.#bar?.clear();
    this.#bar = undefined;
  }

  warn(message: string): void {
    this.warnings++;
    this.#log(`warning: ${message}`);
    if (this.json) this.emit({ type: 'warning', message });
    else if (!this.quiet && this.warnings <= MAX_PRINTED_WARNINGS) {
      this.#bar?.clear();
      this.#err.write(`floe: warning: ${message}\n`);
    }
  }

  /** info prints a human line on stdout (not in --json or --quiet mode). */
  info(line: string): void {
    if (!this.json && !this.quiet) this.#out.write(`${line}\n`);
  }

  /** result prints the action's result: a JSON line, or the given human lines. */
  result(doc: Record<string, unknown>, human: string[]): void {
    this.endProgress();
    if (this.json) this.emit({ type: 'result', ...doc });
    else if (!this.quiet) for (const l of human) this.#out.write(`${l}\n`);
    if (!this.json && !this.quiet && this.warnings > MAX_PRINTED_WARNINGS) {
      this.#err.write(`floe: ${this.warnings - MAX_PRINTED_WARNINGS} more warnings not shown\n`);
    }
  }

  /** error reports a failure: one line on stderr (unless --quiet), and a JSON line in --json mode. */
  error(code: string, message: string, exitCode: number, detail?: string): void {
    this.endProgress();
    const line = message.replace(/\s*\n\s*/g, ' ');
    this.#log(`error: ${line}${detail ? `\n${detail}` : ''}`);
    if (this.json) this.emit({ type: 'error', code, exit_code: exitCode, message: line });
    if (!this.quiet) this.#err.write(`floe: ${line}\n`);
    if (detail && !this.quiet) this.#err.write(`${detail}\n`);
  }

  emit(obj: Record<string, unknown>): void {
    this.#jsonOut.write(`${JSON.stringify(obj)}\n`);
  }

  /** write sends raw text to stdout (documents asked for with `-`). */
  write(text: string): void {
    this.#out.write(text);
  }

  #log(line: string): void {
    if (!this.#logFile) return;
    try {
      appendFileSync(this.#logFile, `${new Date(this.#now()).toISOString()} ${line}\n`);
    } catch {
      // a log file we cannot write must not fail the backup
    }
  }
}

class Tracker {
  bytes = 0;
  files = 0;
  stored = 0;
  totalBytes = 0;
  totalFiles = 0;
  readonly start: number;
  constructor(now: () => number) {
    this.start = now();
  }
  snapshot(now = Date.now()): Record<string, number> {
    const secs = Math.max((now - this.start) / 1000, 0.001);
    const rate = this.bytes / secs;
    const eta = this.totalBytes > this.bytes && rate > 0 ? (this.totalBytes - this.bytes) / rate : 0;
    return {
      bytes: this.bytes, files: this.files, stored_bytes: this.stored,
      total_bytes: this.totalBytes, total_files: this.totalFiles,
      rate_bytes_per_s: Math.round(rate), eta_s: Math.round(eta), elapsed_s: Math.round(secs * 10) / 10,
    };
  }
}

class ProgressBar {
  #last = 0;
  #shown = false;
  constructor(
    private err: NodeJS.WriteStream,
    private t: Tracker,
    private action: string,
    private now: () => number,
  ) {}

  render(force: boolean): void {
    const n = this.now();
    if (!force && n - this.#last < 200) return;
    this.#last = n;
    const s = this.t.snapshot(n);
    const width = Math.max(10, Math.min(30, (this.err.columns ?? 80) - 60));
    const frac = s.total_bytes > 0 ? Math.min(1, s.bytes / s.total_bytes) : 0;
    const filled = Math.round(frac * width);
    const bar = s.total_bytes > 0 ? `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${(frac * 100).toFixed(0).padStart(3)}% ` : '';
    const eta = s.total_bytes > 0 ? ` ETA ${formatDuration(s.eta_s)}` : '';
    const line = `${this.action} ${bar}${formatBytes(s.bytes)} ${s.files} files ${formatBytes(s.rate_bytes_per_s)}/s${eta}`;
    this.err.write(`\r${line.slice(0, (this.err.columns ?? 80) - 1)}\x1b[K`);
    this.#shown = true;
  }

  clear(): void {
    if (this.#shown) this.err.write('\r\x1b[K');
    this.#shown = false;
  }
}

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return `${v.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

export function formatDuration(secs: number): string {
  const s = Math.round(secs);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}
