/**
 * Sessions: groups of jobs on several nodes started together. Create one, attach and detach jobs
 * (PUT / DELETE /sessions/{id}/jobs/{job_id}), and watch each member's status and result.
 */
import { useState } from 'preact/hooks';
import { Session, call, list } from '../api.js';
import { Errors, Field, FormError, Page, Status, errorsOf, go, usePoll, when } from '../util.js';
import type { Doc } from './actions.js';

export function Sessions({ s }: { s: Session }) {
  const { data, error, reload } = usePoll(() => list(s, 'sessions'), 4000);
  const [form, setForm] = useState({ description: '', hold_off: '', schedule_interval: '' });
  const [errors, setErrors] = useState<Errors>({});
  const create = async (e: Event) => {
    e.preventDefault();
    const body: Doc = {};
    if (form.description.trim()) body.description = form.description.trim();
    if (form.hold_off.trim()) {
      if (!/^\d+$/.test(form.hold_off.trim())) return setErrors({ hold_off: 'must be a whole number of seconds' });
      body.hold_off = Number(form.hold_off);
    }
    if (form.schedule_interval.trim()) body.schedule = { schedule_interval: form.schedule_interval.trim() };
    try {
      const r = await call<{ session_id: string }>(s, 'POST', '/sessions', body);
      setErrors({});
      go(`#/sessions/${r.session_id}`);
    } catch (err) {
      const e2 = errorsOf(err);
      if (e2['schedule.schedule_interval']) e2.schedule_interval = e2['schedule.schedule_interval'];
      setErrors(e2);
    }
  };
  const del = async (id: string) => {
    if (!confirm(`Delete session ${id}?`)) return;
    await call(s, 'DELETE', `/sessions/${id}`).catch((e) => alert(e.message));
    reload();
  };
  return (
    <Page title="Sessions">
      <form class="card" onSubmit={create} aria-label="New session" novalidate>
        <h2>New session</h2>
        <div class="grid">
          <Field label="Description" name="description" errors={errors}>{(id, d) => <input id={id} name="description" value={form.description} aria-describedby={d} onInput={(e) => setForm({ ...form, description: (e.target as HTMLInputElement).value })} />}</Field>
          <Field label="Hold-off (s)" name="hold_off" errors={errors} help="Starts within this time join the same run (default 30).">{(id, d) => <input id={id} name="hold_off" value={form.hold_off} inputMode="numeric" aria-describedby={d} onInput={(e) => setForm({ ...form, hold_off: (e.target as HTMLInputElement).value })} />}</Field>
          <Field label="Interval (optional)" name="schedule_interval" errors={errors} help='e.g. "1 days"'>{(id, d) => <input id={id} name="schedule_interval" value={form.schedule_interval} aria-describedby={d} onInput={(e) => setForm({ ...form, schedule_interval: (e.target as HTMLInputElement).value })} />}</Field>
        </div>
        <FormError errors={errors} />
        <div class="buttons"><button type="submit" class="primary">Create session</button></div>
      </form>
      {error && <div class="error banner">{error}</div>}
      <div class="table-wrap"><table>
        <thead><tr><th>Session</th><th>Status</th><th>Result</th><th>Tag</th><th>Jobs</th><th></th></tr></thead>
        <tbody>
          {(data ?? []).map((x: Doc) => (
            <tr key={x.session_id}>
              <td><a href={`#/sessions/${x.session_id}`}>{x.description || x.session_id}</a><div class="muted small">{x.session_id}</div></td>
              <td><Status v={x.status} /></td><td><Status v={x.result} /></td><td>{x.session_tag}</td>
              <td>{Object.keys(x.jobs ?? {}).length}</td>
              <td class="row-actions"><a class="button" href={`#/sessions/${x.session_id}`}>Open</a> <button class="danger" onClick={() => del(x.session_id)}>Delete</button></td>
            </tr>
          ))}
          {data && data.length === 0 && <tr><td colSpan={6} class="muted">No sessions yet.</td></tr>}
        </tbody>
      </table></div>
    </Page>
  );
}

export function SessionDetail({ s, id }: { s: Session; id: string }) {
  const { data, error, reload } = usePoll(async () => ({ session: await call(s, 'GET', `/sessions/${id}`), jobs: await list(s, 'jobs') }), 3000, [id]);
  const [pick, setPick] = useState('');
  const [msg, setMsg] = useState<string>();
  const x: Doc = data?.session ?? {};
  const members: Array<[string, Doc]> = Object.entries(x.jobs ?? {});
  const attach = async () => {
    if (!pick) return setMsg('Choose a job to attach.');
    try { await call(s, 'PUT', `/sessions/${id}/jobs/${pick}`); setMsg(`Job ${pick} attached.`); setPick(''); } catch (e) { setMsg((e as Error).message); }
    reload();
  };
  const detach = async (job: string) => {
    try { await call(s, 'DELETE', `/sessions/${id}/jobs/${job}`); setMsg(`Job ${job} detached.`); } catch (e) { setMsg((e as Error).message); }
    reload();
  };
  const jobsById = new Map((data?.jobs ?? []).map((j: Doc) => [j.job_id, j]));
  return (
    <Page title={`Session ${x.description || id}`}>
      {error && <div class="error banner">{error}</div>}
      {msg && <div class="note" role="status">{msg}</div>}
      <p>Status <Status v={x.status} /> · result <Status v={x.result} /> · tag {x.session_tag ?? '–'} · hold-off {x.hold_off ?? '–'} s{x.schedule?.schedule_interval ? ` · every ${x.schedule.schedule_interval}` : ''}</p>
      <div class="table-wrap"><table>
        <thead><tr><th>Job</th><th>Client</th><th>Status</th><th>Result</th><th>Started</th><th>Ended</th><th></th></tr></thead>
        <tbody>
          {members.map(([jid, m]) => (
            <tr key={jid}>
              <td><a href={`#/jobs/${jid}/edit`}>{(jobsById.get(jid) as Doc | undefined)?.description || jid}</a></td>
              <td>{m.client_id}</td><td><Status v={m.status} /></td><td><Status v={m.result} /></td>
              <td>{when(m.time_started)}</td><td>{when(m.time_ended)}</td>
              <td><button onClick={() => detach(jid)}>Detach</button></td>
            </tr>
          ))}
          {!members.length && <tr><td colSpan={7} class="muted">No jobs attached.</td></tr>}
        </tbody>
      </table></div>
      <div class="row start">
        <label class="inline">Attach job{' '}
          <select name="attach" value={pick} onChange={(e) => setPick((e.target as HTMLSelectElement).value)}>
            <option value="">(choose)</option>
            {(data?.jobs ?? []).filter((j: Doc) => !(x.jobs ?? {})[j.job_id]).map((j: Doc) => <option key={j.job_id} value={j.job_id}>{j.description || j.job_id} ({j.client_id})</option>)}
          </select></label>
        <button class="primary" onClick={attach}>Attach</button>
      </div>
      <p><a href="#/sessions">← all sessions</a></p>
    </Page>
  );
}
