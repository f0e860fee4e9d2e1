/**
 * How a floe process starts: bin/floe.js's shebang, `npm start`, and the floe processes floe spawns (the
 * scheduler daemon, agent jobs, the bench's runs) all use these. Both only work from the start: V8 sizes
 * its heap, and glibc reads its tuning, when the process starts.
 *
 * NODE_FLAGS: --max-semi-space-size=4. The young generation's semi-spaces stop at 4 MiB instead of 16.
 * The data path keeps its bytes in buffers outside the V8 heap; what the heap holds is small and
 * short-lived, and the bigger young generation only held more of it. Measured on 1 GiB (zstd,
 * encrypted): restore peak RSS 246-255 -> 231-237 MiB; backup and restore times unchanged.
 *
 * MALLOC_ENV: MALLOC_MMAP_THRESHOLD_ = 3 MiB. glibc raises its mmap threshold to 32 MiB after the first
 * big free; from then on the 4 MiB buffers of the data path (storage reads, decrypted pieces, rsync
 * windows) came from its arenas, which keep freed memory. Fixed at 3 MiB, those are mapped and returned
 * on free; the 2 MiB compression blocks stay in the arenas (mapping each of them cost 0.7 s of system
 * time per GiB). Measured on 1 GiB, zstd+enc: restore 236-243 -> 217-219 MiB, backup 186-210 -> 175-176
 * MiB, same times.
 *
 * MALLOC_TRIM_THRESHOLD_ = 16 MiB. glibc gave the free top of a heap back to the system once it passed
 * 128 KiB, so the next 2 MiB block (a compressed block, node:crypto's output buffer, which it also zero
 * fills) was faulted in again, page by page: 150-190k minor faults per GiB backed up. Keeping up to 16 MiB
 * per heap, measured on 1 GiB, alternating runs: zstd+enc backup 2.82-2.88 -> 2.70-2.72 s (faults 175k ->
 * 46k, system time 0.8-0.9 -> 0.6-0.7 s), gzip+enc 10.60-10.75 -> 10.56-10.59 s; none backup, restores
 * and level 1 unchanged. Peak RSS (GNU time's maximum resident size) rose by 13-20 MiB: zstd+enc backup
 * 163-182 -> 182-195 MiB, zstd+enc restore 201 -> 214-216 MiB.
 *
 * FLOE_TUNED marks the settings as floe's own: bin/floe.js removes them from its environment, so the
 * commands floe runs (`floe exec`, compressors) do not inherit them.
 */
export const NODE_FLAGS: readonly string[] = ['--max-semi-space-size=4'];

export const MALLOC_ENV: Readonly<Record<string, string>> = {
  MALLOC_MMAP_THRESHOLD_: String(3 << 20), MALLOC_TRIM_THRESHOLD_: String(16 << 20), FLOE_TUNED: '1',
};

/** floeEnv is the environment for a floe process that floe starts. */
export function floeEnv(base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  return { ...base, ...MALLOC_ENV };
}
