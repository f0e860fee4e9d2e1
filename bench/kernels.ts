/**
 * `npm run bench:kernels`: times each WASM kernel (SIMD and scalar builds) against its plain-TypeScript
 * reference (wasm/reference.ts) and, for AES-256-CFB, against node:crypto (OpenSSL) and the ECB trick
 * for CFB decryption. Prints a table of median MB/s and writes bench/results/kernels-<date>.md.
 *
 * Method: one warm-up run, then runs until RUNS are done or the case has used its time budget (at least
 * 3 runs); the median time gives MB/s (input bytes / second, 1 MB = 10^6 bytes). The machine is shared,
 * so expect noise of 10-20% between sessions; ratios within one run are more stable than absolutes.
 * The whole bench stays under about a minute at the default size.
 *
 * Options: --size MiB (default 16, the input of each case), --runs N (default 7), --out DIR
 * (default bench/results), --no-write.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Kernel, gearTable } from '../wasm/index.js';
import { KernelInstance } from '../wasm/instance.js';
import {
  AesCfbRef, CdcRef, blockSignatureRef, fineSumsRef, rollingChecksumsRef, scanRef,
} from '../wasm/reference.js';

interface Options { sizeMiB: number; runs: number; out: string; write: boolean }

interface Case {
  kernel: string;
  impl: string;
  bytes: number;
  run: () => unknown;
  /** The implementation the ratio column compares with; undefined for the reference itself. */
  reference?: string;
  /** The kernel row of that reference, when it is not this case's kernel. */
  referenceKernel?: string;
}

interface Result { kernel: string; impl: string; mbps: number; runs: number; ratio?: number }

/** CASE_BUDGET_MS: time one case may use after its warm-up (keeps the whole bench near a minute). */
const CASE_BUDGET_MS = 1500;
const MiB = 1 << 20;

function parseArgs(argv: string[]): Options {
  const here = dirname(fileURLToPath(import.meta.url));
  const root = here.endsWith(join('dist', 'bench')) ? join(here, '..', '..') : join(here, '..');
  const o: Options = { sizeMiB: 16, runs: 7, out: join(root, 'bench', 'results'), write: true };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--size') o.sizeMiB = Number(argv[++i]);
    else if (a === '--runs') o.runs = Number(argv[++i]);
    else if (a === '--out') o.out = argv[++i];
    else if (a === '--no-write') o.write = false;
    else throw new Error(`unknown option ${a} (--size MiB, --runs N, --out DIR, --no-write)`);
  }
  if (!(o.sizeMiB > 0) || !(o.runs >= 3)) throw new Error('--size must be > 0 and --runs >= 3');
  return o;
}

function time(c: Case, runs: number): Result {
  c.run();
  const times: number[] = [];
  const start = performance.now();
  while (times.length < runs && (times.length < 3 || performance.now() - start < CASE_BUDGET_MS)) {
    const t = performance.now();
    c.run();
    times.push(performance.now() - t);
  }
  times.sort((a, b) => a - b);
  const median = times[Math.floor(times.length / 2)];
  return { kernel: c.kernel, impl: c.impl, mbps: c.bytes / 1e6 / (median / 1000), runs: times.length };
}

/**
 * cfbDecryptViaEcb is CFB128 decryption as AES-ECB over the ciphertext shifted by one block (the IV
 * first), XORed with the ciphertext: P[i] = E(C[i-1]) ^ C[i], E(C[-1]) = E(IV). Byte-identical to CFB,
 * and pipelined inside OpenSSL (ECB has no chaining between blocks) where CFB decryption is not.
 * Works in ECB_CHUNK pieces so the keystream is XORed while it is still in cache; ECB needs whole
 * blocks, so the ciphertext is fed as ct[s - 16, e - 16), never copied.
 */
export function cfbDecryptViaEcb(key: Uint8Array, iv: Uint8Array, ct: Uint8Array): Buffer {
  const ECB_CHUNK = 64 * 1024;
  const ecb = createCipheriv('aes-256-ecb', key, null);
  ecb.setAutoPadding(false);
  const out = Buffer.allocUnsafe(ct.length);
  const first = ecb.update(iv.subarray(0, 16));
  for (let i = 0; i < Math.min(16, ct.length); i++) out[i] = first[i] ^ ct[i];
  for (let s = 16; s < ct.length; s += ECB_CHUNK) {
    const e = Math.min(ct.length, s + ECB_CHUNK);
    const ks = ecb.update(ct.subarray(s - 16, s - 16 + Math.ceil((e - s) / 16) * 16));
    xorInto(out.subarray(s, e), ks, ct.subarray(s, e));
  }
  return out;
}

/** xorInto sets dst[i] = a[i] ^ b[i] for i < dst.length, 4 bytes at a time when all are aligned. */
function xorInto(dst: Uint8Array, a: Uint8Array, b: Uint8Array): void {
  let i = 0;
  if (dst.byteOffset % 4 === 0 && a.byteOffset % 4 === 0 && b.byteOffset % 4 === 0) {
    const words = dst.length >>> 2;
    const d = new Int32Array(dst.buffer, dst.byteOffset, words);
    const x = new Int32Array(a.buffer, a.byteOffset, words);
    const y = new Int32Array(b.buffer, b.byteOffset, words);
    for (let w = 0; w < words; w++) d[w] = x[w] ^ y[w];
    i = words * 4;
  }
  for (; i < dst.length; i++) dst[i] = a[i] ^ b[i];
}

const ROLLING = 'rolling sums (every offset, n=4096)';

function rollingCases(data: Buffer, simd: Kernel, scalar: Kernel): Case[] {
  const n = 4096;
  const small = data.subarray(0, Math.min(data.length, 8 * MiB));
  const out = new Uint32Array(small.length - n + 1); // reused: the facade's cost, not the allocator's
  const rawCase = (label: string, simdBuild: boolean): Case => {
    const k = KernelInstance.create({ simd: simdBuild });
    const len = small.length;
    const [p, o] = k.scratch(len, (len - n + 1) * 4);
    k.bytes(p, len).set(small);
    return {
      kernel: 'rolling sums, kernel only', impl: label, bytes: len, run: () => k.x.rollingChecksums(p, len, n, o),
      reference: 'ts-reference', referenceKernel: ROLLING,
    };
  };
  return [
    { kernel: ROLLING, impl: 'ts-reference', bytes: small.length, run: () => rollingChecksumsRef(small, n) },
    { kernel: ROLLING, impl: 'wasm-simd', bytes: small.length, run: () => simd.rollingChecksums(small, n, out), reference: 'ts-reference' },
    { kernel: ROLLING, impl: 'wasm-scalar', bytes: small.length, run: () => scalar.rollingChecksums(small, n, out), reference: 'ts-reference' },
    rawCase('wasm-simd', true),
    rawCase('wasm-scalar', false),
  ];
}

function signatureCases(data: Buffer, simd: Kernel): Case[] {
  const n = 4096;
  const kernel = 'block signature (n=4096)';
  return [
    { kernel, impl: 'ts-reference', bytes: data.length, run: () => blockSignatureRef(data, n) },
    { kernel, impl: 'wasm-simd', bytes: data.length, run: () => simd.blockSignature(data, n), reference: 'ts-reference' },
  ];
}

/** fineCases: the rsync engine's fine sums (seeded XXH64 of 512-byte sub-blocks of 32 KiB blocks), on
 * 2 MiB (the BigInt reference runs at a few MB/s). */
function fineCases(data: Buffer, simd: Kernel, scalar: Kernel): Case[] {
  const part = data.subarray(0, Math.min(data.length, 2 * MiB));
  const seed = randomBytes(8);
  const kernel = 'fine sums (XXH64 of 512 B sub-blocks)';
  return [
    { kernel, impl: 'ts-reference', bytes: part.length, run: () => fineSumsRef(part, 32768, 512, seed.readBigUInt64LE(0)) },
    { kernel, impl: 'wasm-simd', bytes: part.length, run: () => simd.fineSums(part, 32768, 512, seed), reference: 'ts-reference' },
    { kernel, impl: 'wasm-scalar', bytes: part.length, run: () => scalar.fineSums(part, 32768, 512, seed), reference: 'ts-reference' },
  ];
}

/** scanCases: new data = old data with an insertion near the start and 1% of its blocks rewritten. */
function scanCases(data: Buffer, simd: Kernel, scalar: Kernel): Case[] {
  const n = 4096;
  const weaks = blockSignatureRef(data, n);
  const neu = Buffer.concat([randomBytes(100), data]);
  for (let b = 0; b < weaks.length; b += 100) randomBytes(n).copy(neu, 100 + b * n);
  const t1 = simd.signatureTable(weaks, n);
  const t2 = scalar.signatureTable(weaks, n);
  const kernel = `weak-match scan (${weaks.length} blocks, n=4096)`;
  return [
    { kernel, impl: 'ts-reference', bytes: neu.length, run: () => scanRef(neu, n, weaks) },
    { kernel, impl: 'wasm-simd', bytes: neu.length, run: () => t1.scan(neu), reference: 'ts-reference' },
    { kernel, impl: 'wasm-scalar', bytes: neu.length, run: () => t2.scan(neu), reference: 'ts-reference' },
  ];
}

function cdcCases(data: Buffer, simd: Kernel): Case[] {
  const options = { minSize: 16 * 1024, avgSize: 64 * 1024, maxSize: 256 * 1024 };
  const gear = gearTable(randomBytes(32));
  const seg = simd.cdc({ gear }, options);
  const kernel = 'FastCDC (16K/64K/256K, NC2)';
  return [
    { kernel, impl: 'ts-reference', bytes: data.length, run: () => new CdcRef(gear, options).push(data) },
    { kernel, impl: 'wasm', bytes: data.length, run: () => { seg.reset(); return seg.push(data); }, reference: 'ts-reference' },
  ];
}

function aesCases(data: Buffer, simd: Kernel): Case[] {
  const key = randomBytes(32);
  const iv = randomBytes(16);
  const refData = data.subarray(0, MiB); // the byte-oriented reference runs at a few MB/s
  const ct = createCipheriv('aes-256-cfb', key, iv).update(data);
  const out = Buffer.allocUnsafe(data.length);
  if (!cfbDecryptViaEcb(key, iv, ct).equals(data)) throw new Error('ECB trick: decryption differs from CFB');
  const enc = 'AES-256-CFB encrypt';
  const dec = 'AES-256-CFB decrypt';
  return [
    { kernel: enc, impl: 'ts-reference (byte-oriented)', bytes: refData.length, run: () => new AesCfbRef(key, iv, 'encrypt').update(refData) },
    { kernel: enc, impl: 'wasm (T-tables)', bytes: data.length, run: () => simd.aesCfb(key, iv, 'encrypt').update(data, out), reference: 'ts-reference (byte-oriented)' },
    { kernel: enc, impl: 'node:crypto (OpenSSL)', bytes: data.length, run: () => createCipheriv('aes-256-cfb', key, iv).update(data), reference: 'ts-reference (byte-oriented)' },
    { kernel: dec, impl: 'ts-reference (byte-oriented)', bytes: refData.length, run: () => new AesCfbRef(key, iv, 'decrypt').update(refData) },
    { kernel: dec, impl: 'wasm (T-tables)', bytes: data.length, run: () => simd.aesCfb(key, iv, 'decrypt').update(ct, out), reference: 'ts-reference (byte-oriented)' },
    { kernel: dec, impl: 'node:crypto (OpenSSL)', bytes: data.length, run: () => createDecipheriv('aes-256-cfb', key, iv).update(ct), reference: 'ts-reference (byte-oriented)' },
    { kernel: dec, impl: 'node:crypto ECB trick', bytes: data.length, run: () => cfbDecryptViaEcb(key, iv, ct), reference: 'ts-reference (byte-oriented)' },
  ];
}

function withRatios(results: Result[], cases: Case[]): Result[] {
  return results.map((r, i) => {
    const { reference, referenceKernel = r.kernel } = cases[i];
    if (!reference) return r;
    const ref = results.find((x) => x.impl === reference && x.kernel === referenceKernel);
    return ref ? { ...r, ratio: r.mbps / ref.mbps } : r;
  });
}

function table(results: Result[]): string {
  const rows = [['kernel', 'implementation', 'MB/s (median)', 'x reference', 'runs']];
  for (const r of results) {
    rows.push([r.kernel, r.impl, r.mbps.toFixed(0), r.ratio === undefined ? '' : `${r.ratio.toFixed(1)}x`, String(r.runs)]);
  }
  const widths = rows[0].map((_, c) => Math.max(...rows.map((row) => row[c].length)));
  const line = (row: string[]) => `| ${row.map((v, c) => (c >= 2 ? v.padStart(widths[c]) : v.padEnd(widths[c]))).join(' | ')} |`;
  const sep = `| ${widths.map((w, c) => (c >= 2 ? '-'.repeat(w - 1) + ':' : '-'.repeat(w))).join(' | ')} |`;
  return [line(rows[0]), sep, ...rows.slice(1).map(line)].join('\n');
}

function main(): void {
  const o = parseArgs(process.argv.slice(2));
  const data = randomBytes(Math.round(o.sizeMiB * MiB));
  const simd = Kernel.create({ simd: true });
  const scalar = Kernel.create({ simd: false });
  const started = Date.now();
  const cases = [
    ...rollingCases(data, simd, scalar), ...signatureCases(data, simd), ...scanCases(data, simd, scalar), ...fineCases(data, simd, scalar),
    ...cdcCases(data, simd), ...aesCases(data, simd),
  ];
  const results: Result[] = [];
  for (const c of cases) {
    const r = time(c, o.runs);
    results.push(r);
    process.stderr.write(`  ${c.kernel} / ${c.impl}: ${r.mbps.toFixed(0)} MB/s\n`);
  }
  const md = [
    `# Kernel benchmark, ${new Date(started).toISOString().slice(0, 19)}Z`,
    '',
    `Node ${process.version}, ${cpus()[0]?.model ?? 'unknown CPU'} x ${cpus().length}, load average ` +
      `${loadavg()[0].toFixed(2)} at start (shared machine: expect 10-20% noise). Input ${o.sizeMiB} MiB of random ` +
      `bytes per case (rolling sums: at most 8 MiB; byte-oriented AES reference: 1 MiB); median of up to ` +
      `${o.runs} runs after a warm-up; MB = 10^6 bytes. Took ${((Date.now() - started) / 1000).toFixed(0)} s.`,
    '',
    table(withRatios(results, cases)),
    '',
    'Rolling sums through the facade include copying 4 output bytes per input byte out of the instance;',
    '"kernel only" is the module on data already in its memory. The scan reports every weak match and',
    'leaves strong-hash checks and skipping to the caller. AES in WASM uses T-tables and is not',
    'constant-time; the ECB trick decrypts CFB as AES-ECB over the ciphertext shifted by one block, XORed.',
    '',
  ].join('\n');
  process.stdout.write(`${md}\n`);
  if (o.write) {
    mkdirSync(o.out, { recursive: true });
    const file = join(o.out, `kernels-${new Date(started).toISOString().slice(0, 10)}.md`);
    writeFileSync(file, md);
    process.stderr.write(`wrote ${file}\n`);
  }
  simd.dispose();
  scalar.dispose();
}

main();
