/**
 * End-to-end test of the web UI in real headless Chromium (Debian's `chromium`, driven by
 * playwright-core), against a real `floe api` (temp SQLite database, free port on 127.0.0.1) and, when
 * it is usable, a real `floe scheduler start --no-daemon` as the job's client, so the backup and the
 * restore started from the UI actually run. Without a usable scheduler the test registers the client
 * itself and runs `floe backup --api` as a scheduler would, and checks the restore job's document only.
 *
 * Steps: a bad token is refused with a message next to the token field; sign in; a bad option is
 * refused next to its field; create an action; a job whose bad schedule the API refuses (shown next to
 * the schedule field); the fixed job; start it; see the backup with its level and size; restore it
 * through the wizard into a new directory and find the files identical; clients; a session with the
 * job attached. Every page is screenshotted into docs/screenshots/ (committed, linked from docs/ui.md).
 *
 * Without /usr/bin/chromium the test skips with the reason; with CI=true it fails (.ci/run installs it).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const FLOE = join(ROOT, 'bin', 'floe.js');
const CHROMIUM = '/usr/bin/chromium';
const SHOTS = join(ROOT, 'docs', 'screenshots');
const inCI = process.env.CI === 'true';
const PROJECT = 'uie2e';
const CLIENT = 'uie2e_node1';

function freePort(): Promise<number> {
  return new Promise((ok, ko) => {
    const s = createServer();
    s.once('error', ko);
    s.listen(0, '127.0.0.1', () => { const p = (s.address() as { port: number }).port; s.close(() => ok(p)); });
  });
}

function floe(args: string[], env: NodeJS.ProcessEnv = {}): string {
  return execFileSync(process.execPath, [FLOE, ...args], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 60_000, stdio: ['ignore', 'pipe', 'pipe'] });
}

async function until<T>(what: string, fn: () => Promise<T | undefined | false>, ms = 20_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** files lists a tree's regular files with their contents' hex, relative paths sorted. */
function files(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const n of readdirSync(d)) {
      const p = join(d, n);
      if (statSync(p).isDirectory()) walk(p);
      else out[relative(dir, p)] = readFileSync(p).toString('hex');
    }
  };
  walk(dir);
  return out;
}

const skipReason = !existsSync(CHROMIUM) ? `${CHROMIUM} is missing (apt-get install chromium)`
  : !existsSync(join(ROOT, 'dist', 'ui', 'app.js')) ? 'the UI is not built (npm run build:ui)' : '';

if (skipReason) {
  if (inCI) test('web UI end to end', () => { assert.unreachable(`cannot run under CI: ${skipReason}`); });
  else { console.log(`test/ui: skipped: ${skipReason}`); test.skip('web UI end to end', () => {}); }
} else {
  test('web UI end to end: sign in, action, job, start, backup, restore, clients, sessions', async () => {
    const { chromium } = await import('playwright-core');
    const tmp = mkdtempSync(join(tmpdir(), 'floe-ui-'));
    const procs: ChildProcess[] = [];
    let ctx: Awaited<ReturnType<typeof chromium.launchPersistentContext>> | undefined;
    try {
      const db = join(tmp, 'floe.db');
      const src = join(tmp, 'src');
      const store = join(tmp, 'store');
      const restored = join(tmp, 'restored');
      mkdirSync(join(src, 'sub'), { recursive: true });
      writeFileSync(join(src, 'a.txt'), 'hello from the web UI test\n');
      writeFileSync(join(src, 'sub', 'b.bin'), randomBytes(200_000));
      // tokens before the server starts (the CLI migrates the SQLite file; the server then shares it)
      const admin = floe(['api', 'token', 'create', '--project', PROJECT, '--role', 'admin', '--db', db]).trim();
      const agent = floe(['api', 'token', 'create', '--project', PROJECT, '--role', 'agent', '--db', db]).trim();
      writeFileSync(join(tmp, 'agent.token'), agent + '\n');
      const port = await freePort();
      const base = `http://127.0.0.1:${port}`;
      const api = spawn(process.execPath, [FLOE, 'api', '--host', '127.0.0.1', '--port', String(port), '--db', db], { stdio: 'ignore' });
      procs.push(api);
      await until('the API', async () => (await fetch(`${base}/healthcheck`)).ok);
      const rest = async (method: string, path: string, body?: unknown) => {
        const r = await fetch(`${base}/v2/${PROJECT}${path}`, { method, headers: { 'X-Auth-Token': admin, ...(body ? { 'Content-Type': 'application/json' } : {}) }, body: body ? JSON.stringify(body) : undefined });
        return r.status === 204 ? {} : r.json();
      };

      // the client: a real scheduler when there is one, else registered here
      let scheduler = false;
      const schedulerLog = join(tmp, 'scheduler.log');
      if (existsSync(join(ROOT, 'dist', 'scheduler', 'cli.js'))) {
        const s = spawn(process.execPath, [FLOE, 'scheduler', 'start', '--no-daemon', '--api', base, '--token-file', join(tmp, 'agent.token'),
          '--client-id', CLIENT, '--jobs-dir', join(tmp, 'jobs'), '--interval', '1', '--log-file', schedulerLog], { stdio: 'ignore' });
        procs.push(s);
        scheduler = await until('the scheduler to register', async () => ((await rest('GET', '/clients')).clients ?? []).length > 0, 15_000).catch(() => false);
      }
      if (!scheduler) {
        console.log('test/ui: no usable scheduler: the client is registered by the test, the backup posted by `floe backup --api`');
        await rest('POST', '/clients', { client_id: CLIENT, hostname: 'node1', supported_actions: ['backup', 'restore'], supported_modes: ['fs'], supported_storages: ['local'], supported_engines: ['tar'] });
      }

      mkdirSync(SHOTS, { recursive: true });
      ctx = await chromium.launchPersistentContext(join(tmp, 'profile'), {
        executablePath: CHROMIUM, headless: true, viewport: { width: 1280, height: 800 },
        args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      });
      const page = ctx.pages()[0] ?? await ctx.newPage();
      page.setDefaultTimeout(15_000);
      const jsErrors: string[] = [];
      page.on('pageerror', (e) => jsErrors.push(String(e)));
      const shot = (name: string) => page.screenshot({ path: join(SHOTS, `${name}.png`) });

      // sign-in: a bad token, then the real one (typed, never in the URL)
      await page.goto(`${base}/`);
      await page.fill('input[name=token]', 'floe_not-a-real-token');
      await page.click('button[type=submit]');
      const tokenErr = page.locator('[data-field=token] .error');
      await tokenErr.waitFor();
      assert.match(await tokenErr.innerText(), /not valid/);
      await shot('signin-bad-token');
      await page.fill('input[name=token]', admin);
      await page.keyboard.press('Enter');
      await page.locator('h1:has-text("Dashboard")').waitFor();
      assert.not.ok(page.url().includes(admin), 'the token is never in the URL');
      assert.is(await page.evaluate(() => document.querySelectorAll('.chart svg').length), 4);

      // an action, with a bad option first
      await page.click('a[href="#/actions"]');
      await page.click('text=New action');
      await page.fill('[data-field=path_to_backup] input', src);
      await page.fill('[data-field=backup_name] input', 'uidata');
      await page.fill('[data-field=container] input', store);
      await page.click('summary:has-text("Incremental levels")');
      await page.fill('[data-field=max_level] input', 'three');
      await page.click('text=Save action');
      const levelErr = page.locator('[data-field=max_level] .error');
      await levelErr.waitFor();
      assert.match(await levelErr.innerText(), /whole number/);
      await shot('action-bad-field');
      await page.fill('[data-field=max_level] input', '3');
      await page.click('text=Save action');
      await page.locator('td:has-text("uidata")').waitFor();
      await shot('actions');

      // a job: the API refuses a bad interval, shown next to the schedule field; then fixed
      await page.click('a[href="#/jobs"]');
      await page.click('text=New job');
      await page.selectOption('select[name=client_id]', CLIENT);
      await page.fill('input[name=description]', 'UI backup');
      await page.click('button:has-text("Next")');
      await page.check('input[name=kind][value=interval]');
      await page.fill('input[name=schedule_interval]', 'sometimes');
      await page.click('button:has-text("Next")');
      const libId = await page.locator('select[name=library] option').nth(1).getAttribute('value');
      await page.selectOption('select[name=library]', libId!);
      await shot('job-wizard-actions');
      await page.click('button:has-text("Next")');
      await page.click('button:has-text("Save job")');
      const schedErr = page.locator('[data-field="job_schedule.schedule_interval"] .error');
      await schedErr.waitFor();
      assert.match(await schedErr.innerText(), /schedule_interval|pattern/);
      await shot('job-bad-schedule');
      await page.check('input[name=kind][value=demand]');
      await page.click('button:has-text("Next")');
      await page.click('button:has-text("Next")');
      await page.click('button:has-text("Save job")');
      const row = page.locator('tr:has-text("UI backup")');
      await row.waitFor();
      const jobs = (await rest('GET', '/jobs')).jobs;
      assert.is(jobs.length, 1);
      const job = jobs[0];
      assert.is(job.job_actions[0].freezer_action.max_level, 3);
      assert.is(job.job_actions[0].freezer_action.path_to_backup, src);

      if (!scheduler) {
        // what the scheduler would do: run the agent, which posts its result document
        floe(['backup', '--path-to-backup', src, '--backup-name', 'uidata', '--container', store, '--max-level', '3',
          '--api', base, '--token-file', join(tmp, 'agent.token'), '--api-required', '--quiet']);
      }
      await row.locator('button:has-text("Start")').click();
      await page.locator('.note:has-text("start requested")').waitFor();
      if (scheduler) await row.locator('.result .b-success').waitFor({ timeout: 30_000 });
      await shot('jobs');

      // the backup appears with its level and size
      await page.click('a[href="#/backups"]');
      const brow = page.locator('table.backups tbody tr').first();
      await brow.waitFor({ timeout: 20_000 });
      assert.is((await brow.locator('.level').innerText()).trim(), '0');
      assert.match(await brow.locator('.size').innerText(), /\d+(\.\d)? (B|KiB|MiB)/);
      await page.fill('input[name=q]', 'uidata');
      await page.waitForTimeout(400);
      assert.ok(await page.locator('table.backups tbody tr').count() >= 1);
      await shot('backups');
      await brow.locator('a').first().click();
      await page.locator('dl.kv').waitFor();
      await shot('backup-detail');

      // restore through the wizard
      await page.click('text=Restore…');
      await page.locator('input[name=point]').first().waitFor();
      await page.click('button:has-text("Next")');
      await page.selectOption('select[name=client_id]', CLIENT);
      await page.fill('input[name=restore_abs_path]', 'relative/dir');
      await page.click('button:has-text("Next")');
      await page.locator('[data-field=restore_abs_path] .error:has-text("absolute")').waitFor();
      await page.fill('input[name=restore_abs_path]', restored);
      await shot('restore-target');
      await page.click('button:has-text("Next")');
      await page.click('button:has-text("Start restore")');
      await page.locator('.progress').waitFor();
      const restoreJob = (await rest('GET', '/jobs')).jobs.find((j: { job_id: string }) => j.job_id !== job.job_id);
      assert.ok(restoreJob, 'the wizard created a restore job');
      const fa = restoreJob.job_actions[0].freezer_action;
      assert.is(fa.action, 'restore');
      assert.is(fa.backup_name, 'uidata');
      assert.is(fa.container, store);
      assert.is(fa.restore_abs_path, restored);
      assert.match(fa.restore_from_date, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
      assert.is(restoreJob.client_id, CLIENT);
      if (scheduler) {
        try {
          await page.locator('.progress .ok:has-text("Restore finished")').waitFor({ timeout: 30_000 });
        } catch (err) {
          // say what the page, the job and the scheduler show, so a failure here can be understood
          const shown = await page.locator('.progress').innerText().catch(() => '?');
          const now = (await rest('GET', `/jobs/${restoreJob.job_id}`).catch(() => ({}))) as Record<string, unknown>;
          const log = existsSync(schedulerLog) ? readFileSync(schedulerLog, 'utf8').split('\n').slice(-15).join('\n') : '(no log)';
          throw new Error(`${(err as Error).message.split('\n')[0]}\nprogress: ${shown}\njob: ${JSON.stringify(now.job_schedule ?? now)}\nscheduler log:\n${log}`);
        }
        assert.equal(files(restored), files(src), 'the restored files are identical');
      }
      await shot('restore-progress');

      // edit and clone the backup job
      await page.click('a[href="#/jobs"]');
      await row.locator('a:has-text("Edit")').click();
      await page.fill('input[name=description]', 'UI backup, edited');
      for (let i = 0; i < 3; i++) await page.click('button:has-text("Next")');
      await page.click('button:has-text("Save job")');
      await page.locator('tr:has-text("UI backup, edited")').waitFor();
      assert.is((await rest('GET', `/jobs/${job.job_id}`)).description, 'UI backup, edited');
      await page.locator('tr:has-text("UI backup, edited") a:has-text("Clone")').click();
      for (let i = 0; i < 3; i++) await page.click('button:has-text("Next")');
      await page.click('button:has-text("Save job")');
      await page.locator('tr:has-text("(copy)")').waitFor();
      const clone = (await rest('GET', '/jobs')).jobs.find((j: { description?: string }) => j.description?.endsWith('(copy)'));
      assert.equal(clone.job_actions[0].freezer_action, (await rest('GET', `/jobs/${job.job_id}`)).job_actions[0].freezer_action);

      // clients and sessions
      await page.click('a[href="#/clients"]');
      // the clients table's own row (its Forget button): the jobs table, still shown for a moment, has
      // the client in a cell of each job too
      await page.locator(`tr:has(td:has-text("${CLIENT}")) button:has-text("Forget")`).waitFor();
      await shot('clients');
      await page.click('a[href="#/sessions"]');
      await page.fill('form[aria-label="New session"] input[name=description]', 'nightly set');
      await page.click('text=Create session');
      await page.locator('h1:has-text("nightly set")').waitFor();
      await page.selectOption('select[name=attach]', job.job_id);
      await page.click('button:has-text("Attach")');
      await page.locator('td:has-text("UI backup, edited")').waitFor();
      await shot('session');
      await page.click('a[href="#/sessions"]');
      await page.locator('td:has-text("nightly set")').waitFor();
      await shot('sessions');

      // the dashboard, now with a backup and two runs
      await page.click('a[href="#/dashboard"]');
      await page.locator('.stat:has-text("Last 24 hours") strong:text-is("1")').first().waitFor({ timeout: 15_000 });
      await shot('dashboard');

      // a phone's screen
      await page.setViewportSize({ width: 390, height: 780 });
      await page.click('a[href="#/jobs"]').catch(() => page.goto(`${base}/ui/#/jobs`));
      await page.locator('h1:has-text("Jobs")').waitFor();
      await shot('jobs-phone');
      assert.equal(jsErrors, [], 'no JavaScript errors');
    } finally {
      await ctx?.close().catch(() => {});
      for (const p of procs.reverse()) p.kill('SIGTERM');
      await new Promise((r) => setTimeout(r, 300));
      rmSync(tmp, { recursive: true, force: true });
    }
  });
}

test.run();
