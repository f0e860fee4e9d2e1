/**
 * Tests of the GNU tar header codec and the stream reader, against archives made by the real GNU tar.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, linkSync, writeFileSync, openSync, writeSync, closeSync, ftruncateSync, chownSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { IntegrityError } from '../../engine/errors.js';
import { BLOCK, decodeHeader, decodeSparseExtension, encodeHeader, encodeHeaderInto, END_OF_ARCHIVE, padding, sparseExtended, type TarHeader } from '../../engine/archive/tar/header.js';
import { readTar, type TarEntry } from '../../engine/archive/tar/reader.js';

const isRoot = process.getuid?.() === 0;

function tmp(): string {
  return mkdtempSync(join(tmpdir(), 'floe-tarh-'));
}

function base(over: Partial<TarHeader>): TarHeader {
  return {
    name: './a.txt', mode: 0o644, uid: 0, gid: 0, size: 0, mtime: 1_700_000_000, type: '0', linkname: '',
    uname: 'root', gname: 'root', devmajor: 0, devminor: 0, ...over,
  };
}

/** chunks yields `buf` in pieces of `size` bytes (exercises block boundaries inside input chunks). */
async function* chunks(buf: Buffer, size: number): AsyncIterable<Buffer> {
  for (let i = 0; i < buf.length; i += size) yield buf.subarray(i, i + size);
}

async function readAll(buf: Buffer, size = 65536): Promise<{ header: TarHeader; data: Buffer }[]> {
  const out: { header: TarHeader; data: Buffer }[] = [];
  for await (const e of readTar(chunks(buf, size)) as AsyncIterable<TarEntry>) {
    const parts: Buffer[] = [];
    for await (const c of e.data) parts.push(Buffer.from(c));
    out.push({ header: e.header, data: Buffer.concat(parts) });
  }
  return out;
}

/** member builds one archive member: headers + data + padding. */
function member(h: TarHeader, data = Buffer.alloc(0)): Buffer {
  return Buffer.concat([encodeHeader(h), data, Buffer.alloc(padding(data.length))]);
}

/**
 * rawHeaders walks a real archive and returns, for each member, the decoded header (with long names and
 * sparse extensions resolved) and the exact bytes GNU tar wrote for its header blocks.
 */
function rawHeaders(buf: Buffer): { h: TarHeader; raw: Buffer }[] {
  const out: { h: TarHeader; raw: Buffer }[] = [];
  let off = 0;
  let start = 0;
  let longName: string | null = null;
  let longLink: string | null = null;
  while (off < buf.length) {
    const blk = buf.subarray(off, off + BLOCK);
    const h = decodeHeader(blk);
    if (!h) { off += BLOCK; start = off; continue; }
    off += BLOCK;
    if (h.type === 'L' || h.type === 'K') {
      const s = buf.toString('utf8', off, off + h.size - 1);
      if (h.type === 'L') longName = s; else longLink = s;
      off += h.size + padding(h.size);
      continue;
    }
    if (longName !== null) h.name = longName;
    if (longLink !== null) h.linkname = longLink;
    let ext = h.type === 'S' && sparseExtended(blk);
    while (ext) {
      const e = decodeSparseExtension(buf.subarray(off, off + BLOCK));
      h.sparse?.map.push(...e.map);
      ext = e.extended;
      off += BLOCK;
    }
    out.push({ h, raw: buf.subarray(start, off) });
    off += h.size + padding(h.size);
    start = off;
    longName = longLink = null;
  }
  return out;
}

test('padding and end of archive', () => {
  assert.is(padding(0), 0);
  assert.is(padding(1), 511);
  assert.is(padding(512), 0);
  assert.is(padding(513), 511);
  assert.is(END_OF_ARCHIVE.length, 1024);
  assert.ok(END_OF_ARCHIVE.every((b) => b === 0));
  assert.is(decodeHeader(Buffer.alloc(512)), null);
});

test('round trip: plain, long unicode name, long link name, base-256 numbers, devices, times', () => {
  const cases: TarHeader[] = [
    base({}),
    base({ name: './' + 'é'.repeat(100) + '/' + 'ü'.repeat(50) + '.txt', size: 12345 }),
    base({ name: './l', type: '2', linkname: '/' + 'x'.repeat(299) }),
    base({ name: './' + 'n'.repeat(200), type: '1', linkname: './' + 'm'.repeat(150) }),
    base({ size: 9 * 1024 ** 3, uid: 3_000_000, gid: 2 ** 21, mtime: 2 ** 34 }),
    base({ mtime: -86400 }),
    base({ name: './dev', type: '3', devmajor: 1, devminor: 3, mode: 0o620 }),
    base({ name: './d/', type: 'D', size: 36, mode: 0o4755 & 0o7777, atime: 1_700_000_001, ctime: 1_700_000_002 }),
    base({ name: './' + 'x'.repeat(100) }), // exactly 100 bytes: no LongLink
    base({ uname: 'u'.repeat(31), gname: 'g' }),
  ];
  for (const h of cases) {
    const enc = encodeHeader(h);
    assert.is(enc.length % BLOCK, 0);
    const name = Buffer.byteLength(h.name);
    const link = Buffer.byteLength(h.linkname);
    const extra = (name > 100 ? 1 + Math.ceil((name + 1) / BLOCK) : 0) + (link > 100 ? 1 + Math.ceil((link + 1) / BLOCK) : 0);
    assert.is(enc.length / BLOCK, 1 + extra, h.name);
    const got = readHeaderBlocks(enc);
    assert.equal(got, h);
  }
});

test('encodeHeaderInto writes the same block in place, and declines what needs more than one block', () => {
  const one: TarHeader[] = [
    base({}),
    base({ name: './' + 'x'.repeat(98) }), // exactly 100 bytes
    base({ name: './' + 'é'.repeat(49), size: 7 }), // 100 bytes, not ASCII
    base({ name: './l', type: '2', linkname: 'ü'.repeat(50) }),
    base({ uname: 'u'.repeat(40), gname: 'ğ'.repeat(20) }), // cut to 31 bytes and a NUL, as GNU tar
    base({ size: 8 ** 11 - 1, mtime: 8 ** 11 }), // the largest octal size, the smallest base-256 time
    base({ size: 9 * 1024 ** 3, uid: 2 ** 21, mtime: -1 }),
    base({ name: './dev', type: '4', devmajor: 8, devminor: 1 }),
    base({ name: './d/', type: 'D', size: 36, atime: 1_700_000_001, ctime: 1_700_000_002 }),
    base({ name: './s', type: 'S', size: 1024, sparse: { realSize: 1 << 20, map: [{ offset: 0, size: 512 }, { offset: 1 << 19, size: 512 }, { offset: 1 << 20, size: 0 }] } }),
  ];
  const many: TarHeader[] = [
    base({ name: './' + 'x'.repeat(99) }),
    base({ name: './' + 'é'.repeat(50) }), // 99 characters, 102 bytes
    base({ name: './l', type: '2', linkname: 'x'.repeat(101) }),
    base({ name: './s', type: 'S', size: 0, sparse: { realSize: 1 << 20, map: Array.from({ length: 5 }, (_, i) => ({ offset: i * 4096, size: 512 })) } }),
  ];
  for (const h of one) {
    const buf = Buffer.alloc(3 * BLOCK, 0xa5); // garbage around and under the block
    assert.ok(encodeHeaderInto(h, buf, 700), h.name);
    assert.ok(buf.subarray(700, 700 + BLOCK).equals(encodeHeader(h)), h.name);
    assert.ok(buf.subarray(0, 700).every((x) => x === 0xa5) && buf.subarray(700 + BLOCK).every((x) => x === 0xa5), 'nothing outside the block');
    if (!h.sparse) assert.equal(readHeaderBlocks(buf.subarray(700, 700 + BLOCK)), { ...h, uname: h.uname.slice(0, 31), gname: Buffer.from(h.gname).subarray(0, 31).toString() });
  }
  for (const h of many) {
    assert.not.ok(encodeHeaderInto(h, Buffer.alloc(BLOCK), 0), h.name);
    assert.ok(encodeHeader(h).length > BLOCK, h.name);
  }
});

/** readHeaderBlocks decodes an encoded header with its long-name members, synchronously. */
function readHeaderBlocks(enc: Buffer): TarHeader {
  const list = rawHeaders(Buffer.concat([enc, END_OF_ARCHIVE]));
  assert.is(list.length, 1);
  return list[0].h;
}

test('round trip: sparse map with extension blocks', async () => {
  const map = Array.from({ length: 30 }, (_, i) => ({ offset: i * 1_000_000, size: 4096 }));
  map.push({ offset: 10 * 1024 ** 3, size: 0 });
  const h = base({ name: './sp', type: 'S', size: 30 * 4096, sparse: { realSize: 10 * 1024 ** 3, map } });
  const enc = encodeHeader(h);
  assert.is(enc.length, BLOCK * (1 + 2)); // 4 in the header, 21 + 6 in two extension blocks
  const data = Buffer.alloc(30 * 4096, 7);
  const entries = await readAll(Buffer.concat([enc, data, END_OF_ARCHIVE]), 1000);
  assert.is(entries.length, 1);
  assert.equal(entries[0].header, h);
  assert.is(entries[0].data.length, data.length);
});

test('bad checksum is an IntegrityError', () => {
  const enc = encodeHeader(base({}));
  enc[0] ^= 1;
  assert.throws(() => decodeHeader(enc), (e: unknown) => e instanceof IntegrityError);
});

test('owner names of 32 bytes and more: 31 bytes and a NUL, as GNU tar writes them', () => {
  const dir = tmp();
  try {
    writeFileSync(join(dir, 'f'), 'x');
    const tarBlock = (owner: string, group: string) => execFileSync('tar', [
      '--format=gnu', `--owner=${owner}:5`, `--group=${group}:6`, '--mtime=@1700000000', '-C', dir, '-cf', '-', 'f',
    ]).subarray(0, BLOCK);
    const ascii = tarBlock('u'.repeat(40), 'g'.repeat(32));
    assert.ok(encodeHeader(decodeHeader(ascii)!).equals(ascii), 'the whole block, checksum included');
    const utf8 = tarBlock('o', 'ğ'.repeat(20)); // cut inside the 16th character, as GNU tar does
    assert.ok(utf8.subarray(297, 329).equals(Buffer.concat([Buffer.from('ğ'.repeat(15)), Buffer.from([0xc4, 0])])));
    assert.ok(encodeHeader(base({ name: 'f', gname: 'ğ'.repeat(20) })).subarray(297, 329).equals(utf8.subarray(297, 329)));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('encoder matches GNU tar 1.34 byte for byte (gnu format, listed-incremental)', () => {
  const dir = tmp();
  try {
    const src = join(dir, 'src');
    const longDir = 'é'.repeat(60);
    mkdirSync(join(src, 'sub'), { recursive: true });
    mkdirSync(join(src, longDir));
    writeFileSync(join(src, 'a.txt'), 'hello\n');
    writeFileSync(join(src, longDir, 'x'.repeat(150)), 'long\n');
    symlinkSync('t'.repeat(150), join(src, 'longlink'));
    symlinkSync('a.txt', join(src, 'lnk'));
    linkSync(join(src, 'a.txt'), join(src, 'hard'));
    execFileSync('mkfifo', [join(src, 'fifo')]);
    if (isRoot) {
      execFileSync('mknod', [join(src, 'cdev'), 'c', '1', '3']);
      writeFileSync(join(src, 'bigid'), 'u');
      chownSync(join(src, 'bigid'), 3_000_000, 3_000_000);
    }
    // Sparse: 9 GiB with data at the end (base-256 realsize and offsets), and many chunks (extension blocks).
    const big = openSync(join(src, 'big'), 'w');
    ftruncateSync(big, 9 * 1024 ** 3);
    writeSync(big, Buffer.from('end'), 0, 3, 9 * 1024 ** 3 - 3);
    closeSync(big);
    const sp = openSync(join(src, 'sp'), 'w');
    ftruncateSync(sp, 64 << 20);
    for (let i = 1; i <= 8; i++) writeSync(sp, Buffer.from('zz'), 0, 2, i * (6 << 20));
    closeSync(sp);
    const archive = join(dir, 'a.tar');
    execFileSync('tar', ['--create', '--format=gnu', `--listed-incremental=${join(dir, 'snap')}`, '--sparse', '-f', archive, '-C', src, '.']);
    const headers = rawHeaders(readFileSync(archive));
    const types = new Set(headers.map((x) => x.h.type));
    for (const t of ['D', '0', '1', '2', '6', 'S']) assert.ok(types.has(t), `type ${t} present`);
    for (const { h, raw } of headers) {
      assert.ok(encodeHeader(h).equals(raw), `header of ${h.name} re-encodes identically`);
    }
    const dirHeader = headers.find((x) => x.h.name === './');
    assert.ok(dirHeader?.h.atime !== undefined && dirHeader.h.ctime !== undefined, 'incremental atime/ctime');
    const bigHeader = headers.find((x) => x.h.name === './big');
    assert.is(bigHeader?.h.sparse?.realSize, 9 * 1024 ** 3);
    const spHeader = headers.find((x) => x.h.name === './sp');
    assert.ok((spHeader?.h.sparse?.map.length ?? 0) > 4, 'extension blocks used');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('reader: GNU tar archive, data, long names, dumpdirs, 7-byte input chunks', async () => {
  const dir = tmp();
  try {
    const src = join(dir, 'src');
    mkdirSync(join(src, 'sub'), { recursive: true });
    const longName = 'ü'.repeat(80) + '-' + 'y'.repeat(80);
    mkdirSync(join(src, 'sub', longName));
    writeFileSync(join(src, longName), 'long name data');
    writeFileSync(join(src, 'sub', longName, longName), 'deeper');
    writeFileSync(join(src, 'sub', 'b.bin'), Buffer.alloc(3000, 9));
    const archive = join(dir, 'a.tar');
    execFileSync('tar', ['--create', '--format=gnu', `--listed-incremental=${join(dir, 'snap')}`, '-f', archive, '-C', src, '.']);
    const entries = await readAll(readFileSync(archive), 7);
    const byName = new Map(entries.map((e) => [e.header.name, e]));
    assert.equal(byName.get('./')?.header.type, 'D');
    assert.ok(byName.get('./')?.data.equals(Buffer.from(`Dsub\0Y${longName}\0\0`)), 'dumpdir bytes');
    assert.is(byName.get(`./${longName}`)?.data.toString(), 'long name data');
    assert.is(byName.get(`./sub/${longName}/${longName}`)?.data.toString(), 'deeper');
    assert.ok(byName.get('./sub/b.bin')?.data.equals(Buffer.alloc(3000, 9)));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('reader: pax archives (long names, sparse 1.0 and 0.1)', async () => {
  const dir = tmp();
  try {
    const src = join(dir, 'src');
    mkdirSync(src);
    const longName = 'p'.repeat(180) + 'ä';
    writeFileSync(join(src, longName), 'pax');
    const fd = openSync(join(src, 'sparse'), 'w');
    ftruncateSync(fd, 32 << 20);
    writeSync(fd, Buffer.from('middle'), 0, 6, 16 << 20);
    closeSync(fd);
    for (const version of ['1.0', '0.1']) {
      const archive = join(dir, `p${version}.tar`);
      execFileSync('tar', ['--create', '--format=pax', `--sparse-version=${version}`, '--sparse', '-f', archive, '-C', src, '.']);
      const entries = await readAll(readFileSync(archive), 333);
      const names = entries.map((e) => e.header.name);
      assert.ok(names.includes(`./${longName}`), `${version}: pax path`);
      const sp = entries.find((e) => e.header.name === './sparse');
      assert.ok(sp, `${version}: sparse name restored`);
      assert.is(sp?.header.type, 'S');
      assert.is(sp?.header.sparse?.realSize, 32 << 20);
      const map = sp?.header.sparse?.map ?? [];
      const stored = map.reduce((s, c) => s + c.size, 0);
      assert.is(sp?.data.length, stored);
      const chunk = map.find((c) => c.size > 0);
      assert.ok(chunk && chunk.offset <= 16 << 20 && chunk.offset + chunk.size >= (16 << 20) + 6);
      const at = (16 << 20) - (chunk?.offset ?? 0);
      assert.is(sp?.data.toString('latin1', at, at + 6), 'middle');
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('reader: a small member lying in the chunk at hand is offered whole, and is the same bytes as its data', async () => {
  const small = randomBytesLike(3000, 1);
  const big = randomBytesLike(300 * 1024, 2); // over the 256 KiB limit: never whole
  const archive = Buffer.concat([
    member(base({ name: './a', size: small.length }), small),
    member(base({ name: './big', size: big.length }), big),
    member(base({ name: './empty', size: 0 })),
    END_OF_ARCHIVE,
  ]);
  for (const size of [1 << 20, 1000]) { // one chunk; 1000-byte chunks (./a spans four of them)
    const seen: Record<string, boolean> = {};
    for await (const e of readTar(chunks(archive, size))) {
      seen[e.header.name] = e.whole !== undefined;
      if (e.whole) {
        const copy = Buffer.from(e.whole);
        assert.ok(copy.equals(e.header.name === './a' ? small : Buffer.alloc(0)), e.header.name);
      } else {
        const parts: Buffer[] = [];
        for await (const c of e.data) parts.push(Buffer.from(c));
        assert.ok(Buffer.concat(parts).equals(e.header.name === './a' ? small : e.header.name === './big' ? big : Buffer.alloc(0)), e.header.name);
      }
    }
    assert.equal(seen, size === 1 << 20 ? { './a': true, './big': false, './empty': true } : { './a': false, './big': false, './empty': true }, `chunks of ${size}`);
  }
});

/** randomBytesLike: deterministic bytes (a seeded pattern) without importing crypto here. */
function randomBytesLike(n: number, seed: number) {
  const b = Buffer.alloc(n);
  let x = seed * 2654435761 >>> 0;
  for (let i = 0; i < n; i++) { x = (x * 1103515245 + 12345) >>> 0; b[i] = x >>> 24; }
  return b;
}

test('reader: zero blocks in the middle and concatenated archives are read through', async () => {
  const a = Buffer.concat([member(base({ name: './a', size: 1 }), Buffer.from('A')), END_OF_ARCHIVE, Buffer.alloc(10240 - 2048)]);
  const b = Buffer.concat([member(base({ name: './b', size: 2 }), Buffer.from('BB')), END_OF_ARCHIVE]);
  const entries = await readAll(Buffer.concat([a, b]), 100);
  assert.equal(entries.map((e) => [e.header.name, e.data.toString()]), [['./a', 'A'], ['./b', 'BB']]);
});

test('reader: unconsumed data is skipped', async () => {
  const buf = Buffer.concat([member(base({ name: './a', size: 2000 }), Buffer.alloc(2000, 1)),
    member(base({ name: './b', size: 3 }), Buffer.from('bcd')), END_OF_ARCHIVE]);
  const seen: string[] = [];
  for await (const e of readTar(chunks(buf, 300))) {
    if (e.header.name === './b') for await (const c of e.data) seen.push(c.toString());
  }
  assert.equal(seen.join(''), 'bcd');
});

test('reader: truncated streams are IntegrityErrors', async () => {
  const full = Buffer.concat([member(base({ name: './a', size: 5000 }), Buffer.alloc(5000, 1)), END_OF_ARCHIVE]);
  for (const cut of [100, 512, 3000, 5632]) {
    try {
      await readAll(full.subarray(0, cut));
      assert.unreachable(`cut at ${cut}`);
    } catch (err) {
      assert.ok(err instanceof IntegrityError, `cut at ${cut}: ${String(err)}`);
      assert.match((err as Error).message, /truncated archive/);
    }
  }
});

test.run();
