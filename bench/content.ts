/**
 * Deterministic file content for the benchmark dataset: a small PRNG, seed mixing, and generators of
 * realistic text (prose, log lines, NDJSON, CSV, source code), of incompressible bytes and of a mix.
 *
 * Model: every byte is a function of (dataset seed, file index, salt), so any one file can be re-made
 * alone (that is how a mutation is undone) and two machines make the same tree from the same seed.
 * Text comes from a fixed vocabulary with a skewed (Zipf-like) word choice and fields that vary per
 * line (timestamps, ids, numbers), which gzip shrinks about 3-4x, like real logs and sources; random
 * bytes are an AES-256-CTR keystream (node:crypto, several GB/s with AES-NI) so the large files cost
 * almost nothing to make. Text generators write bytes into a Buffer directly (no strings per word):
 * about 150-300 MB/s on one core here, so a 1 GiB tree takes seconds, not minutes.
 */
import { createCipheriv, createHash } from 'node:crypto';

/** mix32 is splitmix32's finaliser: a bijective 32-bit hash, used to derive independent seeds. */
export function mix32(x: number): number {
  x = (x + 0x9e3779b9) | 0;
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
  return (x ^ (x >>> 16)) >>> 0;
}

/** deriveSeed combines a seed with any number of integers (file index, chunk, salt) into a new seed. */
export function deriveSeed(seed: number, ...parts: number[]): number {
  let h = mix32(seed);
  for (const p of parts) h = mix32(h ^ mix32(p));
  return h;
}

/** Rng is xoshiro128**: fast, 32-bit, good enough for content and layout (not for secrets). */
export class Rng {
  #a: number;
  #b: number;
  #c: number;
  #d: number;

  constructor(seed: number) {
    // Seeding through splitmix32 steps, as xoshiro's authors recommend (never all-zero state).
    this.#a = mix32(seed);
    this.#b = mix32(this.#a ^ 0x6a09e667);
    this.#c = mix32(this.#b ^ 0xbb67ae85);
    this.#d = mix32(this.#c ^ 0x3c6ef372) | 1;
  }

  /** next returns a uniform uint32. */
  next(): number {
    const r = Math.imul(rotl(Math.imul(this.#b, 5), 7), 9) >>> 0;
    const t = this.#b << 9;
    this.#c ^= this.#a;
    this.#d ^= this.#b;
    this.#b ^= this.#c;
    this.#a ^= this.#d;
    this.#c ^= t;
    this.#d = rotl(this.#d, 11);
    return r;
  }

  /** float returns a uniform number in [0, 1). */
  float(): number {
    return this.next() / 4294967296;
  }

  /** int returns a uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.float() * n);
  }

  /** skewed returns an integer in [0, n) with small values far more likely (rank r has weight ~1/sqrt(r)). */
  skewed(n: number): number {
    const f = this.float();
    return Math.floor(f * f * n);
  }

  /** logUniform returns an integer in [lo, hi] whose logarithm is uniform (file sizes look like this). */
  logUniform(lo: number, hi: number): number {
    return Math.round(Math.exp(Math.log(lo) + this.float() * (Math.log(hi) - Math.log(lo))));
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/** The content kinds of the dataset. `mixed` alternates text and random blocks (a database page file). */
export type Kind = 'prose' | 'log' | 'json' | 'csv' | 'source' | 'mixed' | 'random';

export const EXTENSIONS: Record<Kind, readonly string[]> = {
  prose: ['txt', 'md', 'rst'],
  log: ['log'],
  json: ['json', 'ndjson'],
  csv: ['csv', 'tsv'],
  source: ['ts', 'py', 'c', 'go', 'java'],
  mixed: ['db', 'dat', 'idx'],
  random: ['jpg', 'gz', 'bin', 'zst'],
};

const enc = (s: string) => Buffer.from(s, 'latin1');

const COMMON = (
  'the of and to in is that it for was on are as with his they at be this from have or by one had not ' +
  'but what all were when we there can an your which their said if do will each about how up out them ' +
  'then she many some so these would other into has more her two like him see time could no make than ' +
  'first been its who now people my made over did down only way find use may water long little very ' +
  'after words called just where most know get through back much before go good new write our used me ' +
  'man too any day same right look think also around another came come work three word must because ' +
  'does part even place well such here take why things help put years different away again off went old'
).split(' ');

/** VOCAB: the common words above plus 3,000 made-up ones from syllables (fixed seed: same everywhere). */
export const VOCAB: readonly Buffer[] = (() => {
  const syllables = ['ka', 'ro', 'mi', 'te', 'lu', 'sa', 'ne', 'vo', 'di', 'pa', 'ren', 'tor', 'gal', 'ish',
    'ment', 'ing', 'er', 'al', 'con', 'pre', 'st', 'ex', 'ium', 'ly', 'or', 'an', 'bel', 'cor', 'dat', 'fin'];
  const rng = new Rng(0x5eed);
  const words = [...COMMON];
  const seen = new Set(words);
  while (words.length < COMMON.length + 3000) {
    let w = '';
    const n = 1 + rng.int(3) + rng.int(2);
    for (let i = 0; i < n; i++) w += rng.pick(syllables);
    if (!seen.has(w)) {
      seen.add(w);
      words.push(w);
    }
  }
  return words.map(enc);
})();

const LEVELS = ['INFO', 'INFO', 'INFO', 'DEBUG', 'DEBUG', 'WARN', 'ERROR'].map(enc);
const COMPONENTS = ['api', 'worker', 'scheduler', 'storage', 'auth', 'db', 'cache'].map(enc);
const KEYWORDS = ['const', 'let', 'return', 'if', 'for', 'while', 'function', 'import', 'export', 'class',
  'async', 'await', 'new', 'throw', 'else', 'switch', 'case', 'break'].map(enc);
const HEX = enc('0123456789abcdef');

/**
 * Writer appends ASCII into a Buffer. Lines are at most a few KiB, so generators run until `pos >= limit`
 * and the caller allocates `limit + SLACK` and keeps the first `limit` bytes.
 */
class Writer {
  pos = 0;
  constructor(readonly buf: Buffer, readonly rng: Rng) {}

  bytes(b: Buffer): void {
    const buf = this.buf;
    let p = this.pos;
    for (let i = 0; i < b.length; i++) buf[p++] = b[i]!;
    this.pos = p;
  }

  byte(c: number): void {
    this.buf[this.pos++] = c;
  }

  str(s: string): void {
    for (let i = 0; i < s.length; i++) this.buf[this.pos++] = s.charCodeAt(i);
  }

  /** uint writes n (a non-negative integer) in decimal, padded with zeros to `width`. */
  uint(n: number, width = 1): void {
    let digits = 1;
    for (let x = n; x >= 10; x = Math.floor(x / 10)) digits++;
    for (let i = digits; i < width; i++) this.buf[this.pos++] = 48;
    let p = this.pos + digits;
    this.pos = p;
    do {
      this.buf[--p] = 48 + (n % 10);
      n = Math.floor(n / 10);
    } while (n > 0);
  }

  hex(count: number): void {
    for (let i = 0; i < count; i++) this.buf[this.pos++] = HEX[this.rng.next() & 15]!;
  }

  word(): void {
    this.bytes(VOCAB[this.rng.skewed(VOCAB.length)]!);
  }

  /** words writes n words separated by spaces. */
  words(n: number): void {
    for (let i = 0; i < n; i++) {
      if (i > 0) this.byte(32);
      this.word();
    }
  }

  ident(): void {
    this.word();
    const w = VOCAB[this.rng.skewed(VOCAB.length)]!;
    this.byte(w[0]! >= 97 && w[0]! <= 122 ? w[0]! - 32 : w[0]!);
    for (let i = 1; i < w.length; i++) this.byte(w[i]!);
  }
}

/** SLACK: more than any one line or record a generator writes past its limit. */
const SLACK = 16 * 1024;

function prose(w: Writer, limit: number): void {
  let col = 0;
  while (w.pos < limit) {
    const n = 5 + w.rng.int(16);
    for (let i = 0; i < n; i++) {
      const start = w.pos;
      w.word();
      if (i === 0 && w.buf[start]! >= 97) w.buf[start] = w.buf[start]! - 32;
      if (i === n - 1) w.byte(46);
      else if (w.rng.int(9) === 0) w.byte(44);
      col += w.pos - start + 1;
      if (col > 72) {
        w.byte(10);
        col = 0;
      } else w.byte(32);
    }
    if (w.rng.int(6) === 0) {
      w.str('\n\n');
      col = 0;
    }
  }
}

function log(w: Writer, limit: number): void {
  let ms = w.rng.int(86_400_000);
  const day = 1 + w.rng.int(28);
  while (w.pos < limit) {
    ms = (ms + w.rng.int(2000)) % 86_400_000;
    w.str('2026-11-');
    w.uint(day, 2);
    w.byte(84);
    w.uint(Math.floor(ms / 3_600_000), 2);
    w.byte(58);
    w.uint(Math.floor(ms / 60_000) % 60, 2);
    w.byte(58);
    w.uint(Math.floor(ms / 1000) % 60, 2);
    w.byte(46);
    w.uint(ms % 1000, 3);
    w.str('Z ');
    w.bytes(w.rng.pick(LEVELS));
    w.str(' [');
    w.bytes(w.rng.pick(COMPONENTS));
    w.byte(45);
    w.uint(w.rng.int(8));
    w.str('] ');
    w.words(3 + w.rng.int(8));
    w.str(' request_id=');
    w.hex(12);
    w.str(' status=');
    w.uint(w.rng.int(10) === 0 ? 500 : 200);
    w.str(' duration_ms=');
    w.uint(w.rng.skewed(5000));
    w.byte(10);
  }
}

function json(w: Writer, limit: number): void {
  let id = w.rng.int(1_000_000);
  while (w.pos < limit) {
    w.str('{"id":');
    w.uint(id++);
    w.str(',"name":"');
    w.words(2);
    w.str('","email":"');
    w.word();
    w.byte(64);
    w.word();
    w.str('.example.org","score":');
    w.uint(w.rng.int(1000));
    w.byte(46);
    w.uint(w.rng.int(100), 2);
    w.str(',"tags":["');
    w.word();
    w.str('","');
    w.word();
    w.str('"],"active":');
    w.str(w.rng.int(3) === 0 ? 'false' : 'true');
    w.str(',"note":"');
    w.words(4 + w.rng.int(12));
    w.str('"}\n');
  }
}

function csv(w: Writer, limit: number): void {
  w.str('id,customer,city,amount,currency,date,status\n');
  let id = w.rng.int(100_000);
  while (w.pos < limit) {
    w.uint(id++);
    w.byte(44);
    w.ident();
    w.byte(44);
    w.word();
    w.byte(44);
    w.uint(w.rng.skewed(100_000));
    w.byte(46);
    w.uint(w.rng.int(100), 2);
    w.str(w.rng.int(4) === 0 ? ',USD,2026-' : ',EUR,2026-');
    w.uint(1 + w.rng.int(12), 2);
    w.byte(45);
    w.uint(1 + w.rng.int(28), 2);
    w.str(w.rng.int(5) === 0 ? ',pending\n' : ',paid\n');
  }
}

function source(w: Writer, limit: number): void {
  let depth = 0;
  while (w.pos < limit) {
    for (let i = 0; i < depth; i++) w.str('  ');
    const r = w.rng.int(10);
    if (r === 0 && depth < 4) {
      w.str('function ');
      w.ident();
      w.byte(40);
      w.ident();
      w.str(', ');
      w.ident();
      w.str(') {\n');
      depth++;
    } else if (r === 1 && depth > 0) {
      w.str('}\n');
      depth--;
    } else if (r === 2) {
      w.str('// ');
      w.words(4 + w.rng.int(10));
      w.byte(10);
    } else if (r === 3 && depth < 4) {
      w.str('if (');
      w.ident();
      w.str(' > ');
      w.uint(w.rng.int(100));
      w.str(') {\n');
      depth++;
    } else {
      w.bytes(w.rng.pick(KEYWORDS));
      w.byte(32);
      w.ident();
      w.str(' = ');
      w.ident();
      w.byte(40);
      w.ident();
      w.str(', ');
      w.uint(w.rng.int(1000));
      w.str(');\n');
    }
  }
}

const TEXT: Record<Exclude<Kind, 'mixed' | 'random'>, (w: Writer, limit: number) => void> = { prose, log, json, csv, source };

/** randomBytes returns `n` incompressible bytes, a function of `seed` only (AES-256-CTR keystream). */
export function randomBytes(seed: number, n: number): Buffer {
  return new RandomStream(seed).take(n);
}

/** RandomStream yields an endless deterministic keystream in pieces, for files too large for one buffer. */
export class RandomStream {
  readonly #cipher;
  static #zeros = Buffer.alloc(0);

  constructor(seed: number) {
    const key = createHash('sha256').update(`floe-bench-random:${seed}`).digest();
    this.#cipher = createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
  }

  take(n: number): Buffer {
    if (RandomStream.#zeros.length < n) RandomStream.#zeros = Buffer.alloc(Math.max(n, 1 << 20));
    return this.#cipher.update(RandomStream.#zeros.subarray(0, n));
  }
}

/** MIXED_BLOCK: block size of the `mixed` kind, alternating text and random (about half compressible). */
const MIXED_BLOCK = 64 * 1024;

/**
 * content returns exactly `n` bytes of `kind`, a function of (kind, seed, n) only. Meant for buffers up
 * to a few tens of MiB (the caller streams bigger random files through {@link RandomStream}).
 */
export function content(kind: Kind, seed: number, n: number): Buffer {
  if (kind === 'random') return randomBytes(seed, n);
  if (kind === 'mixed') {
    const out = Buffer.allocUnsafe(n);
    const rng = new Rng(seed);
    for (let off = 0, b = 0; off < n; off += MIXED_BLOCK, b++) {
      const len = Math.min(MIXED_BLOCK, n - off);
      const part = rng.int(2) === 0 ? randomBytes(deriveSeed(seed, b), len) : content(rng.pick(['log', 'json', 'csv'] as const), deriveSeed(seed, b), len);
      part.copy(out, off);
    }
    return out;
  }
  const w = new Writer(Buffer.allocUnsafe(n + SLACK), new Rng(seed));
  TEXT[kind](w, n);
  return w.buf.subarray(0, n);
}
