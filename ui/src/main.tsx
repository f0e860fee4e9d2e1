/**
 * floe's web UI: a single page app (Preact) served by `floe api` under /ui/. Routing is the URL's hash
 * (#/jobs, #/backups/ID, ...), so the server only serves static files. Sign-in asks for an API token,
 * checked with GET /auth/token and kept in sessionStorage (this tab, this session: never in a URL).
 * Pages poll the API every few seconds for live status.
 */
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { Session, loadSession, saveSession, signIn } from './api.js';
import { Errors, Field, FormError, errorsOf } from './util.js';
import { Dashboard } from './pages/dashboard.js';
import { JobEdit, Jobs } from './pages/jobs.js';
import { ActionEdit, Actions } from './pages/actions.js';
import { BackupDetail, Backups, RestoreWizard } from './pages/backups.js';
import { Clients } from './pages/clients.js';
import { SessionDetail, Sessions } from './pages/sessions.js';

const NAV: Array<[string, string]> = [
  ['dashboard', 'Dashboard'], ['jobs', 'Jobs'], ['actions', 'Actions'], ['backups', 'Backups'],
  ['clients', 'Clients'], ['sessions', 'Sessions'],
];

function useHash(): string[] {
  const get = () => (location.hash.replace(/^#\/?/, '') || 'dashboard').split('/').map(decodeURIComponent);
  const [parts, setParts] = useState(get);
  useEffect(() => {
    const on = () => setParts(get());
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  return parts;
}

function SignIn({ onDone }: { onDone: (s: Session) => void }) {
  const [token, setToken] = useState('');
  const [errors, setErrors] = useState<Errors>({});
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    if (!token.trim()) return setErrors({ token: 'Enter an API token (floe api token create ...).' });
    setBusy(true);
    try {
      onDone(await signIn(token.trim()));
    } catch (err) {
      setErrors(errorsOf(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <main class="signin">
      <form onSubmit={submit} class="card" aria-label="Sign in">
        <h1><span class="logo">floe</span> sign in</h1>
        <p class="muted">Paste an API token. It is kept for this browser tab only.</p>
        <Field label="API token" name="token" errors={errors}>
          {(id, d) => <input id={id} name="token" type="password" autocomplete="off" value={token} aria-describedby={d}
            onInput={(e) => setToken((e.target as HTMLInputElement).value)} autofocus />}
        </Field>
        {!errors.token && <FormError errors={errors} />}
        <button type="submit" class="primary" disabled={busy}>{busy ? 'Checking…' : 'Sign in'}</button>
      </form>
    </main>
  );
}

function App() {
  const [session, setSession] = useState<Session | null>(loadSession);
  const [open, setOpen] = useState(false);
  const parts = useHash();
  if (!session) return <SignIn onDone={(s) => { saveSession(s); setSession(s); }} />;
  const [page, id, sub] = parts;
  const s = session;
  let body;
  switch (page) {
    case 'jobs': body = id ? <JobEdit s={s} id={id} mode={sub} /> : <Jobs s={s} />; break;
    case 'actions': body = id ? <ActionEdit s={s} id={id} /> : <Actions s={s} />; break;
    case 'backups': body = id ? <BackupDetail s={s} id={id} /> : <Backups s={s} />; break;
    case 'restore': body = <RestoreWizard s={s} id={id} />; break;
    case 'clients': body = <Clients s={s} />; break;
    case 'sessions': body = id ? <SessionDetail s={s} id={id} /> : <Sessions s={s} />; break;
    default: body = <Dashboard s={s} />;
  }
  return (
    <div class="layout">
      <header class="top">
        <a class="logo" href="#/dashboard">floe</a>
        <button class="menu" aria-expanded={open} aria-controls="nav" onClick={() => setOpen(!open)}>Menu</button>
        <nav id="nav" class={open ? 'open' : ''} aria-label="Main">
          {NAV.map(([k, label]) => (
            <a key={k} href={`#/${k}`} aria-current={page === k || (!page && k === 'dashboard') ? 'page' : undefined} onClick={() => setOpen(false)}>{label}</a>
          ))}
        </nav>
        <div class="who">
          <span title="project / role">{s.project} · {s.role}</span>
          <button onClick={() => { saveSession(null); setSession(null); }}>Sign out</button>
        </div>
      </header>
      <main class="content">{body}</main>
    </div>
  );
}

render(<App />, document.getElementById('app')!);
