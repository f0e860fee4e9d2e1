/**
 * Dashboard: the last 24 hours and 30 days at a glance. Runs by result come from the jobs' last runs
 * (the API keeps each job's latest status) and from the backups recorded (each one a successful backup
 * run); bytes stored per day and duration per job from the backups' result documents.
 * Charts are plain SVG (util.tsx BarChart): no chart library, no CDN.
 */
import { Session, list } from '../api.js';
import { BarChart, Page, bytes, usePoll } from '../util.js';
import type { Doc } from './actions.js';

const DAY = 86400;

export function Dashboard({ s }: { s: Session }) {
  const now = Math.floor(Date.now() / 1000);
  const { data, error } = usePoll(async () => ({
    backups: await list(s, 'backups', { time_after: now - 30 * DAY }),
    jobs: await list(s, 'jobs'),
  }), 10000);
  const backups = data?.backups ?? [];
  const jobs = data?.jobs ?? [];
  const window = (secs: number) => {
    const bs = backups.filter((b: Doc) => Number(b.backup_metadata?.time_stamp) >= now - secs);
    const js = jobs.filter((j: Doc) => Number(j.job_schedule?.time_ended ?? 0) >= now - secs);
    const res = (r: string) => js.filter((j: Doc) => j.job_schedule?.result === r).length;
    return {
      backups: bs.length,
      stored: bs.reduce((a: number, b: Doc) => a + Number(b.backup_metadata?.stored_bytes || 0), 0),
      success: res('success'), fail: res('fail'), aborted: res('aborted'),
    };
  };
  const w1 = window(DAY), w30 = window(30 * DAY);
  const perDay: Array<{ label: string; value: number }> = [];
  for (let i = 29; i >= 0; i--) {
    const start = now - ((now % DAY)) - i * DAY;
    const v = backups.filter((b: Doc) => { const t = Number(b.backup_metadata?.time_stamp); return t >= start && t < start + DAY; })
      .reduce((a: number, b: Doc) => a + Number(b.backup_metadata?.stored_bytes || 0), 0);
    perDay.push({ label: new Date(start * 1000).toISOString().slice(5, 10), value: v });
  }
  const dur = new Map<string, number[]>();
  for (const b of backups) {
    const m = b.backup_metadata ?? {};
    if (m.duration === undefined || m.duration === '') continue;
    const k = `${m.hostname}/${m.backup_name}`;
    dur.set(k, [...(dur.get(k) ?? []), Number(m.duration)]);
  }
  const durations = [...dur].map(([k, v]) => ({ label: k, value: v.reduce((a, b) => a + b, 0) / v.length })).slice(0, 12);
  const runs = (w: typeof w1) => [
    { label: 'success', value: w.success, cls: 'ok' }, { label: 'fail', value: w.fail, cls: 'bad' },
    { label: 'aborted', value: w.aborted, cls: 'warn' }, { label: 'backups', value: w.backups, cls: 'info' },
  ];
  return (
    <Page title="Dashboard">
      {error && <div class="error banner">{error}</div>}
      <div class="cards">
        {([['Last 24 hours', w1], ['Last 30 days', w30]] as const).map(([t, w]) => (
          <div class="card stat" key={t}>
            <h2>{t}</h2>
            <p><strong>{w.backups}</strong> backups · <strong>{bytes(w.stored)}</strong> stored</p>
            <p><span class="badge b-success">{w.success} success</span> <span class="badge b-fail">{w.fail} failed</span> <span class="badge b-aborted">{w.aborted} aborted</span></p>
          </div>
        ))}
        <div class="card stat"><h2>Jobs</h2><p><strong>{jobs.length}</strong> jobs · <strong>{jobs.filter((j: Doc) => j.job_schedule?.status === 'running').length}</strong> running</p></div>
      </div>
      <div class="charts">
        <BarChart title="Runs by result, last 24 h" data={runs(w1)} />
        <BarChart title="Runs by result, last 30 days" data={runs(w30)} />
        <BarChart title="Bytes stored per day, last 30 days" data={perDay} fmt={bytes} />
        <BarChart title="Mean backup duration per job (s), last 30 days" data={durations} fmt={(v) => v.toFixed(1)} />
      </div>
    </Page>
  );
}
