/**
 * The V8 flags ferry runs with: in the `serve` and `send` tasks (deno.json),
 * baked into every compiled binary (scripts/compile.ts), and used by the
 * benchmark (scripts/bench/), so all three run the same engine settings.
 *
 * `--optimize-for-size` makes V8 grow its heap more slowly. ferry's live
 * heap stays small (about 15–20 MB on 100,000 files), but with V8's default
 * growth the heap reached 80–90 MB of mostly garbage on that tree, and each
 * process's peak RSS 150–190 MB. With this flag both stay under 90 MiB there,
 * and the 1 GiB and 10,000-file transfers were as fast as without it
 * (docs/PERFORMANCE.md).
 */
export const V8_FLAGS = "--v8-flags=--optimize-for-size";
