/**
 * Reconnecting after a failed session: which failures another connection can
 * fix, decided by their class (src/errors.ts), and how long to wait before it
 * (a first delay, doubling up to 30 s). The clock is a parameter, so the
 * policy can be tested without waiting.
 */
import { sleep } from "../transport/timer.ts";
import { ConnectFailed, ConnectionLost } from "../errors.ts";

/** The longest wait between two connections. */
export const MAX_RETRY_DELAY_MS = 30_000;

/** The first wait when none is given (PROTOCOL.md §6.4: 1 s, doubling to 30 s). */
export const FIRST_RETRY_DELAY_MS = 1000;

/**
 * Whether the failure of connection number `attempt` is worth another one: a
 * session that was lost (dropped, silent, a busy or restarting receiver)
 * always; a failed connection only after the first (a first one that fails is
 * reported at once, later ones may be a restarting receiver).
 */
export function worthRetrying(err: unknown, attempt: number): boolean {
  return err instanceof ConnectionLost || (attempt > 1 && err instanceof ConnectFailed);
}

export interface ReconnectOptions {
  /** Reconnections allowed after the first connection. */
  retries: number;
  /** The first wait; it doubles after each, up to MAX_RETRY_DELAY_MS. */
  firstDelayMs?: number | undefined;
  /** Told before each wait, with the failure's message. */
  onRetry(attempt: number, delayMs: number, reason: string): void;
  /** Waits `ms` (a fake clock in tests). */
  sleep?: (ms: number) => Promise<void>;
}

function sleepFor(ms: number): Promise<void> {
  return sleep(ms);
}

/**
 * Runs `session(attempt)` (attempts count from 1) until it returns, or fails
 * in a way `worthRetrying` rules out, or the retries run out; then rethrows
 * its last failure.
 */
export async function withReconnects<T>(
  opts: ReconnectOptions,
  session: (attempt: number) => Promise<T>,
): Promise<T> {
  const sleep = opts.sleep ?? sleepFor;
  let delay = opts.firstDelayMs ?? FIRST_RETRY_DELAY_MS;
  for (let attempt = 1;; attempt++) {
    try {
      return await session(attempt);
    } catch (err) {
      if (!worthRetrying(err, attempt) || attempt > opts.retries) throw err;
      opts.onRetry(attempt, delay, (err as Error).message);
      await sleep(delay);
      delay = Math.min(delay * 2, MAX_RETRY_DELAY_MS);
    }
  }
}
