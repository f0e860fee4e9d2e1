/**
 * The web UI's static files (built by `npm run build:ui` into dist/ui/: index.html, app.js, style.css).
 *
 *   GET /ui, /ui/          index.html (the single page app; its routes are in the URL's hash)
 *   GET /ui/{file}         one of the built files; anything else 404
 *   GET /  (Accept: text/html)   redirect to /ui/; API clients (freezer's) still get the versions document
 *
 * The files are read once and kept in memory (about 70 KiB). If the UI was not built, /ui answers 404
 * with a hint and `/` behaves as before. A strict Content-Security-Policy: the app loads only its own
 * script and stylesheet and talks only to this server.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml', '.png': 'image/png', '.ico': 'image/x-icon',
};
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/** UI_DIR: dist/ui, next to dist/api where this file is compiled. */
export const UI_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'ui');

function loadFiles(dir: string): Map<string, Buffer> {
  const files = new Map<string, Buffer>();
  try {
    for (const name of readdirSync(dir)) if (TYPES[extname(name)]) files.set(name, readFileSync(join(dir, name)));
  } catch { /* not built: no files */ }
  return files;
}

/** installUi adds the UI's routes and the `/` redirect for browsers to the app (not encapsulated). */
export function installUi(app: FastifyInstance, dir: string = UI_DIR): void {
  const files = loadFiles(dir);
  const send = (name: string, reply: import('fastify').FastifyReply) => {
    const body = files.get(name);
    if (!body) {
      reply.code(404).type('text/plain; charset=utf-8');
      return files.size ? 'not found' : 'the web UI is not built: run `npm run build:ui`';
    }
    reply.type(TYPES[extname(name)]).header('content-security-policy', CSP).header('x-content-type-options', 'nosniff')
      .header('cache-control', name === 'index.html' ? 'no-cache' : 'max-age=300');
    return body;
  };
  app.get('/ui', async (_req, reply) => send('index.html', reply));
  app.get('/ui/:file', async (req, reply) => send((req.params as { file: string }).file, reply));
  app.addHook('onRequest', async (req, reply) => {
    if (req.method === 'GET' && req.url === '/' && files.has('index.html') && /text\/html/.test(req.headers.accept ?? '')) {
      await reply.redirect('/ui/', 302);
    }
  });
}
