/**
 * Actions: the project's library of reusable agent actions. The form is generated from the agent's
 * option table (agentopts.ts): pick the action kind, then every option that kind takes, grouped as the
 * agent's help groups them, each checked as the agent would (types, choices, required ones).
 * Saving: POST /actions (new) or POST /actions/{id} (replace: a PATCH would merge and never drop a key).
 */
import { useEffect, useState } from 'preact/hooks';
import { Session, call, list } from '../api.js';
import { ACTIONS, OptionSpec, REQUIRED, destOf, optionsFor, parseValue, validateAction } from '../agentopts.js';
import { Errors, Field, FormError, Page, errorsOf, go, usePoll } from '../util.js';
import { OPTIONS, dest } from '../../../engine/cli/options.js';

const OPT_DESTS = new Set(OPTIONS.map((o) => dest(o.name)));

export type Doc = Record<string, any>;

export function summary(fa: Doc = {}): string {
  const bits = [fa.action ?? '?'];
  if (fa.backup_name) bits.push(fa.backup_name);
  if (fa.path_to_backup) bits.push(`from ${fa.path_to_backup}`);
  if (fa.restore_abs_path) bits.push(`to ${fa.restore_abs_path}`);
  if (fa.command) bits.push(`"${fa.command}"`);
  return bits.join(' · ');
}

export function Actions({ s }: { s: Session }) {
  const { data, error, reload } = usePoll(() => list(s, 'actions'), 5000);
  const del = async (id: string) => {
    if (!confirm(`Delete action ${id}? Jobs keep their own copies.`)) return;
    await call(s, 'DELETE', `/actions/${id}`).catch((e) => alert(e.message));
    reload();
  };
  return (
    <Page title="Actions" actions={<a class="button primary" href="#/actions/new">New action</a>}>
      {error && <div class="error banner">{error}</div>}
      <div class="table-wrap"><table>
        <thead><tr><th>Id</th><th>Action</th><th>Retries</th><th>Mandatory</th><th></th></tr></thead>
        <tbody>
          {(data ?? []).map((a: Doc) => (
            <tr key={a.action_id}>
              <td><a href={`#/actions/${a.action_id}`}>{a.action_id}</a></td>
              <td>{summary(a.freezer_action)}</td>
              <td>{a.max_retries ?? '–'}</td>
              <td>{a.mandatory ? 'yes' : 'no'}</td>
              <td class="row-actions"><a class="button" href={`#/actions/${a.action_id}`}>Edit</a> <button onClick={() => del(a.action_id)}>Delete</button></td>
            </tr>
          ))}
          {data && data.length === 0 && <tr><td colSpan={5} class="muted">No actions yet.</td></tr>}
        </tbody>
      </table></div>
    </Page>
  );
}

/** The editable text of an action: option dest -> text (or boolean), plus the retry rules. */
export interface ActionDraft { fa: Record<string, string | boolean>; max_retries: string; max_retries_interval: string; mandatory: boolean }

export function draftOf(a: Doc = {}): ActionDraft {
  const fa: Record<string, string | boolean> = {};
  for (const [k, v] of Object.entries(a.freezer_action ?? { action: 'backup' })) {
    fa[k] = typeof v === 'boolean' ? v : Array.isArray(v) ? v.join(', ') : String(v);
  }
  return { fa, max_retries: a.max_retries === undefined ? '' : String(a.max_retries), max_retries_interval: a.max_retries_interval === undefined ? '' : String(a.max_retries_interval), mandatory: !!a.mandatory };
}

/** docOf checks a draft and builds the action document; errors are keyed by option dest. */
export function docOf(d: ActionDraft): { doc?: Doc; errors: Errors } {
  const errors: Errors = {};
  const action = String(d.fa.action ?? 'backup');
  const fa: Doc = { action };
  for (const o of optionsFor(action)) {
    const k = destOf(o);
    const v = d.fa[k];
    if (v === undefined || v === '' || (o.type === 'bool' && v === (o.default ?? false))) continue;
    try { fa[k] = parseValue(o, v); } catch (e) { errors[k] = (e as Error).message; }
  }
  // keys the form does not know (set through the API) are kept as they were
  const known = new Set(optionsFor(action).map(destOf));
  for (const [k, v] of Object.entries(d.fa)) if (!known.has(k) && k !== 'action' && !(k in fa) && typeof v === 'string' && !OPT_DESTS.has(k)) fa[k] = v;
  Object.assign(errors, Object.fromEntries(Object.entries(validateAction(fa)).filter(([k]) => !errors[k])));
  const doc: Doc = { freezer_action: fa, mandatory: d.mandatory };
  for (const k of ['max_retries', 'max_retries_interval'] as const) {
    if (d[k] === '') continue;
    if (!/^\d+$/.test(d[k])) errors[k] = 'must be a whole number, 0 or more';
    else doc[k] = Number(d[k]);
  }
  return Object.keys(errors).length ? { errors } : { doc, errors };
}



function OptionInput({ o, value, set, errors, prefix }: { o: OptionSpec; value: string | boolean | undefined; set: (v: string | boolean) => void; errors: Errors; prefix: string }) {
  const k = destOf(o);
  const required = (REQUIRED[String('')] ?? []).includes(k);
  const label = `${o.name}${o.metavar ? ` ${o.metavar}` : ''}`;
  return (
    <Field label={label} name={prefix + k} errors={errors} help={o.help + (o.ignored ? ' (accepted, no effect in floe)' : '') + (o.default !== undefined && o.type !== 'bool' ? ` Default: ${o.default}.` : '')}>
      {(id, d) => o.type === 'bool'
        ? <input id={id} type="checkbox" name={k} checked={value === undefined ? !!o.default : !!value} aria-describedby={d} onChange={(e) => set((e.target as HTMLInputElement).checked)} />
        : o.choices
          ? <select id={id} name={k} value={String(value ?? o.default ?? '')} aria-describedby={d} onChange={(e) => set((e.target as HTMLSelectElement).value)}>
              {!o.default && <option value="">(not set)</option>}
              {o.choices.map((c) => <option key={c} value={c}>{c}</option>)}
            </select>
          : <input id={id} name={k} value={String(value ?? '')} required={required} placeholder={o.default !== undefined ? String(o.default) : ''} aria-describedby={d}
              inputMode={o.type === 'int' || o.type === 'float' ? 'decimal' : undefined} onInput={(e) => set((e.target as HTMLInputElement).value)} />}
    </Field>
  );
}

/** ActionForm edits one action draft (used by the Actions page and by the job wizard). */
export function ActionForm({ draft, set, errors, prefix = '' }: { draft: ActionDraft; set: (d: ActionDraft) => void; errors: Errors; prefix?: string }) {
  const action = String(draft.fa.action ?? 'backup');
  const opts = optionsFor(action);
  const required = new Set(REQUIRED[action] ?? []);
  const groups = new Map<string, OptionSpec[]>();
  for (const o of opts) groups.set(o.group, [...(groups.get(o.group) ?? []), o]);
  const setFa = (k: string, v: string | boolean) => set({ ...draft, fa: { ...draft.fa, [k]: v } });
  return (
    <div class="action-form">
      <Field label="Action" name={prefix + 'action'} errors={errors}>
        {(id) => <select id={id} name="action" value={action} onChange={(e) => setFa('action', (e.target as HTMLSelectElement).value)}>
          {ACTIONS.map((a) => <option key={a} value={a}>{a}</option>)}
        </select>}
      </Field>
      <fieldset><legend>Required</legend>
        {opts.filter((o) => required.has(destOf(o))).map((o) => <OptionInput key={o.name} o={o} value={draft.fa[destOf(o)]} set={(v) => setFa(destOf(o), v)} errors={errors} prefix={prefix} />)}
      </fieldset>
      {[...groups].map(([g, os]) => {
        const rest = os.filter((o) => !required.has(destOf(o)));
        if (!rest.length) return null;
        return (
          <details key={g} open={g === 'General' || g === 'Data' || g === 'Restore'}>
            <summary>{g}</summary>
            <div class="grid">{rest.map((o) => <OptionInput key={o.name} o={o} value={draft.fa[destOf(o)]} set={(v) => setFa(destOf(o), v)} errors={errors} prefix={prefix} />)}</div>
          </details>
        );
      })}
      <details><summary>Retries</summary>
        <div class="grid">
          <Field label="max_retries" name={prefix + 'max_retries'} errors={errors}>{(id, d) => <input id={id} name="max_retries" value={draft.max_retries} aria-describedby={d} onInput={(e) => set({ ...draft, max_retries: (e.target as HTMLInputElement).value })} />}</Field>
          <Field label="max_retries_interval (s)" name={prefix + 'max_retries_interval'} errors={errors}>{(id, d) => <input id={id} name="max_retries_interval" value={draft.max_retries_interval} aria-describedby={d} onInput={(e) => set({ ...draft, max_retries_interval: (e.target as HTMLInputElement).value })} />}</Field>
          <Field label="mandatory" name={prefix + 'mandatory'} errors={errors}>{(id) => <input id={id} type="checkbox" checked={draft.mandatory} onChange={(e) => set({ ...draft, mandatory: (e.target as HTMLInputElement).checked })} />}</Field>
        </div>
      </details>
    </div>
  );
}

/** apiErrorsFor maps an API error's field ("freezer_action.max_level") to the form's keys. */
export function prefixed(errors: Errors, from: string, to: string): Errors {
  const out: Errors = {};
  for (const [k, v] of Object.entries(errors)) out[k.startsWith(from) ? to + k.slice(from.length) : k] = v;
  return out;
}

export function ActionEdit({ s, id }: { s: Session; id: string }) {
  const isNew = id === 'new';
  const [draft, setDraft] = useState<ActionDraft | null>(isNew ? draftOf() : null);
  const [errors, setErrors] = useState<Errors>({});
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    if (!isNew) call(s, 'GET', `/actions/${id}`).then((a) => setDraft(draftOf(a)), (e) => setErrors(errorsOf(e)));
  }, [id]);
  const save = async (e: Event) => {
    e.preventDefault();
    if (!draft) return;
    const { doc, errors: errs } = docOf(draft);
    if (!doc) return setErrors({ ...errs, _form: 'Some fields are not valid: see the messages next to them.' });
    setBusy(true);
    try {
      if (isNew) await call(s, 'POST', '/actions', doc);
      else await call(s, 'POST', `/actions/${id}`, doc);
      go('#/actions');
    } catch (err) {
      setErrors(prefixed(errorsOf(err), 'freezer_action.', ''));
    } finally { setBusy(false); }
  };
  return (
    <Page title={isNew ? 'New action' : `Action ${id}`}>
      <form onSubmit={save} class="card" aria-label="Action" novalidate>
        {draft ? <ActionForm draft={draft} set={setDraft} errors={errors} /> : <p>Loading…</p>}
        <FormError errors={errors} />
        <div class="buttons"><button type="submit" class="primary" disabled={busy}>Save action</button> <a class="button" href="#/actions">Cancel</a></div>
      </form>
    </Page>
  );
}
