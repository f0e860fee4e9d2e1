/**
 * NODE_FLAGS: the V8 flags every floe process starts with (bin/floe.js's shebang, `npm start`, and the
 * processes floe itself spawns: the scheduler daemon, agent jobs, the bench). They take effect only on
 * the node command line: V8 sizes its heap when the process starts.
 *
 * --max-semi-space-size=4: the young generation's semi-spaces stop at 4 MiB instead of 16. The data path
 * keeps its bytes in buffers outside the V8 heap; what the heap holds is small and short-lived, and the
 * bigger young generation only held more of it. Measured on 1 GiB (zstd, encrypted): restore peak RSS
 * 246-255 -> 234-237 MiB; backup and restore times unchanged.
 */
export const NODE_FLAGS: readonly string[] = ['--max-semi-space-size=4'];
