/**
 * Log: the scheduler's log lines, `<ISO time> <LEVEL> <message>`, to stderr or a file (the daemon's).
 * Messages never contain the API token (client.ts keeps it out of every error).
 */
import { appendFileSync } from 'node:fs';

export type Level = 'debug' | 'info' | 'warn' | 'error';
export type Log = (level: Level, message: string) => void;

const ORDER: Record<Level, number> = { debug: 0, info: 1, warn: 2, error: 3 };

/** makeLog writes lines at `min` level and above to `file`, or to stderr when no file is given. */
export function makeLog(o: { file?: string; min?: Level; now?: () => number } = {}): Log {
  const min = ORDER[o.min ?? 'info'];
  const now = o.now ?? Date.now;
  return (level, message) => {
    if (ORDER[level] < min) return;
    const line = `${new Date(now()).toISOString()} ${level.toUpperCase()} ${message.replace(/\s*\n\s*/g, ' ')}\n`;
    if (o.file) {
      try {
        appendFileSync(o.file, line);
        return;
      } catch {
        // fall through to stderr: a log that cannot be written must not stop the scheduler
      }
    }
    process.stderr.write(line);
  };
}

/** silentLog drops everything (tests). */
export const silentLog: Log = () => undefined;
