/**
 * One-shot timers on `AbortSignal.timeout`, for what a send runs. Deno's
 * global `setTimeout` and `setInterval` are Node's, loaded and compiled on
 * first use: 4–25 ms of a sender's start, on its critical path, where the
 * connect's deadline has already loaded what this needs (docs/PERFORMANCE.md).
 *
 * A cancelled timer only stops its callback: the runtime keeps it until it
 * is due, which keeps a process with nothing else to do alive until then
 * (the CLI ends with `Deno.exit`). A browser without `AbortSignal.timeout`
 * (Safari before 16) gets the global `setTimeout`.
 *
 * `deno test` does not count these timers as leaks, so `liveTimers` counts
 * the ones set and neither due nor cancelled, for tests to check.
 */

let live = 0;

/** Timers set with `after` that have neither run nor been cancelled (tests). */
export function liveTimers(): number {
  return live;
}

/** A timer set with `after`. */
export interface Timer {
  /** Its callback will not run (if it has not already). */
  cancel(): void;
}

/** Runs `fn` once after `ms` milliseconds unless cancelled first. */
export function after(ms: number, fn: () => void): Timer {
  // As setTimeout takes them: a delay that is not a finite number is none.
  const delay = Number.isFinite(ms) ? Math.max(0, ms) : 0;
  let pending = true;
  live++;
  const due = () => {
    if (!pending) return;
    pending = false;
    live--;
    fn();
  };
  if (typeof AbortSignal.timeout === "function") {
    AbortSignal.timeout(delay).addEventListener("abort", due, { once: true });
  } else {
    globalThis.setTimeout(due, delay);
  }
  return {
    cancel() {
      if (!pending) return;
      pending = false;
      live--;
    },
  };
}

/**
 * Runs `fn` every `ms` milliseconds (each time `ms` after the last run ended) until cancelled;
 * `fn` may cancel it.
 */
export function every(ms: number, fn: () => void): Timer {
  let current: Timer | null = null;
  let stopped = false;
  const arm = () => {
    current = after(ms, () => {
      fn();
      if (!stopped) arm();
    });
  };
  arm();
  return {
    cancel() {
      stopped = true;
      current?.cancel();
    },
  };
}

/** Settles after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => after(ms, resolve));
}
