#!/usr/bin/env node
/**
 * Builds the web UI (ui/src, Preact + TSX) into dist/ui/: one bundled, minified app.js, the stylesheet
 * and index.html. Run by `npm run build:ui` (part of `npm run build`, so of `npm install`). No CDN: every
 * byte served comes from this folder and node_modules. The agent's option table
 * (engine/cli/options.ts) is bundled in, so the action form offers exactly the agent's options.
 */
import { build } from 'esbuild';
import { copyFile, mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, '..', 'dist', 'ui');
await mkdir(out, { recursive: true });
await build({
  entryPoints: [join(here, 'src', 'main.tsx')],
  outfile: join(out, 'app.js'),
  bundle: true,
  minify: true,
  format: 'esm',
  target: 'es2020',
  jsx: 'automatic',
  jsxImportSource: 'preact',
  legalComments: 'none',
  logLevel: 'warning',
});
await copyFile(join(here, 'index.html'), join(out, 'index.html'));
await copyFile(join(here, 'style.css'), join(out, 'style.css'));
