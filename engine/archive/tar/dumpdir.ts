/**
 * GNU incremental dumpdirs on restore: parsing and directory purging.
 *
 * Model (GNU tar 1.34, incremen.c): each directory of a --listed-incremental archive is a 'D' member whose
 * data lists the directory's entries at backup time, each a control letter + name + NUL, the list ended
 * by an extra NUL:
 *   Y name   the entry is in this archive;      N name   it exists but is unchanged (not in this archive);
 *   D name   it is a directory;
 *   R src / T dst   a directory was renamed since the previous level (names relative to the archive root;
 *                   an empty name stands for a temporary directory, used to break rename cycles);
 *   X dir    create that temporary directory (mkdtemp "dir/tar.XXXXXX") for the R/T pairs that follow.
 * Extracting such a member "purges" the directory on disk, before it is created or updated: first the
 * renames are applied in order, then every entry that existed BEFORE the renames (GNU tar lists the
 * directory first) is removed, recursively, when the dumpdir does not list it, lists it as D while it is
 * not a directory, or lists it as Y/N... as Y while it is a directory (lstat: symlinks are not followed).
 * A malformed dumpdir disables the purge of that directory (tar prints an error and goes on).
 */
import { lstat, mkdir, mkdtemp, readdir, rename, rm, rmdir } from 'node:fs/promises';
import { dirname } from 'node:path';

export interface DumpdirEntry { kind: string; name: Buffer }

/** parseDumpdir splits dumpdir bytes into entries; it stops at the empty entry (double NUL) or the end. */
export function parseDumpdir(b: Buffer): DumpdirEntry[] {
  const out: DumpdirEntry[] = [];
  let pos = 0;
  while (pos < b.length && b[pos] !== 0) {
    let end = b.indexOf(0, pos);
    if (end < 0) end = b.length;
    out.push({ kind: String.fromCharCode(b[pos]), name: b.subarray(pos + 1, end) });
    pos = end + 1;
  }
  return out;
}

/** dumpdirError returns why a dumpdir is malformed (tar's dumpdir_ok), or null when it is fine. */
export function dumpdirError(entries: DumpdirEntry[]): string | null {
  let hasTemp = false;
  let expect = '';
  for (const e of entries) {
    if (expect && e.kind !== expect) return `Malformed dumpdir: expected '${expect}' but found '${e.kind}'`;
    switch (e.kind) {
      case 'X':
        if (hasTemp) return "Malformed dumpdir: 'X' duplicated";
        hasTemp = true;
        break;
      case 'R':
        if (e.name.length === 0) {
          if (!hasTemp) return "Malformed dumpdir: empty name in 'R'";
          hasTemp = false;
        }
        expect = 'T';
        break;
      case 'T':
        if (expect !== 'T') return "Malformed dumpdir: 'T' not preceded by 'R'";
        if (e.name.length === 0 && !hasTemp) return "Malformed dumpdir: empty name in 'T'";
        expect = '';
        break;
      default:
        break;
    }
  }
  return expect ? `Malformed dumpdir: expected '${expect}' but found end of data` : null;
}

/** PurgeContext: what purging needs from the extractor (path safety, warnings, cache invalidation). */
export interface PurgeContext {
  /**
   * resolve maps a member name (as stored in R/T/X entries) to an absolute path under the target, or null
   * when the name is unsafe ('..' components) or a parent is a symlink. It MUST NOT create anything.
   */
  resolve(memberName: string): Promise<string | null>;
  warn(message: string): void;
  /** removed is told about every path that was removed or renamed away (to drop cached knowledge). */
  removed(path: string): void;
}

/** renameDirectory is tar's rename_directory: on ENOENT create the missing parents of dst and retry once. */
async function renameDirectory(src: string, dst: string, ctx: PurgeContext): Promise<boolean> {
  try {
    await rename(src, dst);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    let failure: unknown = err;
    if (e.code === 'ENOENT') {
      try {
        await mkdir(dirname(dst), { recursive: true });
        await rename(src, dst);
        failure = null;
      } catch (again) {
        failure = again;
      }
    }
    if (failure) {
      ctx.warn(`Cannot rename ${src} to ${dst}: ${(failure as Error).message}`);
      return false;
    }
  }
  ctx.removed(src);
  ctx.removed(dst);
  return true;
}

/** applyRenames runs the X/R/T entries in order; false when one failed (the purge then stops, like tar). */
async function applyRenames(entries: DumpdirEntry[], ctx: PurgeContext): Promise<boolean> {
  let temp: string | null = null;
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i];
    if (e.kind === 'X') {
      const dir = await ctx.resolve(e.name.toString('utf8'));
      if (dir === null) { ctx.warn(`unsafe dumpdir entry ${e.name.toString('utf8')}: not purging`); return false; }
      try {
        temp = await mkdtemp(`${dir}/tar.`);
      } catch (err) {
        ctx.warn(`Cannot create temporary directory in ${dir}: ${(err as Error).message}`);
        return false;
      }
    } else if (e.kind === 'R') {
      const dstEntry = entries[++i];
      const srcName = e.name.toString('utf8');
      const dstName = dstEntry.name.toString('utf8');
      const src = srcName === '' ? temp : await ctx.resolve(srcName);
      const dst = srcName !== '' && dstName === '' ? temp : await ctx.resolve(dstName);
      if (src === null || dst === null) {
        ctx.warn(`unsafe rename ${srcName} -> ${dstName} in dumpdir: not purging`);
        return false;
      }
      if (!(await renameDirectory(src, dst, ctx))) return false;
    }
  }
  if (temp !== null) {
    // the cycle's stand-in is empty again once every R/T pair ran; GNU tar removes it too
    await rmdir(temp).catch(() => undefined);
  }
  return true;
}

/** latin1 keys compare names byte for byte, whatever their encoding. */
function key(name: Buffer): string {
  return name.toString('latin1');
}

/**
 * purgeDirectory applies a dumpdir to the existing directory `dir` (absolute, verified not to be a symlink
 * by the caller). Nothing happens when `dir` does not exist.
 */
export async function purgeDirectory(dir: string, dumpdir: Buffer, ctx: PurgeContext): Promise<void> {
  let current: Buffer[];
  try {
    current = await readdir(dir, { encoding: 'buffer' });
  } catch {
    return; // missing (it will be created) or not a directory (it will be replaced)
  }
  const entries = parseDumpdir(dumpdir);
  const bad = dumpdirError(entries);
  if (bad) { ctx.warn(`${dir}: ${bad}`); return; }
  if (!(await applyRenames(entries, ctx))) return;

  const listed = new Map<string, string>();
  for (const e of entries) if (e.kind === 'Y' || e.kind === 'N' || e.kind === 'D') listed.set(key(e.name), e.kind);
  const dirBytes = Buffer.from(dir.endsWith('/') ? dir : `${dir}/`, 'utf8');
  for (const name of current) {
    const p = Buffer.concat([dirBytes, name]);
    let isDir: boolean;
    try {
      isDir = (await lstat(p)).isDirectory();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') ctx.warn(`${p.toString()}: Not purging directory: unable to stat`);
      continue;
    }
    const kind = listed.get(key(name));
    if (kind === undefined || (kind === 'D' && !isDir) || (kind === 'Y' && isDir)) {
      try {
        await rm(p, { recursive: true, force: true });
        if (isDir) ctx.removed(p.toString('utf8'));
      } catch (err) {
        ctx.warn(`${p.toString()}: Cannot remove: ${(err as Error).message}`);
      }
    }
  }
}
