/**
 * One-shot timers on `AbortSignal.timeout`, for what a send runs. Deno's
 * global `setTimeout` and `setInterval` are Node's, loaded and compiled on
 * first use: 4–25 ms of a sender's start, on its critical path, where the
 * connect's deadline has already loaded what this needs (docs/PERFORMANCE.md).
 *
 * A cancelled timer only stops its callback: the runtime keeps it until it
 * is due, which keeps a process with nothing else to do alive until then
 * (the CLI ends with `Deno.exit`). Browsers have `AbortSignal.timeout` too.
 */

/** A timer set with `after`. */
export interface Timer {
  /** Its callback will not run (if it has not already). */
  cancel(): void;
}

/** Runs `fn` once after `ms` milliseconds unless cancelled first. */
export function after(ms: number, fn: () => void): Timer {
  let live = true;
  AbortSignal.timeout(Math.max(0, ms)).addEventListener("abort", () => {
    if (!live) return;
    live = false;
    fn();
  }, { once: true });
  return {
    cancel() {
      live = false;
    },
  };
}

/** Settles after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => after(ms, resolve));
}
