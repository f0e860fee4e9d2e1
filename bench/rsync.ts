/**
 * `npm run bench:rsync`: the rsync engine's delta against issue 4's targets and against librsync's
 * `rdiff` (Debian package rdiff; bench/install-peers.sh installs it), on the same files.
 *
 * Cases, on one file of random bytes (incompressible: stored bytes are the delta itself) of --size MiB:
 * - insert: a block of size/1024 bytes (1 MiB in 1 GiB) inserted in the middle; target: level 1 stores
 *   at most 2% of the file;
 * - overwrite: 100 random 4 KiB overwrites; target: stored within 1.2x of the 400 KiB changed;
 * - append: size/16 bytes appended (64 MiB on 1 GiB); target: stored within 1.2x of what was appended.
 * Each case runs floe's level 0 then level 1 (in process, the worker pool on all cores; level 1 time =
 * change detection + delta + the new signature) at the default block size (square-root rule) and at
 * each --block size (default 2048 and 700), and `rdiff signature` + `rdiff delta` with its default block
 * length and with -b at each --block size. Then a tree of files of 16 KiB to 256 KiB totalling --size,
 * 1% of them changed: level-1 time against level-0 time (target: at most 0.1x). Sizes: "stored" is the uncompressed level-1 stream (or rdiff's delta file).
 *
 * The issue's full size is --size 1024; on the shared development machine run --size 64 (the default).
 * Options: --size MiB (default 64), --block N[,N...] (default 2048,700), --work DIR (default /var/tmp/floe-bench-rsync),
 * --out DIR (default bench/results), --no-write.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createCipheriv, createHash } from 'node:crypto';
import * as fs from 'node:fs/promises';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { createRsyncBackup } from '../engine/archive/rsync/index.js';
import { closeSharedPool } from '../engine/pipeline/pool.js';

interface Options { sizeMiB: number; blocks: number[]; work: string; out: string; write: boolean }
const MiB = 1 << 20;

function parseArgs(argv: string[]): Options {
  const here = dirname(fileURLToPath(import.meta.url));
  const root = here.endsWith(join('dist', 'bench')) ? join(here, '..', '..') : join(here, '..');
  const o: Options = { sizeMiB: 64, blocks: [2048, 700], work: '/var/tmp/floe-bench-rsync', out: join(root, 'bench', 'results'), write: true };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--size') o.sizeMiB = Number(argv[++i]);
    else if (a === '--block') o.blocks = argv[++i].split(',').map(Number);
    else if (a === '--work') o.work = argv[++i];
    else if (a === '--out') o.out = argv[++i];
    else if (a === '--no-write') o.write = false;
    else throw new Error(`unknown option ${a}`);
  }
  if (!(o.sizeMiB >= 4)) throw new Error('--size must be at least 4 (MiB)');
  return o;
}

/** random returns n reproducible random bytes (AES-128-CTR of zeros keyed by the seed). */
function random(n: number, seed: number): Buffer {
  const key = createHash('sha256').update(`floe-bench-rsync-${seed}`).digest().subarray(0, 16);
  return createCipheriv('aes-128-ctr', key, Buffer.alloc(16)).update(Buffer.alloc(n));
}

async function writeRandom(path: string, size: number, seed: number): Promise<void> {
  const fh = await fs.open(path, 'w');
  try {
    for (let off = 0; off < size; off += 16 * MiB) await fh.write(random(Math.min(16 * MiB, size - off), seed + off));
  } finally {
    await fh.close();
  }
}

async function floeLevel(root: string, previous: Buffer | undefined, blockSize: number | undefined): Promise<{ bytes: number; ms: number; meta: Buffer }> {
  const t = performance.now();
  const b = createRsyncBackup({ root, exclude: [], dereference: 'none', previous, blockSize });
  let bytes = 0;
  for await (const c of b.stream) bytes += c.length;
  return { bytes, ms: performance.now() - t, meta: b.metadata() };
}

function rdiff(oldFile: string, newFile: string, work: string, block?: number): { bytes: number; ms: number; state: number } | null {
  if (spawnSync('rdiff', ['--version']).error) return null;
  const sig = join(work, 'rdiff.sig');
  const delta = join(work, 'rdiff.delta');
  execFileSync('rm', ['-f', sig, delta]);
  const t = performance.now();
  execFileSync('rdiff', [...(block ? ['-b', String(block)] : []), 'signature', oldFile, sig]);
  execFileSync('rdiff', ['delta', sig, newFile, delta]);
  const ms = performance.now() - t;
  const size = (p: string) => Number(execFileSync('stat', ['-c', '%s', p]).toString().trim());
  return { bytes: size(delta), ms, state: size(sig) };
}

/** state: what the next run needs (floe's engine_metadata, compressed; rdiff's signature file). */
interface Row { case: string; impl: string; stored: number; changed: number; ratio: number; ms: number; state?: number; target: string; ok: boolean | null }

type Mutation = (path: string, size: number) => Promise<number>;

const cases: { name: string; target: (stored: number, changed: number, size: number) => [string, boolean]; mutate: Mutation }[] = [
  {
    name: 'insert in the middle',
    target: (stored, _c, size) => [`<= 2% of the file (${(100 * stored / size).toFixed(2)}%)`, stored <= 0.02 * size],
    mutate: async (path, size) => {
      const n = Math.max(64 << 10, Math.floor(size / 1024));
      const old = await fs.readFile(path);
      await fs.writeFile(path, Buffer.concat([old.subarray(0, size / 2), random(n, 77), old.subarray(size / 2)]));
      return n;
    },
  },
  {
    name: '100 random 4 KiB overwrites',
    target: (stored, changed) => [`<= 1.2x changed (${(stored / changed).toFixed(2)}x)`, stored <= 1.2 * changed],
    mutate: async (path, size) => {
      const fh = await fs.open(path, 'r+');
      let seed = 1;
      for (let i = 0; i < 100; i++) {
        seed = (seed * 1103515245 + 12345) % 2147483648;
        await fh.write(random(4096, 1000 + i), 0, 4096, seed % (size - 4096));
      }
      await fh.close();
      return 100 * 4096;
    },
  },
  {
    name: 'append size/16',
    target: (stored, changed) => [`<= 1.2x changed (${(stored / changed).toFixed(2)}x)`, stored <= 1.2 * changed],
    mutate: async (path, size) => {
      const n = Math.floor(size / 16);
      await fs.appendFile(path, random(n, 99));
      return n;
    },
  },
];

/**
 * treeCase: a tree of 16 KiB..256 KiB files totalling `size`, 1% of the files changed in place (4 KiB each):
 * level-1 time against level-0 time, target <= 0.1x (unchanged files are not read).
 */
async function treeCase(o: Options, size: number): Promise<Row[]> {
  const dir = join(o.work, 'many');
  await fs.rm(o.work, { recursive: true, force: true });
  const files: string[] = [];
  let total = 0;
  for (let i = 0; total < size; i++) {
    const n = (16 << 10) * (1 + (i % 16));
    const path = join(dir, `d${i % 32}`, `f${i}.bin`);
    await fs.mkdir(dirname(path), { recursive: true });
    await fs.writeFile(path, random(n, 5000 + i));
    files.push(path);
    total += n;
  }
  const l0 = await floeLevel(dir, undefined, undefined);
  const step = 100;
  for (let i = 0; i < files.length; i += step) {
    const fh = await fs.open(files[i], 'r+');
    await fh.write(random(4096, 9000 + i), 0, 4096, 1000);
    await fh.close();
  }
  const l1 = await floeLevel(dir, l0.meta, undefined);
  const changed = Math.ceil(files.length / step) * 4096;
  const ratio = l1.ms / l0.ms;
  return [
    { case: `tree of ${files.length} files`, impl: 'floe level 0', stored: l0.bytes, changed: total, ratio: l0.bytes / total, ms: l0.ms, state: l0.meta.length, target: '', ok: null },
    { case: `tree of ${files.length} files, 1% changed`, impl: 'floe level 1', stored: l1.bytes, changed, ratio: l1.bytes / changed, ms: l1.ms, state: l1.meta.length,
      target: `time <= 0.1x level 0 (${ratio.toFixed(3)}x)`, ok: ratio <= 0.1 },
  ];
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  const size = o.sizeMiB * MiB;
  const rows: Row[] = [];
  await fs.rm(o.work, { recursive: true, force: true });
  for (const c of cases) {
    const dir = join(o.work, 'tree');
    await fs.rm(o.work, { recursive: true, force: true });
    await fs.mkdir(dir, { recursive: true });
    const file = join(dir, 'image.bin');
    await writeRandom(file, size, 1);
    const oldCopy = join(o.work, 'old.bin');
    await fs.copyFile(file, oldCopy);
    const l0 = await floeLevel(dir, undefined, undefined);
    const bases: { meta: Buffer }[] = [];
    for (const bs of o.blocks) bases.push(await floeLevel(dir, undefined, bs));
    const changed = await c.mutate(file, size);
    const impls: [string, { meta: Buffer }, number | undefined][] = [['floe (sqrt rule)', l0, undefined]];
    o.blocks.forEach((bs, i) => impls.push([`floe (block ${bs})`, bases[i], bs]));
    for (const [impl, base, bs] of impls) {
      const l1 = await floeLevel(dir, base.meta, bs);
      const [target, ok] = c.target(l1.bytes, changed, size);
      rows.push({ case: c.name, impl, stored: l1.bytes, changed, ratio: l1.bytes / changed, ms: l1.ms, state: l1.meta.length, target, ok });
    }
    for (const bs of [undefined, ...o.blocks]) {
      const impl = bs ? `rdiff -b ${bs}` : 'rdiff (default)';
      const r = rdiff(oldCopy, file, o.work, bs);
      if (!r) { rows.push({ case: c.name, impl: `${impl}: not installed`, stored: 0, changed, ratio: 0, ms: 0, target: '', ok: null }); continue; }
      rows.push({ case: c.name, impl, stored: r.bytes, changed, ratio: r.bytes / changed, ms: r.ms, state: r.state, target: '', ok: null });
    }
    rows.push({ case: c.name, impl: 'floe level 0 (sqrt rule)', stored: l0.bytes, changed: size, ratio: l0.bytes / size, ms: l0.ms, state: l0.meta.length, target: '', ok: null });
  }
  rows.push(...await treeCase(o, size));
  await fs.rm(o.work, { recursive: true, force: true });
  await closeSharedPool();
  const lines = [
    `# rsync engine bench, ${new Date().toISOString().slice(0, 10)}, file of ${o.sizeMiB} MiB`,
    '',
    '| case | implementation | stored bytes | changed bytes | stored / changed | time (ms) | state bytes | issue target |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |',
    ...rows.map((r) => `| ${r.case} | ${r.impl} | ${r.stored} | ${r.changed} | ${r.ratio.toFixed(3)} | ${r.ms.toFixed(0)} | ${r.state ?? ''} | ${r.target}${r.ok === null ? '' : r.ok ? ' ok' : ' MISSED'} |`),
    '',
    'floe time = level-1 backup in process (change detection, delta, new signature, SHA-256 of the file);',
    'rdiff time = `rdiff signature` of the old file + `rdiff delta`.',
    'state bytes = what the next level needs: floe\'s engine_metadata after the level (zstd; block signatures plus',
    'fine sums of 512-byte sub-blocks from 4 KiB blocks on), rdiff\'s signature file of the old file.',
  ];
  const md = lines.join('\n');
  console.log(md);
  if (o.write) {
    mkdirSync(o.out, { recursive: true });
    writeFileSync(join(o.out, `rsync-${new Date().toISOString().slice(0, 10)}-${o.sizeMiB}M.md`), `${md}\n`);
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
