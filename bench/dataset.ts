/**
 * The benchmark dataset: a deterministic tree made from a seed and a size, and a deterministic
 * mutation of 1% of its files for the level-1 measurements.
 *
 * Model: `planDataset(seed, bytes)` lists every file (path, kind, size) and is a pure function; each
 * file's bytes come from `content(kind, deriveSeed(seed, index), size)`, so the tree, any one file,
 * and the mutation can be re-made exactly. Shares of the bytes (of the reference measurement's mixed
 * tree, about 70% compressible):
 * - small files, 25%: thousands of text files of 200 B to 96 KiB (source, prose, NDJSON, logs, CSV);
 * - medium files, 55%: hundreds of 128 KiB to 8 MiB files, mostly text, a fifth `mixed` (half
 *   random blocks, like database files) and a tenth random (already-compressed media);
 * - large files, 20%: a few random files (one per 256 MiB of dataset, at least 2), incompressible.
 * At 1 GiB that is about 16,000 small, 300 medium and 4 large files in ~300 directories.
 *
 * On disk: DIR/dataset.json (the marker: format, seed, bytes, state, mutation) and DIR/tree/ (what is
 * backed up; the marker stays outside it so it is never part of a backup). A directory is reused when
 * its marker matches; a mutated tree is put back by re-making only the mutated files; anything else
 * under a directory with our marker is regenerated; a non-empty directory without one is refused.
 */
import { existsSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { EXTENSIONS, Kind, RandomStream, Rng, VOCAB, content, deriveSeed } from './content.js';

/** FORMAT: bump when the generator changes, so an old tree on disk is regenerated, not reused. */
const FORMAT = 1;
const MARKER = 'dataset.json';
const KiB = 1024;
const MiB = 1024 * KiB;
/** WRITE_CHUNK: large files are written in pieces of this size (bounded memory, big sequential writes). */
const WRITE_CHUNK = 8 * MiB;
/** FILES_PER_DIR: directory fan-out of the small files (a source tree or a mail spool looks like this). */
const FILES_PER_DIR = 60;

export type SizeClass = 'small' | 'medium' | 'large';

export interface FileSpec {
  /** Position in the plan; with the seed, it determines the content. */
  index: number;
  /** Relative to the tree root, with `/`. */
  path: string;
  kind: Kind;
  size: number;
  sizeClass: SizeClass;
}

export interface DatasetPlan {
  seed: number;
  bytes: number;
  files: FileSpec[];
  /** Symbolic links [path, target] (a few, so every tool meets them). */
  symlinks: [string, string][];
  /** Empty directories. */
  emptyDirs: string[];
}

export interface Mutation {
  fraction: number;
  seed: number;
  /** Indexes of the files changed. */
  files: number[];
}

interface Marker {
  format: number;
  seed: number;
  bytes: number;
  state: 'generating' | 'ready';
  mutation: Mutation | null;
}

/** What {@link ensureDataset} returns. */
export interface Dataset {
  /** The directory holding the marker and the tree. */
  dir: string;
  /** The tree to back up: DIR/tree. */
  tree: string;
  seed: number;
  /** Total bytes of the regular files (exactly the requested size). */
  bytes: number;
  files: number;
  /** Regular files per class, and how many bytes of each are random (incompressible). */
  classes: Record<SizeClass, { files: number; bytes: number }>;
  incompressibleBytes: number;
  /** Seconds spent generating (0 when reused as is). */
  generateS: number;
  reused: boolean;
}

/** parseSize reads `64M`, `1G`, `256MiB`, `1.5G` or a byte count (binary units: M = 2^20). */
export function parseSize(text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?$/i.exec(text.trim());
  if (!m) throw new Error(`bad size "${text}" (examples: 64M, 256M, 1G, 4G)`);
  const exp = ' KMGT'.indexOf((m[2] || ' ').toUpperCase());
  const bytes = Math.round(Number(m[1]) * 1024 ** exp);
  if (bytes < 4 * MiB) throw new Error(`size ${text} is too small (at least 4M)`);
  return bytes;
}

/** formatSize writes a byte count the way parseSize reads it (1G, 256M, 1.5G). */
export function formatSize(bytes: number): string {
  for (const [unit, f] of [['T', 1024 ** 4], ['G', 1024 ** 3], ['M', MiB]] as const) {
    if (bytes >= f) return `${Number((bytes / f).toFixed(2))}${unit}`;
  }
  return `${bytes}`;
}

/** planDataset lists every file of the dataset of `bytes` bytes made from `seed`. Pure. */
export function planDataset(seed: number, bytes: number): DatasetPlan {
  const files: FileSpec[] = [];
  const rng = new Rng(deriveSeed(seed, 0x91a4));
  const add = (path: string, kind: Kind, size: number, sizeClass: SizeClass) => files.push({ index: files.length, path, kind, size, sizeClass });
  const name = () => VOCAB[rng.skewed(VOCAB.length)]!.toString('latin1');

  const largeCount = Math.max(2, Math.round(bytes / (256 * MiB)));
  const largeBytes = Math.floor(bytes * 0.2);
  const mediumBytes = Math.floor(bytes * 0.55);
  const smallBytes = bytes - largeBytes - mediumBytes;

  // Small: text files of a source tree, documents and exported records, 60 to a directory.
  fill(smallBytes, () => rng.logUniform(200, 96 * KiB), (size, i) => {
    const kind = rng.pick<Kind>(['source', 'source', 'source', 'source', 'prose', 'prose', 'json', 'json', 'log', 'csv']);
    const dir = i % (FILES_PER_DIR * 10) < FILES_PER_DIR * 6 ? 'src' : kind === 'prose' ? 'docs' : 'records';
    const d = Math.floor(i / FILES_PER_DIR);
    add(`${dir}/pkg-${Math.floor(d / 10)}/mod-${d % 10}/${name()}-${i}.${rng.pick(EXTENSIONS[kind])}`, kind, size, 'small');
  });
  // Medium: logs, exports, database-like and media files, grouped by month.
  fill(mediumBytes, () => rng.logUniform(128 * KiB, 8 * MiB), (size, i) => {
    const r = rng.float();
    const kind: Kind = r < 0.1 ? 'random' : r < 0.3 ? 'mixed' : rng.pick<Kind>(['log', 'log', 'json', 'csv', 'prose']);
    const top = kind === 'random' ? 'media' : kind === 'mixed' ? 'var/db' : kind === 'log' ? 'var/log' : 'data';
    add(`${top}/2026-${String(1 + (i % 12)).padStart(2, '0')}/${name()}-${i}.${rng.pick(EXTENSIONS[kind])}`, kind, size, 'medium');
  });
  // Large: disk images and archives, random.
  const per = Math.floor(largeBytes / largeCount);
  for (let i = 0; i < largeCount; i++) {
    add(`images/disk-${i}.img`, 'random', i === largeCount - 1 ? largeBytes - per * (largeCount - 1) : per, 'large');
  }
  return {
    seed, bytes, files,
    symlinks: [['src/current', 'pkg-0'], ['docs/README.link', '../src/pkg-0/mod-0'], ['images/latest.img', 'disk-0.img']],
    emptyDirs: ['tmp/cache', 'var/spool/empty'],
  };
}

/** fill draws sizes until `budget` is used; the last size is cut so the total is exact. */
function fill(budget: number, draw: () => number, make: (size: number, i: number) => void): void {
  for (let used = 0, i = 0; used < budget; i++) {
    const size = Math.min(draw(), budget - used);
    make(size, i);
    used += size;
  }
}

/** writeFile writes the content of `f` (random files in WRITE_CHUNK pieces, others in one buffer). */
async function writeFile(tree: string, seed: number, f: FileSpec): Promise<void> {
  const path = join(tree, f.path);
  const fileSeed = deriveSeed(seed, f.index);
  if (f.kind !== 'random' || f.size <= WRITE_CHUNK) {
    await fs.writeFile(path, content(f.kind, fileSeed, f.size));
    return;
  }
  const stream = new RandomStream(fileSeed);
  const fh = await fs.open(path, 'w');
  try {
    for (let left = f.size; left > 0; left -= WRITE_CHUNK) await fh.write(stream.take(Math.min(WRITE_CHUNK, left)));
  } finally {
    await fh.close();
  }
}

async function readMarker(dir: string): Promise<Marker | undefined> {
  try {
    return JSON.parse(await fs.readFile(join(dir, MARKER), 'utf8')) as Marker;
  } catch {
    return undefined;
  }
}

async function writeMarker(dir: string, m: Marker): Promise<void> {
  await fs.writeFile(join(dir, `${MARKER}.tmp`), `${JSON.stringify(m, null, 2)}\n`);
  await fs.rename(join(dir, `${MARKER}.tmp`), join(dir, MARKER));
}

/** generate (re)makes DIR/tree from scratch. */
async function generate(dir: string, plan: DatasetPlan): Promise<void> {
  const tree = join(dir, 'tree');
  await writeMarker(dir, { format: FORMAT, seed: plan.seed, bytes: plan.bytes, state: 'generating', mutation: null });
  await fs.rm(tree, { recursive: true, force: true });
  const dirs = new Set<string>([...plan.files.map((f) => dirname(f.path)), ...plan.symlinks.map(([p]) => dirname(p)), ...plan.emptyDirs]);
  for (const d of [...dirs].sort()) await fs.mkdir(join(tree, d), { recursive: true });
  for (const f of plan.files) await writeFile(tree, plan.seed, f);
  for (const [p, target] of plan.symlinks) await fs.symlink(target, join(tree, p));
  await writeMarker(dir, { format: FORMAT, seed: plan.seed, bytes: plan.bytes, state: 'ready', mutation: null });
}

export interface EnsureOptions {
  dir: string;
  seed: number;
  bytes: number;
  /** Progress lines ("generating 1G dataset ..."). */
  log?: (line: string) => void;
}

/**
 * ensureDataset returns the dataset of (seed, bytes) in `dir`: reused when its marker matches, put back
 * when it was left mutated, regenerated when the marker differs or generation was interrupted. Throws
 * when `dir` is a non-empty directory that has no marker (never deletes what it did not make).
 */
export async function ensureDataset(options: EnsureOptions): Promise<Dataset> {
  const { dir, seed, bytes, log = () => {} } = options;
  const plan = planDataset(seed, bytes);
  const started = performance.now();
  await fs.mkdir(dir, { recursive: true });
  const marker = await readMarker(dir);
  let reused = false;
  if (!marker) {
    const entries = await fs.readdir(dir);
    if (entries.length > 0) throw new Error(`refusing to use ${dir} for the dataset: not empty and no ${MARKER} in it`);
  }
  if (marker && marker.format === FORMAT && marker.seed === seed && marker.bytes === bytes && marker.state === 'ready' && existsSync(join(dir, 'tree'))) {
    if (marker.mutation) {
      log(`dataset ${dir}: undoing the mutation of ${marker.mutation.files.length} files`);
      await undoMutation(dir);
    }
    reused = true;
  } else {
    log(`generating a ${formatSize(bytes)} dataset (seed ${seed}, ${plan.files.length} files) in ${dir}/tree ...`);
    await generate(dir, plan);
  }
  const generateS = reused ? 0 : (performance.now() - started) / 1000;
  if (!reused) log(`dataset generated in ${generateS.toFixed(1)} s`);
  return describeDataset(dir, plan, generateS, reused);
}

function describeDataset(dir: string, plan: DatasetPlan, generateS: number, reused: boolean): Dataset {
  const classes: Dataset['classes'] = { small: { files: 0, bytes: 0 }, medium: { files: 0, bytes: 0 }, large: { files: 0, bytes: 0 } };
  let incompressibleBytes = 0;
  for (const f of plan.files) {
    classes[f.sizeClass].files++;
    classes[f.sizeClass].bytes += f.size;
    if (f.kind === 'random') incompressibleBytes += f.size;
    if (f.kind === 'mixed') incompressibleBytes += f.size / 2; // about half its blocks are random
  }
  return {
    dir, tree: join(dir, 'tree'), seed: plan.seed, bytes: plan.bytes, files: plan.files.length, classes,
    incompressibleBytes: Math.round(incompressibleBytes), generateS, reused,
  };
}

/** What {@link mutate} changed. */
export interface MutationResult {
  files: number;
  /** Bytes overwritten in place plus bytes appended. */
  bytesWritten: number;
  paths: string[];
}

/**
 * mutate changes `fraction` of the files of the dataset in `dir` (of each size class, at least one
 * file each): overwrites a region in the middle (up to 1 MiB, at most a quarter of the file) with new
 * content of the same kind, and appends up to 4 KiB. Deterministic in (dataset seed, `seed`), and
 * recorded in the marker so {@link undoMutation} (or the next {@link ensureDataset}) puts it back.
 */
export async function mutate(dir: string, fraction: number, seed: number): Promise<MutationResult> {
  const marker = await readMarker(dir);
  if (!marker || marker.state !== 'ready') throw new Error(`${dir} holds no complete dataset`);
  if (marker.mutation) await undoMutation(dir);
  const plan = planDataset(marker.seed, marker.bytes);
  const rng = new Rng(deriveSeed(marker.seed, seed, 0x3e7a));
  const chosen: FileSpec[] = [];
  for (const cls of ['small', 'medium', 'large'] as const) {
    const pool = plan.files.filter((f) => f.sizeClass === cls);
    const k = Math.min(pool.length, Math.max(1, Math.round(fraction * pool.length)));
    for (let i = 0; i < k; i++) { // partial Fisher-Yates
      const j = i + rng.int(pool.length - i);
      [pool[i], pool[j]] = [pool[j]!, pool[i]!];
      chosen.push(pool[i]!);
    }
  }
  await writeMarker(dir, { ...marker, mutation: { fraction, seed, files: chosen.map((f) => f.index) } });
  let bytesWritten = 0;
  for (const f of chosen) {
    const fseed = deriveSeed(marker.seed, seed, f.index);
    const len = Math.max(1, Math.min(MiB, Math.floor(f.size / 4)));
    const offset = Math.floor((f.size - len) / 2);
    const tail = 1 + rng.int(4 * KiB);
    const fh = await fs.open(join(dir, 'tree', f.path), 'r+');
    try {
      await fh.write(content(f.kind, fseed, len), 0, len, offset);
      await fh.write(content(f.kind, deriveSeed(fseed, 1), tail), 0, tail, f.size);
    } finally {
      await fh.close();
    }
    bytesWritten += len + tail;
  }
  return { files: chosen.length, bytesWritten, paths: chosen.map((f) => f.path) };
}

/** undoMutation re-makes the files a {@link mutate} changed, so the tree is the seed's tree again. */
export async function undoMutation(dir: string): Promise<void> {
  const marker = await readMarker(dir);
  if (!marker?.mutation) return;
  const plan = planDataset(marker.seed, marker.bytes);
  for (const i of marker.mutation.files) await writeFile(join(dir, 'tree'), marker.seed, plan.files[i]!);
  await writeMarker(dir, { ...marker, mutation: null });
}
