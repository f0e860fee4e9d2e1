/**
 * Jobs: the list (schedule, status, result, last run; start, stop, abort, edit, clone, delete) and the
 * job wizard: 1 client and description, 2 schedule, 3 ordered actions (from the library or new),
 * 4 review. Saving: POST /jobs (new, clone) or POST /jobs/{id} (replace, keeping the run status).
 * API errors land next to the field they name (job_schedule.* on the schedule step, job_actions.N.* on
 * action N).
 */
import { useEffect, useState } from 'preact/hooks';
import { Session, call, list } from '../api.js';
import { Errors, Field, FormError, Page, Status, ago, errorsOf, go, usePoll, when } from '../util.js';
import { ActionDraft, ActionForm, Doc, docOf, draftOf, summary } from './actions.js';

const RUN_KEYS = ['status', 'result', 'event', 'current_pid', 'time_started', 'time_ended', 'time_created'];
const CRON_KEYS = ['schedule_second', 'schedule_minute', 'schedule_hour', 'schedule_day', 'schedule_week', 'schedule_month', 'schedule_day_of_week', 'schedule_year'];
const WHEN_KEYS = ['schedule_interval', 'schedule_date', 'schedule_start_date', 'schedule_end_date', ...CRON_KEYS];

export function scheduleText(js: Doc = {}): string {
  if (js.schedule_interval) return `every ${js.schedule_interval}`;
  if (js.schedule_date) return `once at ${js.schedule_date}`;
  const cron = ['schedule_minute', 'schedule_hour', 'schedule_day', 'schedule_month', 'schedule_day_of_week'].map((k) => js[k] ?? '*');
  if (cron.some((c) => c !== '*')) return `cron ${cron.join(' ')}`;
  return 'on demand';
}

export async function jobEvent(s: Session, id: string, event: 'start' | 'stop' | 'abort'): Promise<void> {
  await call(s, 'POST', `/jobs/${id}/event`, { [event]: null });
}

export function Jobs({ s }: { s: Session }) {
  const { data, error, reload } = usePoll(() => list(s, 'jobs'), 3000);
  const [msg, setMsg] = useState<string>();
  const act = async (id: string, ev: 'start' | 'stop' | 'abort') => {
    try { await jobEvent(s, id, ev); setMsg(`${ev} requested for job ${id}`); } catch (e) { setMsg((e as Error).message); }
    reload();
  };
  const del = async (id: string) => {
    if (!confirm(`Delete job ${id}?`)) return;
    try { await call(s, 'DELETE', `/jobs/${id}`); } catch (e) { setMsg((e as Error).message); }
    reload();
  };
  return (
    <Page title="Jobs" actions={<a class="button primary" href="#/jobs/new">New job</a>}>
      {error && <div class="error banner">{error}</div>}
      {msg && <div class="note" role="status">{msg}</div>}
      <div class="table-wrap"><table class="jobs">
        <thead><tr><th>Job</th><th>Client</th><th>Actions</th><th>Schedule</th><th>Status</th><th>Result</th><th>Last run</th><th></th></tr></thead>
        <tbody>
          {(data ?? []).map((j: Doc) => {
            const js = j.job_schedule ?? {};
            return (
              <tr key={j.job_id} data-job={j.job_id}>
                <td data-label="Job"><a href={`#/jobs/${j.job_id}/edit`}>{j.description || j.job_id}</a><div class="muted small">{j.job_id}</div></td>
                <td data-label="Client">{j.client_id}</td>
                <td data-label="Actions">{(j.job_actions ?? []).map((a: Doc, i: number) => <div key={i} class="small">{i + 1}. {summary(a.freezer_action)}</div>)}</td>
                <td data-label="Schedule">{scheduleText(js)}</td>
                <td class="status" data-label="Status"><Status v={js.status} />{js.event && js.event !== js.status ? <span class="muted small"> ({js.event} requested)</span> : null}</td>
                <td class="result" data-label="Result"><Status v={js.result} /></td>
                <td data-label="Last run" title={when(js.time_ended || js.time_started)}>{ago(js.time_ended || js.time_started)}</td>
                <td class="row-actions">
                  <button onClick={() => act(j.job_id, 'start')}>Start</button>
                  <button onClick={() => act(j.job_id, 'stop')}>Stop</button>
                  <button onClick={() => act(j.job_id, 'abort')}>Abort</button>
                  <a class="button" href={`#/jobs/${j.job_id}/edit`}>Edit</a>
                  <a class="button" href={`#/jobs/${j.job_id}/clone`}>Clone</a>
                  <button class="danger" onClick={() => del(j.job_id)}>Delete</button>
                </td>
              </tr>
            );
          })}
          {data && data.length === 0 && <tr><td colSpan={8} class="muted">No jobs yet: create one.</td></tr>}
        </tbody>
      </table></div>
    </Page>
  );
}

interface Draft { description: string; client_id: string; kind: 'demand' | 'once' | 'interval' | 'cron'; sched: Record<string, string>; run: Doc; actions: ActionDraft[] }

function draftOfJob(j?: Doc, clone = false): Draft {
  const js: Doc = j?.job_schedule ?? {};
  const sched: Record<string, string> = {};
  for (const k of WHEN_KEYS) if (js[k] !== undefined) sched[k] = String(js[k]);
  const kind = sched.schedule_interval ? 'interval' : sched.schedule_date ? 'once' : Object.keys(sched).some((k) => !k.includes('_date')) ? 'cron' : 'demand';
  const run: Doc = {};
  if (!clone) for (const k of RUN_KEYS) if (js[k] !== undefined) run[k] = js[k];
  return {
    description: j ? (clone ? `${j.description ?? j.job_id} (copy)` : j.description ?? '') : '',
    client_id: j?.client_id ?? '', kind, sched, run,
    actions: (j?.job_actions ?? []).map((a: Doc) => draftOf(a)),
  };
}

const STEPS = ['Client', 'Schedule', 'Actions', 'Review'];

/** stepOf: the wizard step where an error's field is edited. */
function stepOf(errors: Errors): number {
  const k = Object.keys(errors).find((x) => x !== '_form') ?? '';
  if (k.startsWith('job_schedule')) return 1;
  if (k.startsWith('job_actions')) return 2;
  if (k === 'client_id' || k === 'description') return 0;
  return -1;
}

export function JobEdit({ s, id, mode }: { s: Session; id: string; mode?: string }) {
  const isNew = id === 'new';
  const [d, setD] = useState<Draft | null>(isNew ? draftOfJob() : null);
  const [step, setStep] = useState(0);
  const [errors, setErrors] = useState<Errors>({});
  const [clients, setClients] = useState<Doc[]>([]);
  const [library, setLibrary] = useState<Doc[]>([]);
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    list(s, 'clients').then(setClients, () => {});
    list(s, 'actions').then(setLibrary, () => {});
    if (!isNew) call(s, 'GET', `/jobs/${id}`).then((j) => setD(draftOfJob(j, mode === 'clone')), (e) => setErrors(errorsOf(e)));
  }, [id, mode]);
  if (!d) return <Page title="Job"><FormError errors={errors} /><p>Loading…</p></Page>;
  const set = (p: Partial<Draft>) => setD({ ...d, ...p });
  const setSched = (k: string, v: string) => set({ sched: { ...d.sched, [k]: v } });
  const moveAction = (i: number, by: number) => {
    const a = [...d.actions];
    const [x] = a.splice(i, 1);
    a.splice(Math.max(0, Math.min(a.length, i + by)), 0, x);
    set({ actions: a });
  };

  const build = (): { doc?: Doc; errors: Errors } => {
    const errs: Errors = {};
    if (!d.client_id) errs.client_id = 'Choose the client (node) that runs this job.';
    const keys = { demand: [], once: ['schedule_date'], interval: ['schedule_interval', 'schedule_start_date', 'schedule_end_date'], cron: WHEN_KEYS.filter((k) => !k.includes('interval') && k !== 'schedule_date') }[d.kind];
    const js: Doc = { ...d.run };
    // a job without a trigger would start by itself as soon as its client sees it (Freezer's autostart):
    // an on-demand job is created stopped, so it runs when started
    if (d.kind === 'demand' && !js.status) js.status = 'stop';
    for (const k of keys) if (d.sched[k]?.trim()) js[k] = d.sched[k].trim();
    if (d.kind === 'once' && !js.schedule_date) errs['job_schedule.schedule_date'] = 'Give the date to run at (YYYY-MM-DDThh:mm:ss).';
    if (d.kind === 'interval' && !js.schedule_interval) errs['job_schedule.schedule_interval'] = 'Give the interval, like "1 days" or "30 minutes".';
    if (!d.actions.length) errs.job_actions = 'Add at least one action.';
    const job_actions: Doc[] = [];
    d.actions.forEach((a, i) => {
      const r = docOf(a);
      for (const [k, v] of Object.entries(r.errors)) errs[`job_actions.${i}.${k}`] = v;
      if (r.doc) job_actions.push(r.doc);
    });
    if (Object.keys(errs).length) return { errors: errs };
    const doc: Doc = { client_id: d.client_id, job_actions, job_schedule: js };
    if (d.description) doc.description = d.description;
    return { doc, errors: {} };
  };

  const save = async () => {
    const { doc, errors: errs } = build();
    if (!doc) {
      setErrors({ ...errs, _form: 'Some fields are not valid: see the messages next to them.' });
      const st = stepOf(errs);
      if (st >= 0) setStep(st);
      return;
    }
    setBusy(true);
    try {
      if (isNew || mode === 'clone') await call(s, 'POST', '/jobs', doc);
      else await call(s, 'POST', `/jobs/${id}`, doc);
      go('#/jobs');
    } catch (err) {
      const e = errorsOf(err);
      // the API names action fields job_actions.N.freezer_action.K: the form's are job_actions.N.K
      const fixed: Errors = {};
      for (const [k, v] of Object.entries(e)) fixed[k.replace(/^(job_actions\.\d+\.)freezer_action\./, '$1')] = v;
      setErrors(fixed);
      const st = stepOf(fixed);
      if (st >= 0) setStep(st);
    } finally { setBusy(false); }
  };

  const title = isNew ? 'New job' : mode === 'clone' ? `Clone of job ${id}` : `Edit job ${id}`;
  return (
    <Page title={title}>
      <ol class="steps" aria-label="Steps">
        {STEPS.map((t, i) => <li key={t}><button type="button" aria-current={i === step ? 'step' : undefined} onClick={() => setStep(i)}>{i + 1}. {t}</button></li>)}
      </ol>
      <form class="card" aria-label={title} novalidate onSubmit={(e) => { e.preventDefault(); step < 3 ? setStep(step + 1) : save(); }}>
        {step === 0 && <>
          <Field label="Client (node)" name="client_id" errors={errors} help="The node whose scheduler runs the job. Nodes register themselves when their scheduler starts.">
            {(fid, desc) => <select id={fid} name="client_id" value={d.client_id} aria-describedby={desc} onChange={(e) => set({ client_id: (e.target as HTMLSelectElement).value })}>
              <option value="">(choose)</option>
              {clients.map((c) => <option key={c.client?.client_id} value={c.client?.client_id}>{c.client?.client_id}{c.client?.hostname ? ` (${c.client.hostname})` : ''}</option>)}
              {d.client_id && !clients.some((c) => c.client?.client_id === d.client_id) && <option value={d.client_id}>{d.client_id}</option>}
            </select>}
          </Field>
          <Field label="Description" name="description" errors={errors}>
            {(fid, desc) => <input id={fid} name="description" value={d.description} aria-describedby={desc} onInput={(e) => set({ description: (e.target as HTMLInputElement).value })} />}
          </Field>
        </>}
        {step === 1 && <>
          <fieldset><legend>When does it run?</legend>
            {([['demand', 'On demand (runs when you press Start)'], ['once', 'Once, at a date'], ['interval', 'Every interval'], ['cron', 'Calendar (cron-like)']] as const).map(([k, t]) => (
              <label key={k} class="radio"><input type="radio" name="kind" value={k} checked={d.kind === k} onChange={() => set({ kind: k })} /> {t}</label>
            ))}
          </fieldset>
          {d.kind === 'once' && <SchedField k="schedule_date" label="Date" help="YYYY-MM-DDThh:mm:ss" d={d} setSched={setSched} errors={errors} />}
          {d.kind === 'interval' && <>
            <SchedField k="schedule_interval" label="Interval" help='"continuous" or N weeks|days|hours|minutes|seconds, e.g. "1 days"' d={d} setSched={setSched} errors={errors} />
            <SchedField k="schedule_start_date" label="Start date (optional)" help="YYYY-MM-DDThh:mm:ss" d={d} setSched={setSched} errors={errors} />
            <SchedField k="schedule_end_date" label="End date (optional)" help="YYYY-MM-DDThh:mm:ss" d={d} setSched={setSched} errors={errors} />
          </>}
          {d.kind === 'cron' && <div class="grid">
            {[...CRON_KEYS, 'schedule_start_date', 'schedule_end_date'].map((k) =>
              <SchedField key={k} k={k} label={k.replace('schedule_', '').replace(/_/g, ' ')} help={k.includes('_date') ? 'YYYY-MM-DDThh:mm:ss' : 'cron syntax: *, 5, 1-5, */15, mon-fri'} d={d} setSched={setSched} errors={errors} />)}
          </div>}
        </>}
        {step === 2 && <>
          {errors.job_actions && <div class="error" role="alert">{errors.job_actions}</div>}
          <ol class="action-list">
            {d.actions.map((a, i) => (
              <li key={i} class="card inner">
                <div class="row"><strong>Action {i + 1}: {summary(docOf(a).doc?.freezer_action ?? { action: a.fa.action })}</strong>
                  <span class="row-actions">
                    <button type="button" disabled={i === 0} onClick={() => moveAction(i, -1)} aria-label={`Move action ${i + 1} up`}>↑</button>
                    <button type="button" disabled={i === d.actions.length - 1} onClick={() => moveAction(i, 1)} aria-label={`Move action ${i + 1} down`}>↓</button>
                    <button type="button" class="danger" onClick={() => set({ actions: d.actions.filter((_, j) => j !== i) })}>Remove</button>
                  </span></div>
                <ActionForm draft={a} prefix={`job_actions.${i}.`} errors={errors} set={(x) => set({ actions: d.actions.map((y, j) => (j === i ? x : y)) })} />
              </li>
            ))}
          </ol>
          <div class="row">
            <button type="button" onClick={() => set({ actions: [...d.actions, draftOf()] })}>Add a new action</button>
            <label class="inline">or from the library:{' '}
              <select name="library" value="" onChange={(e) => { const a = library.find((x) => x.action_id === (e.target as HTMLSelectElement).value); if (a) set({ actions: [...d.actions, draftOf(a)] }); }}>
                <option value="">(choose an action)</option>
                {library.map((a) => <option key={a.action_id} value={a.action_id}>{a.action_id}: {summary(a.freezer_action)}</option>)}
              </select></label>
          </div>
        </>}
        {step === 3 && <Review d={d} build={build} />}
        <FormError errors={errors} />
        <div class="buttons">
          {step > 0 && <button type="button" onClick={() => setStep(step - 1)}>Back</button>}
          {step < 3 ? <button type="submit" class="primary">Next</button> : <button type="submit" class="primary" disabled={busy}>Save job</button>}
          <a class="button" href="#/jobs">Cancel</a>
        </div>
      </form>
    </Page>
  );
}

function SchedField({ k, label, help, d, setSched, errors }: { k: string; label: string; help: string; d: Draft; setSched: (k: string, v: string) => void; errors: Errors }) {
  return (
    <Field label={label} name={`job_schedule.${k}`} errors={errors} help={help}>
      {(id, desc) => <input id={id} name={k} value={d.sched[k] ?? ''} aria-describedby={desc} onInput={(e) => setSched(k, (e.target as HTMLInputElement).value)} />}
    </Field>
  );
}

function Review({ d, build }: { d: Draft; build: () => { doc?: Doc; errors: Errors } }) {
  const r = build();
  return (
    <div>
      <p><strong>Client:</strong> {d.client_id || '–'} · <strong>Schedule:</strong> {r.doc ? scheduleText(r.doc.job_schedule) : d.kind}</p>
      <ol>{d.actions.map((a, i) => <li key={i}>{summary(docOf(a).doc?.freezer_action ?? { action: a.fa.action })}</li>)}</ol>
      {r.doc && <details><summary>Document sent to the API</summary><pre>{JSON.stringify(r.doc, null, 2)}</pre></details>}
    </div>
  );
}
