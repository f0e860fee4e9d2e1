/**
 * withTmpfs: a small file system of its own for a test (a full disk, a mount point), mounted and removed
 * around the test's body. Needs root; where it cannot mount, the test is skipped with the reason.
 */
import { execFileSync } from 'node:child_process';
import { isRoot } from './tree.js';

/**
 * withTmpfs mounts a tmpfs (of `size`, e.g. "3m", if given) at the existing directory `dir`, runs `fn`
 * and unmounts it. Without root, or where mount fails, it logs why `what` is skipped and returns false
 * without running `fn`.
 */
export async function withTmpfs(dir: string, o: { what: string; size?: string }, fn: () => Promise<void>): Promise<boolean> {
  if (!isRoot) {
    console.log(`  skip: ${o.what} needs root (mount -t tmpfs)`);
    return false;
  }
  try {
    execFileSync('mount', ['-t', 'tmpfs', ...(o.size ? ['-o', `size=${o.size}`] : []), 'tmpfs', dir], { stdio: 'pipe' });
  } catch (err) {
    console.log(`  skip: ${o.what}: cannot mount a tmpfs here: ${String((err as Error).message).split('\n')[0]}`);
    return false;
  }
  try {
    await fn();
  } finally {
    execFileSync('umount', [dir]);
  }
  return true;
}
