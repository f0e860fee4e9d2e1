/**
 * Streaming tar reader.
 *
 * Model: `readTar` turns a byte stream into a sequence of members, each a decoded header plus an async
 * iterable over its data. Nothing is buffered beyond the input chunk being parsed: member data is yielded
 * as sub-views of the input chunks, so memory stays bounded by the upstream segment size.
 *
 * What it resolves before yielding a member:
 * - GNU ././@LongLink members ('L' name, 'K' link name) and their truncated copies in the header;
 * - old GNU sparse members ('S') including their extension blocks (`header.sparse.map` is complete);
 * - pax extended headers ('x' for the next member, 'g' for all following ones): path, linkpath, size,
 *   mtime/atime/ctime, uid/gid, uname/gname, and the GNU sparse formats 0.1 and 1.0 (turned into type 'S'
 *   with `sparse` set, so consumers see one sparse model);
 * - GNU volume labels ('V') and obsolete 'N' members are skipped.
 *
 * Like `tar --ignore-zeros`, zero blocks anywhere are skipped and concatenated archives read through; the
 * stream must still end with a zero block (every tar writes two), otherwise it was cut: IntegrityError.
 */
import { IntegrityError, InterruptedError } from '../../errors.js';
import { BLOCK, decodeHeader, decodeSparseExtension, padding, sparseExtended, type SparseChunk, type TarHeader } from './header.js';
import { giveUp } from '../../pipeline/stages.js';

export interface TarEntry {
  header: TarHeader;
  /**
   * The member's data (for 'S': the stored chunks back to back; for 'D': the dumpdir). MUST be consumed or
   * abandoned before the next entry is requested: the reader then skips whatever was not read.
   */
  data: AsyncIterable<Buffer>;
  /**
   * The whole data, when the member is small and lies within the input chunk at hand: a view of it, valid
   * until the next entry is requested. A consumer that takes it does not iterate `data`.
   */
  whole?: Buffer;
}

export interface ReadOptions {
  /** Require the end-of-archive zero blocks (default true): detects a stream cut at a member boundary. */
  requireEnd?: boolean;
}

/** WHOLE_MAX: members up to this size are offered whole (TarEntry.whole) when they lie in one input chunk. */
const WHOLE_MAX = 256 * 1024;
/** MAX_META: cap on long names and pax headers held in memory. PATH_MAX is 4096; 1 MiB is generous. */
const MAX_META = 1 << 20;
const EMPTY = Buffer.alloc(0);
const NO_PAX: ReadonlyMap<string, string> = new Map();

function checkSignal(signal?: AbortSignal): void {
  if (signal?.aborted) {
    const r: unknown = signal.reason;
    throw r instanceof Error ? r : new InterruptedError();
  }
}

/** ByteSource reads exact byte counts or opportunistic chunks out of an async stream of buffers. */
class ByteSource {
  readonly #it: AsyncIterator<Buffer>;
  readonly #signal?: AbortSignal;
  #buf: Buffer = EMPTY;
  #eof = false;
  #pulled = false;

  constructor(input: AsyncIterable<Buffer>, signal?: AbortSignal) {
    this.#it = input[Symbol.asyncIterator]();
    this.#signal = signal;
  }

  /**
   * close gives the input up (its iterator's return()), unless it ended: a reader stopped early (the
   * extractor failed: a full disk) must stop what feeds it, whose stages and threads would otherwise wait
   * for ever to be read, keeping the process alive after its error was reported.
   */
  async close(): Promise<void> {
    if (this.#eof) return;
    this.#eof = true;
    this.#buf = EMPTY;
    await giveUp(this.#it, this.#pulled);
  }

  /** fill makes the current buffer non-empty; false at the end of the stream. */
  async #fill(): Promise<boolean> {
    while (this.#buf.length === 0) {
      if (this.#eof) return false;
      checkSignal(this.#signal);
      this.#pulled = true;
      const r = await this.#it.next();
      if (r.done) { this.#eof = true; return false; }
      this.#buf = r.value;
    }
    return true;
  }

  /** chunk returns 1..max bytes; throws "truncated" at the end of the stream. */
  async chunk(max: number): Promise<Buffer> {
    if (!(await this.#fill())) throw new IntegrityError('truncated archive: unexpected end of data');
    const n = Math.min(max, this.#buf.length);
    const out = this.#buf.subarray(0, n);
    this.#buf = this.#buf.subarray(n);
    return out;
  }

  /** block returns the next 512 bytes, or null at a clean end (a trailing partial block of zeros is an end too). */
  async block(): Promise<Buffer | null> {
    if (!(await this.#fill())) return null;
    if (this.#buf.length >= BLOCK) return this.chunk(BLOCK);
    const out = Buffer.alloc(BLOCK);
    let got = 0;
    while (got < BLOCK && (await this.#fill())) {
      const c = await this.chunk(BLOCK - got);
      c.copy(out, got);
      got += c.length;
    }
    if (got < BLOCK) {
      if (out.subarray(0, got).every((b) => b === 0)) return null;
      throw new IntegrityError('truncated archive: incomplete tar block');
    }
    return out;
  }

  /** read returns exactly n bytes (n small: metadata) or throws "truncated". */
  async read(n: number): Promise<Buffer> {
    const parts: Buffer[] = [];
    let got = 0;
    while (got < n) {
      const c = await this.chunk(n - got);
      parts.push(c);
      got += c.length;
    }
    return parts.length === 1 ? parts[0] : Buffer.concat(parts, n);
  }

  /** peek returns the next n bytes as a view when the current buffer holds them, else null; consumes nothing. */
  peek(n: number): Buffer | null {
    return n <= this.#buf.length ? this.#buf.subarray(0, n) : null;
  }

  async skip(n: number): Promise<void> {
    while (n > 0) n -= (await this.chunk(n)).length;
  }
}

/** readMeta reads a metadata member's data (long name, pax records) with its padding. */
async function readMeta(src: ByteSource, size: number, what: string): Promise<Buffer> {
  if (size > MAX_META) throw new IntegrityError(`corrupted archive: ${what} of ${size} bytes`);
  const data = await src.read(size);
  await src.skip(padding(size));
  return data;
}

function cString(b: Buffer): string {
  const end = b.indexOf(0);
  return b.toString('utf8', 0, end < 0 ? b.length : end);
}

/** parsePax parses "LEN KEY=VALUE\n" records. */
export function parsePax(b: Buffer): Map<string, string> {
  const out = new Map<string, string>();
  let pos = 0;
  while (pos < b.length) {
    if (b[pos] === 0) break; // some writers pad with NULs
    const sp = b.indexOf(0x20, pos);
    const len = Number(b.toString('latin1', pos, sp));
    if (sp < 0 || !Number.isInteger(len) || len <= 0 || pos + len > b.length || b[pos + len - 1] !== 0x0a) {
      throw new IntegrityError('corrupted archive: malformed pax header');
    }
    const rec = b.subarray(sp + 1, pos + len - 1);
    const eq = rec.indexOf(0x3d);
    if (eq < 0) throw new IntegrityError('corrupted archive: malformed pax record');
    out.set(rec.toString('utf8', 0, eq), rec.toString('utf8', eq + 1));
    pos += len;
  }
  return out;
}

function paxNumber(v: string, key: string): number {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n)) throw new IntegrityError(`corrupted archive: bad pax ${key}`);
  return Math.floor(n);
}

/** applyPax overrides header fields with pax records (global first, then the member's own). */
function applyPax(h: TarHeader, pax: ReadonlyMap<string, string>): void {
  for (const [k, v] of pax) {
    switch (k) {
      case 'path': h.name = v; break;
      case 'linkpath': h.linkname = v; break;
      case 'size': h.size = paxNumber(v, k); break;
      case 'mtime': h.mtime = paxNumber(v, k); break;
      case 'atime': h.atime = paxNumber(v, k); break;
      case 'ctime': h.ctime = paxNumber(v, k); break;
      case 'uid': h.uid = paxNumber(v, k); break;
      case 'gid': h.gid = paxNumber(v, k); break;
      case 'uname': h.uname = v; break;
      case 'gname': h.gname = v; break;
      default: break;
    }
  }
}

/** paxSparse01 turns GNU sparse 0.1 records (GNU.sparse.map "off,size,...") into the sparse model. */
function paxSparse01(h: TarHeader, pax: ReadonlyMap<string, string>): void {
  const nums = (pax.get('GNU.sparse.map') ?? '').split(',').filter((s) => s !== '').map((s) => paxNumber(s, 'sparse map'));
  if (nums.length % 2 !== 0) throw new IntegrityError('corrupted archive: bad pax sparse map');
  const map: SparseChunk[] = [];
  for (let i = 0; i < nums.length; i += 2) map.push({ offset: nums[i], size: nums[i + 1] });
  h.sparse = { realSize: paxNumber(pax.get('GNU.sparse.size') ?? pax.get('GNU.sparse.realsize') ?? '0', 'sparse size'), map };
  h.type = 'S';
}

/**
 * paxSparse10 reads the GNU sparse 1.0 map that starts the member data: decimal numbers, one a line
 * (count, then offset/size pairs), padded to a block. Returns the bytes it consumed.
 */
async function paxSparse10(src: ByteSource, h: TarHeader, pax: ReadonlyMap<string, string>): Promise<number> {
  const nums: number[] = [];
  let want = -1; // 2 x entry count, once the first line is read
  let text = '';
  let used = 0;
  while (want < 0 || nums.length < want) {
    if (used + BLOCK > h.size || used >= MAX_META) throw new IntegrityError('corrupted archive: bad pax sparse map');
    text += (await src.read(BLOCK)).toString('latin1');
    used += BLOCK;
    const lines = text.split('\n');
    text = lines.pop() ?? '';
    for (const line of lines) {
      if (want >= 0 && nums.length >= want) break;
      const n = paxNumber(line, 'sparse map');
      if (want < 0) want = 2 * n; else nums.push(n);
    }
  }
  const map: SparseChunk[] = [];
  for (let i = 0; i < nums.length; i += 2) map.push({ offset: nums[i], size: nums[i + 1] });
  h.sparse = { realSize: paxNumber(pax.get('GNU.sparse.realsize') ?? '0', 'sparse realsize'), map };
  h.type = 'S';
  return used;
}

/** MemberState tracks the data of the member last yielded, so the reader can skip what was not consumed. */
interface MemberState { remaining: number; pad: number }

function dataIterable(src: ByteSource, state: MemberState): AsyncIterable<Buffer> {
  return {
    async *[Symbol.asyncIterator]() {
      while (state.remaining > 0) {
        const c = await src.chunk(state.remaining);
        state.remaining -= c.length;
        yield c;
      }
    },
  };
}

/**
 * readTar parses `input` as a tar stream (GNU, ustar or pax) and yields its members in order.
 * Throws IntegrityError on a bad checksum, a malformed header or a truncated stream.
 */
export async function* readTar(
  input: AsyncIterable<Buffer>,
  signal?: AbortSignal,
  options: ReadOptions = {},
): AsyncIterable<TarEntry> {
  const src = new ByteSource(input, signal);
  try {
    const globalPax = new Map<string, string>();
    let pax: Map<string, string> | null = null;
    let longName: string | null = null;
    let longLink: string | null = null;
    let lastWasZero = false;
    for (;;) {
      const block = await src.block();
      if (!block) break;
      const h = decodeHeader(block);
      if (!h) { lastWasZero = true; continue; }
      lastWasZero = false;
      switch (h.type) {
        case 'L': longName = cString(await readMeta(src, h.size, 'long name')); continue;
        case 'K': longLink = cString(await readMeta(src, h.size, 'long link name')); continue;
        case 'x': pax = parsePax(await readMeta(src, h.size, 'pax header')); continue;
        case 'g': for (const [k, v] of parsePax(await readMeta(src, h.size, 'pax header'))) globalPax.set(k, v); continue;
        case 'V': case 'N': await src.skip(h.size + padding(h.size)); continue;
        case 'M': throw new IntegrityError('unsupported archive: multi-volume continuation member');
        default: break;
      }
      if (h.type === 'S' && h.sparse && sparseExtended(block)) {
        for (let more = true; more;) {
          const ext = await src.block();
          if (!ext) throw new IntegrityError('truncated archive: missing sparse extension header');
          const e = decodeSparseExtension(ext);
          h.sparse.map.push(...e.map);
          more = e.extended;
        }
      }
      const all = globalPax.size === 0 && pax === null ? NO_PAX : new Map([...globalPax, ...(pax ?? [])]);
      if (all.size > 0) applyPax(h, all);
      if (longName !== null) h.name = longName;
      if (longLink !== null) h.linkname = longLink;
      pax = longName = longLink = null;
      let size = h.size;
      if (all.get('GNU.sparse.major') === '1' && all.get('GNU.sparse.minor') === '0') {
        size -= await paxSparse10(src, h, all);
        h.size = size;
      } else if (all.has('GNU.sparse.map')) {
        paxSparse01(h, all);
      }
      if (all.has('GNU.sparse.name')) h.name = all.get('GNU.sparse.name') ?? h.name;
      // The sparse 1.0 map is a whole number of blocks, so the padding of what follows is padding(size).
      const state: MemberState = { remaining: size, pad: padding(size) };
      // A small member found whole in the chunk at hand is also offered as one view: no async iteration.
      const whole = size <= WHOLE_MAX ? src.peek(size) : null;
      yield { header: h, data: dataIterable(src, state), whole: whole ?? undefined };
      await src.skip(state.remaining + state.pad);
      state.remaining = 0;
      checkSignal(signal);
    }
    if (!lastWasZero && (options.requireEnd ?? true)) {
      throw new IntegrityError('truncated archive: no end-of-archive marker');
    }
  } finally {
    await src.close();
  }
}
