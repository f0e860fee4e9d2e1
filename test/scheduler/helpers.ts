/**
 * Helpers for the scheduler suites: temp dirs, waiting for a condition, and a scripted executor whose
 * actions take fake-clock time and end as the job document says (`test_ms`, `test_rc`).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Clock } from '../../scheduler/clock.js';
import type { ActionExecutor, ActionOutcome, ActionRequest } from '../../scheduler/runner.js';

export type Doc = Record<string, unknown>;

const dirs: string[] = [];

/** tempDir makes a directory removed by cleanupDirs(). */
export function tempDir(prefix = 'floe-sched-'): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(d);
  return d;
}

/** cleanupDirs removes them (kept with FLOE_KEEP_TEST_DIRS=1, to read the schedulers' logs). */
export function cleanupDirs(): void {
  const keep = process.env.FLOE_KEEP_TEST_DIRS === '1';
  for (const d of dirs.splice(0)) {
    if (keep) console.log(`  kept ${d}`);
    else rmSync(d, { recursive: true, force: true });
  }
}

/** waitFor polls `fn` (real time) until it returns a truthy value; throws after timeoutMs. */
export async function waitFor<T>(fn: () => T | Promise<T>, timeoutMs: number, what: string, everyMs = 100): Promise<NonNullable<T>> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v as NonNullable<T>;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export interface ScriptedCall {
  jobId: string;
  runId: string;
  index: number;
  attempt: number;
  action: string;
  start: number;
  end?: number;
  exitCode?: number;
}

/**
 * ScriptedExecutor: an action lasts `test_ms` of fake-clock time and exits with `test_rc` (a number, or
 * one per attempt). A backup that succeeds yields a result document. An aborted action exits 130.
 */
export class ScriptedExecutor implements ActionExecutor {
  readonly name = 'scripted';
  readonly calls: ScriptedCall[] = [];
  readonly #clock: Clock;

  constructor(clock: Clock) {
    this.#clock = clock;
  }

  /** running lists the calls not ended. */
  get running(): ScriptedCall[] {
    return this.calls.filter((c) => c.end === undefined);
  }

  async run(req: ActionRequest): Promise<ActionOutcome> {
    const a = req.action;
    const call: ScriptedCall = { jobId: req.jobId, runId: req.runId, index: req.index, attempt: req.attempt, action: String(a.action), start: this.#clock.now() };
    this.calls.push(call);
    req.onStarted?.(4242);
    try {
      await this.#clock.sleep(Number(a.test_ms ?? 0), req.signal);
    } catch {
      call.end = this.#clock.now();
      call.exitCode = 130;
      return { exitCode: 130, signalled: true };
    }
    call.end = this.#clock.now();
    const rcs = a.test_rc;
    const rc = Array.isArray(rcs) ? Number(rcs[Math.min(req.attempt, rcs.length) - 1]) : Number(rcs ?? 0);
    call.exitCode = rc;
    const document = a.action === 'backup' && rc === 0
      ? { container: '/c', hostname: 'h', backup_name: String(a.backup_name ?? 'n'), time_stamp: Math.floor(call.start / 1000), source_bytes: 1000, stored_bytes: 400 }
      : undefined;
    return { exitCode: rc, signalled: false, document, bytesRead: document ? 1000 : undefined, bytesStored: document ? 400 : undefined, error: rc ? `exit ${rc}` : undefined };
  }
}

/** overlaps reports two calls of one job that ran at the same time. */
export function overlaps(calls: ScriptedCall[]): string | undefined {
  const byJob = new Map<string, ScriptedCall[]>();
  for (const c of calls) byJob.set(c.jobId, [...(byJob.get(c.jobId) ?? []), c]);
  for (const [job, cs] of byJob) {
    const sorted = [...cs].sort((a, b) => a.start - b.start);
    for (let i = 1; i < sorted.length; i++) {
      const prev = sorted[i - 1];
      if (prev.end === undefined || sorted[i].start < prev.end) return `job ${job}: a call at ${sorted[i].start} overlaps one from ${prev.start} to ${prev.end}`;
    }
  }
  return undefined;
}
