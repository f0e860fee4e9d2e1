/**
 * scheduler/: the node daemon (`floe scheduler`), freezer-scheduler's counterpart
 * (reference/freezer.md §5).
 *
 * The model: each node runs one scheduler per client id. It registers its client with the API, polls the
 * jobs bound to that client, and runs each job's actions when the job's trigger fires, reporting every
 * status change, result, backup document and metric back to the API. Jobs of a session start together
 * on all their nodes (sessions.ts).
 *
 *   cli.ts        the command: start | stop | restart | status | reload, options, pid file, daemon
 *   scheduler.ts  the loop: poll, fire times, concurrency, runs
 *   outbox.ts     delivery of the reports each job owes the API: in order, exactly once
 *   job.ts        one job's state machine (Freezer's statuses, events and results) and its record
 *   triggers.ts   date, interval and cron triggers (croner), coalescing and the misfire grace time
 *   runner.ts     a run's actions in order (mandatory, retries, abort)
 *   agents.ts     how an action runs: a child agent (floe's, freezer-agent...) or the engine in-process
 *   sessions.ts   session start (hold-off, tags) and end
 *   client.ts     the API client (node:http, X-Auth-Token, GET bodies, failure classes)
 *   store.ts      the jobs directory: mirrors, atomic job records with their outbox, runs, pid file
 *   metrics.ts    per-run metrics and how they reach the API
 *   clock.ts      injected time (FakeClock for tests); log.ts: log lines
 *
 * Guarantees: a fire time runs at most once, even across a SIGKILL (store.ts); every run's reports reach
 * the API exactly once, even across an API outage (scheduler.ts); two runs of one job never overlap.
 */
export { Scheduler, FREEZER_CAPABILITIES } from './scheduler.js';
export type { Capabilities, SchedulerOptions } from './scheduler.js';
export type { SchedulerApi } from './client.js';
export { ApiClient, ApiRequestError } from './client.js';
export { Job, JobStatus, JobEvent, JobResult } from './job.js';
export { JobStore } from './store.js';
export { InProcessExecutor, ProcessExecutor, actionIni } from './agents.js';
export type { ActionExecutor, ActionOutcome, ActionRequest } from './runner.js';
export { triggerOf, dueFire } from './triggers.js';
export { FakeClock, systemClock } from './clock.js';
export type { Clock } from './clock.js';
export { runSchedulerCommand } from './cli.js';
