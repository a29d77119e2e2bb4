/**
 * The V8 flags ferry runs with: in the `serve` and `send` tasks (deno.json),
 * in the installed `ferry` (scripts/install.ts), baked into every compiled
 * binary (scripts/compile.ts), and used by the benchmark (scripts/bench/),
 * so all of them run the same engine settings.
 *
 * `--optimize-for-size` makes V8 grow its heap more slowly. ferry's live
 * heap stays small (about 15–20 MB on 100,000 files), but with V8's default
 * growth the heap reached 80–90 MB of mostly garbage on that tree, and each
 * process's peak RSS 150–190 MB. With this flag both stay under 90 MiB there,
 * and the 1 GiB and 10,000-file transfers were as fast as without it
 * (docs/PERFORMANCE.md).
 *
 * `--expose-gc` lets a server collect its garbage when it falls idle, not
 * during the next session's handshake (src/server/idle_collect.ts). Nothing
 * else calls it.
 *
 * `--invocation-count-for-turbofan=30000` (V8's default: 3,000) makes
 * `serve` call TurboFan in ten times later, so that a server's first
 * sessions do not run beside TurboFan compiling their per-file code on the
 * core the sender needs. A server that keeps receiving pays for those
 * compiles a few sessions on instead, once; a `serve` started for a
 * transfer or two, the common case, gains (docs/PERFORMANCE.md).
 *
 * `send` runs without TurboFan, V8's optimizing compiler of last resort (its
 * Maglev and baseline tiers stay), and has no use for `--expose-gc`. A send
 * is a short process: its code runs cold, and TurboFan's compiles took CPU
 * that the receiver on the same machine wanted, while they finished too late
 * to pay back. A re-sync of
 * 10,000 files took about 10% less time without them, and the 1 GiB and
 * 10,000-file sends as long (docs/PERFORMANCE.md). `serve` keeps TurboFan: it
 * runs for long and its code stays warm. A compiled binary is one program for
 * both, so it carries serve's flags.
 */
export const V8_FLAGS =
  "--v8-flags=--optimize-for-size,--expose-gc,--invocation-count-for-turbofan=30000";

/** `send`'s V8 flags (see above). */
export const SEND_V8_FLAGS = "--v8-flags=--optimize-for-size,--no-turbofan";

/** The V8 flags for ferry's subcommand `command` (its first argument). */
export function v8FlagsFor(command: string | undefined): string {
  return command === "send" ? SEND_V8_FLAGS : V8_FLAGS;
}
