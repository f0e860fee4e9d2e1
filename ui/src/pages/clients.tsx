/**
 * Clients: the nodes of the project (registered by their schedulers, or here), their capabilities and
 * when they were last seen: the newest start or end among their jobs' runs (the API keeps no heartbeat).
 */
import { useState } from 'preact/hooks';
import { Session, call, list } from '../api.js';
import { Errors, Field, FormError, Page, ago, errorsOf, usePoll, when } from '../util.js';
import type { Doc } from './actions.js';

export function Clients({ s }: { s: Session }) {
  const { data, error, reload } = usePoll(async () => ({ clients: await list(s, 'clients'), jobs: await list(s, 'jobs') }), 5000);
  const [form, setForm] = useState({ client_id: '', hostname: '', description: '' });
  const [errors, setErrors] = useState<Errors>({});
  const [show, setShow] = useState(false);
  const seen = new Map<string, number>();
  for (const j of data?.jobs ?? []) {
    const t = Math.max(Number(j.job_schedule?.time_started ?? 0), Number(j.job_schedule?.time_ended ?? 0));
    if (t > (seen.get(j.client_id) ?? 0)) seen.set(j.client_id, t);
  }
  const register = async (e: Event) => {
    e.preventDefault();
    const body: Doc = { client_id: form.client_id.trim() };
    if (form.hostname.trim()) body.hostname = form.hostname.trim();
    if (form.description.trim()) body.description = form.description.trim();
    if (!body.client_id) return setErrors({ client_id: 'Give the client id (usually <project>_<hostname>).' });
    try { await call(s, 'POST', '/clients', body); setErrors({}); setShow(false); reload(); } catch (err) { setErrors(errorsOf(err)); }
  };
  const del = async (id: string) => {
    if (!confirm(`Forget client ${id}?`)) return;
    await call(s, 'DELETE', `/clients/${id}`).catch((e) => alert(e.message));
    reload();
  };
  const caps = (c: Doc, k: string) => (c[`supported_${k}`] ?? []).join(', ') || '–';
  return (
    <Page title="Clients" actions={<button class="primary" onClick={() => setShow(!show)} aria-expanded={show}>Register a client</button>}>
      {show && <form class="card" onSubmit={register} aria-label="Register a client" novalidate>
        <Field label="Client id" name="client_id" errors={errors}>{(id, d) => <input id={id} name="client_id" value={form.client_id} aria-describedby={d} onInput={(e) => setForm({ ...form, client_id: (e.target as HTMLInputElement).value })} />}</Field>
        <Field label="Host name" name="hostname" errors={errors}>{(id, d) => <input id={id} name="hostname" value={form.hostname} aria-describedby={d} onInput={(e) => setForm({ ...form, hostname: (e.target as HTMLInputElement).value })} />}</Field>
        <Field label="Description" name="description" errors={errors}>{(id, d) => <input id={id} name="description" value={form.description} aria-describedby={d} onInput={(e) => setForm({ ...form, description: (e.target as HTMLInputElement).value })} />}</Field>
        <FormError errors={errors} />
        <div class="buttons"><button type="submit" class="primary">Register</button></div>
      </form>}
      {error && <div class="error banner">{error}</div>}
      <div class="table-wrap"><table>
        <thead><tr><th>Client</th><th>Host</th><th>Actions</th><th>Modes</th><th>Storages</th><th>Engines</th><th>Last seen</th><th></th></tr></thead>
        <tbody>
          {(data?.clients ?? []).map((d: Doc) => { const c = d.client ?? {}; return (
            <tr key={c.client_id}>
              <td>{c.client_id}{c.is_central ? <span class="badge">central</span> : null}<div class="muted small">{c.description}</div></td>
              <td>{c.hostname ?? '–'}</td>
              <td>{caps(c, 'actions')}</td><td>{caps(c, 'modes')}</td><td>{caps(c, 'storages')}</td><td>{caps(c, 'engines')}</td>
              <td title={when(seen.get(c.client_id))}>{ago(seen.get(c.client_id))}</td>
              <td class="row-actions"><button class="danger" onClick={() => del(c.client_id)}>Forget</button></td>
            </tr>); })}
          {data && data.clients.length === 0 && <tr><td colSpan={8} class="muted">No clients: start a scheduler (floe scheduler start) or register one.</td></tr>}
        </tbody>
      </table></div>
    </Page>
  );
}
