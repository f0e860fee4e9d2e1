/**
 * Backups: the history per host and backup name (level, time, size, compression, encryption), free-text
 * search (the API's `_all` filter) and host/name filters; a backup's details; the restore wizard:
 * 1 point in time (a backup of the same host and name), 2 target client and directory, 3 confirm ->
 * creates a restore job (its action is saved in the library by the API) on the target client, starts it
 * (POST /jobs/{id}/event {"start": null}) and shows its status until it ends.
 */
import { useEffect, useState } from 'preact/hooks';
import { Session, call, list } from '../api.js';
import { Errors, Field, FormError, Page, Status, bytes, errorsOf, usePoll, when } from '../util.js';
import type { Doc } from './actions.js';
import { jobEvent } from './jobs.js';

const meta = (b: Doc): Doc => b.backup_metadata ?? {};

export function Backups({ s }: { s: Session }) {
  const [q, setQ] = useState('');
  const [host, setHost] = useState('');
  const [name, setName] = useState('');
  const { data, error } = usePoll(() => {
    const match: Doc[] = [];
    if (q.trim()) match.push({ _all: q.trim() });
    if (host) match.push({ hostname: host });
    if (name) match.push({ backup_name: name });
    return list(s, 'backups', match.length ? { match: JSON.stringify(match) } : {});
  }, 4000, [q, host, name]);
  const all = usePoll(() => list(s, 'backups'), 15000).data ?? [];
  const hosts = [...new Set(all.map((b) => String(meta(b).hostname ?? '')))].filter(Boolean).sort();
  const names = [...new Set(all.map((b) => String(meta(b).backup_name ?? '')))].filter(Boolean).sort();
  const groups = new Map<string, Doc[]>();
  for (const b of data ?? []) {
    const k = `${meta(b).hostname ?? '?'} / ${meta(b).backup_name ?? '?'}`;
    groups.set(k, [...(groups.get(k) ?? []), b]);
  }
  return (
    <Page title="Backups">
      <form class="filters" role="search" onSubmit={(e) => e.preventDefault()}>
        <label>Search <input type="search" name="q" value={q} placeholder="any text" onInput={(e) => setQ((e.target as HTMLInputElement).value)} /></label>
        <label>Host <select name="host" value={host} onChange={(e) => setHost((e.target as HTMLSelectElement).value)}><option value="">all</option>{hosts.map((h) => <option key={h}>{h}</option>)}</select></label>
        <label>Name <select name="name" value={name} onChange={(e) => setName((e.target as HTMLSelectElement).value)}><option value="">all</option>{names.map((h) => <option key={h}>{h}</option>)}</select></label>
      </form>
      {error && <div class="error banner">{error}</div>}
      {data && data.length === 0 && <p class="muted">No backups{q || host || name ? ' match' : ' yet'}.</p>}
      {[...groups].map(([g, rows]) => (
        <div key={g} class="group">
          <h2>{g} <span class="muted small">{rows.length} backup{rows.length > 1 ? 's' : ''}</span></h2>
          <div class="table-wrap"><table class="backups">
            <thead><tr><th>Time</th><th>Level</th><th>Size stored</th><th>Source</th><th>Compression</th><th>Encryption</th><th>Duration</th><th></th></tr></thead>
            <tbody>{rows.map((b) => { const m = meta(b); return (
              <tr key={b.backup_id} data-backup={b.backup_id}>
                <td data-label="Time"><a href={`#/backups/${b.backup_id}`}>{when(m.time_stamp)}</a></td>
                <td class="level" data-label="Level">{m.curr_backup_level ?? '–'}</td>
                <td class="size" data-label="Stored">{bytes(m.stored_bytes)}</td>
                <td data-label="Source">{bytes(m.source_bytes)}</td>
                <td data-label="Compression">{m.compression || 'none'}</td>
                <td data-label="Encryption">{m.encryption ? 'encrypted' : 'no'}</td>
                <td data-label="Duration">{m.duration !== undefined && m.duration !== '' ? `${Number(m.duration).toFixed(1)} s` : '–'}</td>
                <td class="row-actions"><a class="button" href={`#/restore/${b.backup_id}`}>Restore…</a></td>
              </tr>); })}</tbody>
          </table></div>
        </div>
      ))}
    </Page>
  );
}

export function BackupDetail({ s, id }: { s: Session; id: string }) {
  const [b, setB] = useState<Doc>();
  const [err, setErr] = useState<string>();
  useEffect(() => { call(s, 'GET', `/backups/${id}`).then(setB, (e) => setErr(e.message)); }, [id]);
  const m = b ? meta(b) : {};
  return (
    <Page title={`Backup ${m.backup_name ?? id}`} actions={b && <a class="button primary" href={`#/restore/${id}`}>Restore…</a>}>
      {err && <div class="error banner">{err}</div>}
      {b && <dl class="kv">
        <dt>Backup id</dt><dd>{b.backup_id}</dd>
        <dt>Status</dt><dd>{b.status}</dd>
        <dt>Time</dt><dd>{when(m.time_stamp)}</dd>
        <dt>Level</dt><dd>{m.curr_backup_level}</dd>
        <dt>Stored</dt><dd>{bytes(m.stored_bytes)}</dd>
        <dt>Encryption</dt><dd>{m.encryption ? 'encrypted (AES-256-CFB)' : 'no'}</dd>
        {Object.entries(m).filter(([k]) => !['time_stamp', 'curr_backup_level', 'stored_bytes', 'encryption'].includes(k)).map(([k, v]) => <><dt key={k}>{k}</dt><dd>{typeof v === 'object' ? JSON.stringify(v) : String(v === '' ? '–' : v)}</dd></>)}
      </dl>}
      <p><a href="#/backups">← all backups</a></p>
    </Page>
  );
}

/** isoOf: a backup's time_stamp as the agent's --restore-from-date (UTC, with Z). */
export function isoOf(epoch: number): string {
  return new Date(epoch * 1000).toISOString().replace(/\.\d+Z$/, 'Z');
}

export function RestoreWizard({ s, id }: { s: Session; id: string }) {
  const [step, setStep] = useState(0);
  const [base, setBase] = useState<Doc>();
  const [chain, setChain] = useState<Doc[]>([]);
  const [pick, setPick] = useState(id);
  const [clients, setClients] = useState<Doc[]>([]);
  const [target, setTarget] = useState('');
  const [path, setPath] = useState('');
  const [overwrite, setOverwrite] = useState(false);
  const [pass, setPass] = useState('');
  const [errors, setErrors] = useState<Errors>({});
  const [jobId, setJobId] = useState<string>();
  useEffect(() => {
    call(s, 'GET', `/backups/${id}`).then(async (b) => {
      setBase(b);
      const m = meta(b);
      setChain(await list(s, 'backups', { match: JSON.stringify([{ hostname: m.hostname }, { backup_name: m.backup_name }]) }));
    }, (e) => setErrors(errorsOf(e)));
    list(s, 'clients').then((c) => { setClients(c); if (c.length === 1) setTarget(c[0].client?.client_id); }, () => {});
  }, [id]);
  const chosen = chain.find((b) => b.backup_id === pick) ?? base;
  const m = chosen ? meta(chosen) : {};

  const next = () => {
    if (step === 1) {
      const e: Errors = {};
      if (!target) e.client_id = 'Choose the client that restores.';
      if (!path.trim()) e.restore_abs_path = 'Give the directory to restore into.';
      else if (!path.trim().startsWith('/')) e.restore_abs_path = 'Must be an absolute path (starting with /).';
      if (m.encryption && !pass.trim()) e.encrypt_pass_file = 'This backup is encrypted: give the password file on the target client.';
      setErrors(e);
      if (Object.keys(e).length) return;
    }
    setStep(step + 1);
  };
  const start = async () => {
    const fa: Doc = {
      action: 'restore', mode: m.mode || 'fs', backup_name: m.backup_name, hostname: m.hostname,
      container: m.container, storage: m.storage || 'local', restore_abs_path: path.trim(),
      restore_from_date: isoOf(Number(m.time_stamp)),
    };
    if (overwrite) fa.overwrite = true;
    if (pass.trim()) fa.encrypt_pass_file = pass.trim();
    const job = { client_id: target, description: `Restore ${m.hostname}/${m.backup_name} of ${when(m.time_stamp)} to ${path.trim()}`, job_actions: [{ freezer_action: fa, max_retries: 0 }], job_schedule: { status: 'stop' } };
    // created stopped, then started: one run exactly (a new job without a schedule would start by itself,
    // and a start event that the scheduler saw after that run would restore a second time)
    try {
      const r = await call<{ job_id: string }>(s, 'POST', '/jobs', job);
      await jobEvent(s, r.job_id, 'start');
      setJobId(r.job_id);
      setStep(3);
    } catch (err) {
      const e = errorsOf(err);
      const fixed: Errors = {};
      for (const [k, v] of Object.entries(e)) fixed[k.replace(/^job_actions\.0\.freezer_action\./, '')] = v;
      setErrors(fixed);
      if (Object.keys(fixed).some((k) => k !== '_form')) setStep(1);
    }
  };

  return (
    <Page title="Restore">
      <ol class="steps" aria-label="Steps">{['Point in time', 'Target', 'Confirm', 'Progress'].map((t, i) => <li key={t}><span aria-current={i === step ? 'step' : undefined} class="step">{i + 1}. {t}</span></li>)}</ol>
      <div class="card">
        {step === 0 && <fieldset><legend>Restore {m.hostname} / {m.backup_name} as it was at:</legend>
          {chain.map((b) => { const bm = meta(b); return (
            <label key={b.backup_id} class="radio"><input type="radio" name="point" value={b.backup_id} checked={pick === b.backup_id} onChange={() => setPick(b.backup_id)} /> {when(bm.time_stamp)} · level {bm.curr_backup_level} · {bytes(bm.stored_bytes)}{bm.encryption ? ' · encrypted' : ''}</label>); })}
          {!chain.length && <p>Loading…</p>}
        </fieldset>}
        {step === 1 && <>
          <Field label="Target client" name="client_id" errors={errors} help="Its scheduler runs the restore; it must reach the backup's storage.">
            {(fid, d) => <select id={fid} name="client_id" value={target} aria-describedby={d} onChange={(e) => setTarget((e.target as HTMLSelectElement).value)}>
              <option value="">(choose)</option>
              {clients.map((c) => <option key={c.client?.client_id} value={c.client?.client_id}>{c.client?.client_id}</option>)}
            </select>}
          </Field>
          <Field label="Restore into (directory on the target)" name="restore_abs_path" errors={errors} help="Created if missing; must be empty unless you allow overwriting.">
            {(fid, d) => <input id={fid} name="restore_abs_path" value={path} aria-describedby={d} placeholder="/srv/restore" onInput={(e) => setPath((e.target as HTMLInputElement).value)} />}
          </Field>
          <Field label="Overwrite what is there" name="overwrite" errors={errors}>
            {(fid) => <input id={fid} type="checkbox" name="overwrite" checked={overwrite} onChange={(e) => setOverwrite((e.target as HTMLInputElement).checked)} />}
          </Field>
          {m.encryption && <Field label="Password file (on the target)" name="encrypt_pass_file" errors={errors}>
            {(fid, d) => <input id={fid} name="encrypt_pass_file" value={pass} aria-describedby={d} onInput={(e) => setPass((e.target as HTMLInputElement).value)} />}
          </Field>}
        </>}
        {step === 2 && <p>Restore <strong>{m.hostname} / {m.backup_name}</strong> as of <strong>{when(m.time_stamp)}</strong> (level {m.curr_backup_level}) on <strong>{target}</strong> into <strong>{path}</strong>{overwrite ? ', overwriting' : ''}.</p>}
        {step === 3 && jobId && <RestoreProgress s={s} jobId={jobId} />}
        <FormError errors={errors} />
        <div class="buttons">
          {step > 0 && step < 3 && <button onClick={() => setStep(step - 1)}>Back</button>}
          {step < 2 && <button class="primary" onClick={next}>Next</button>}
          {step === 2 && <button class="primary" onClick={start}>Start restore</button>}
          {step < 3 && <a class="button" href="#/backups">Cancel</a>}
        </div>
      </div>
    </Page>
  );
}

function RestoreProgress({ s, jobId }: { s: Session; jobId: string }) {
  const { data } = usePoll(() => call(s, 'GET', `/jobs/${jobId}`), 2000);
  const js: Doc = data?.job_schedule ?? {};
  const done = js.status === 'completed' || !!js.result;
  return (
    <div class="progress" role="status" aria-live="polite" data-job={jobId}>
      <p>Restore job <a href={`#/jobs/${jobId}/edit`}>{jobId}</a>: status <Status v={js.status || js.event || 'requested'} /> result <Status v={js.result} /></p>
      {!done && <div class="spinner" aria-hidden="true" />}
      {!done && <p class="muted">Waiting for the target client's scheduler to run it…</p>}
      {done && <p class={js.result === 'success' ? 'ok' : 'error'}>{js.result === 'success' ? 'Restore finished.' : `Restore ended: ${js.result || js.status}.`}</p>}
    </div>
  );
}
