/** Small shared pieces: formatting, polling, form fields with their error, buttons, charts. */
import { useEffect, useRef, useState } from 'preact/hooks';
import type { ComponentChildren } from 'preact';
import { ApiError } from './api.js';

export function bytes(n: unknown): string {
  const v = Number(n);
  if (!Number.isFinite(v) || n === '' || n === undefined) return '–';
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let x = v, i = 0;
  while (x >= 1024 && i < u.length - 1) { x /= 1024; i++; }
  return `${i ? x.toFixed(1) : x} ${u[i]}`;
}

export function when(epoch: unknown): string {
  const v = Number(epoch);
  if (!v) return '–';
  return new Date(v * 1000).toISOString().replace('T', ' ').slice(0, 19) + ' UTC';
}

export function ago(epoch: unknown): string {
  const v = Number(epoch);
  if (!v) return 'never';
  const s = Math.round(Date.now() / 1000 - v);
  if (s < 60) return `${Math.max(s, 0)} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}

/** usePoll runs `load` now and every `ms` (live status), while the component is shown. */
export function usePoll<T>(load: () => Promise<T>, ms = 3000, deps: unknown[] = []): { data?: T; error?: string; reload: () => void } {
  const [data, setData] = useState<T>();
  const [error, setError] = useState<string>();
  const ref = useRef(load);
  ref.current = load;
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    const run = () => ref.current().then((d) => { if (live) { setData(d); setError(undefined); } }, (e) => { if (live) setError(String((e as Error).message ?? e)); });
    run();
    const t = setInterval(run, ms);
    return () => { live = false; clearInterval(t); };
  }, [tick, ...deps]);
  return { data, error, reload: () => setTick((x) => x + 1) };
}

/** Errors of a form: by field (dotted path) plus one for the whole form. */
export type Errors = Record<string, string>;

export function errorsOf(err: unknown): Errors {
  if (err instanceof ApiError) {
    const msg = err.description || err.title;
    return err.field ? { [err.field]: msg, _form: `${err.title}: ${msg}` } : { _form: `${err.title}: ${msg}` };
  }
  return { _form: String((err as Error)?.message ?? err) };
}

let seq = 0;
export function Field(p: { label: string; name: string; errors?: Errors; help?: string; children: (id: string, describedBy: string) => ComponentChildren }) {
  const id = `f-${p.name.replace(/\W/g, '-')}-${(seq = (seq + 1) % 1e6)}`;
  const idRef = useRef(id);
  const err = p.errors?.[p.name];
  const eid = `${idRef.current}-err`;
  return (
    <div class={`field${err ? ' invalid' : ''}`} data-field={p.name}>
      <label for={idRef.current}>{p.label}</label>
      {p.children(idRef.current, err ? eid : '')}
      {p.help && <small class="help">{p.help}</small>}
      {err && <div class="error" id={eid} role="alert">{err}</div>}
    </div>
  );
}

export function FormError({ errors }: { errors: Errors }) {
  return errors._form ? <div class="error banner" role="alert">{errors._form}</div> : null;
}

export function Status({ v }: { v?: string }) {
  return v ? <span class={`badge b-${v}`}>{v}</span> : <span class="muted">–</span>;
}

export function Page(p: { title: string; actions?: ComponentChildren; children: ComponentChildren }) {
  return (
    <section>
      <header class="page-head"><h1>{p.title}</h1><div class="toolbar">{p.actions}</div></header>
      {p.children}
    </section>
  );
}

/** BarChart: an SVG bar chart, labels under bars; values are numbers, `fmt` formats the tooltips. */
export function BarChart(p: { title: string; data: Array<{ label: string; value: number; cls?: string }>; fmt?: (v: number) => string }) {
  const w = 600, h = 180, pad = 24;
  const max = Math.max(1, ...p.data.map((d) => d.value));
  const bw = p.data.length ? (w - pad) / p.data.length : 0;
  const fmt = p.fmt ?? String;
  return (
    <figure class="chart">
      <figcaption>{p.title}</figcaption>
      <svg viewBox={`0 0 ${w} ${h + 30}`} role="img" aria-label={p.title}>
        <line x1={pad} y1={h} x2={w} y2={h} class="axis" />
        {p.data.map((d, i) => {
          const bh = (d.value / max) * (h - 20);
          return (
            <g key={d.label}>
              <rect x={pad + i * bw + bw * 0.1} y={h - bh} width={bw * 0.8} height={bh} class={`bar ${d.cls ?? ''}`}><title>{`${d.label}: ${fmt(d.value)}`}</title></rect>
              {p.data.length <= 12 && <text x={pad + i * bw + bw / 2} y={h - bh - 4} class="val">{fmt(d.value)}</text>}
              {(p.data.length <= 12 || i % Math.ceil(p.data.length / 10) === 0) && <text x={pad + i * bw + bw / 2} y={h + 16} class="lbl">{d.label}</text>}
            </g>
          );
        })}
        {p.data.length === 0 && <text x={w / 2} y={h / 2} class="lbl">no data</text>}
      </svg>
    </figure>
  );
}

export function go(hash: string): void {
  location.hash = hash;
}
