/**
 * A full garbage collection once the server falls idle. A session of many
 * files leaves garbage that V8 would otherwise collect in steps while the
 * next session runs, in its handshake (measured: its WELCOME 5–10 ms later
 * after a session of 10,000 files). Collected while nobody waits, shortly
 * after the last session has ended, it costs no session anything.
 *
 * Only a session that proved the code makes a collection owed: connections
 * that never do cannot make the server collect again and again.
 *
 * V8 offers the call only with `--expose-gc` (serve's V8 flags,
 * src/cli/v8_flags.ts); without it this does nothing.
 */

/** How long the server must have been idle before it collects. */
export const IDLE_COLLECT_MS = 50;

/** V8's full collection where `--expose-gc` exposed it, else null. */
export function exposedGc(): (() => void) | null {
  const gc = (globalThis as { gc?: unknown }).gc;
  return typeof gc === "function" ? () => gc() : null;
}

export class IdleCollector {
  #timer: ReturnType<typeof setTimeout> | null = null;
  /** A session that proved the code has ended since the last collection. */
  #owed = false;
  #stopped = false;

  constructor(
    readonly collect: (() => void) | null = exposedGc(),
    readonly delayMs: number = IDLE_COLLECT_MS,
  ) {}

  /** A session that proved the code has ended: its garbage is worth a collection. */
  owe(): void {
    this.#owed = true;
  }

  /** The server has no session left: collect what is owed once it has stayed so for a moment. */
  idle(): void {
    const collect = this.collect;
    if (collect === null || !this.#owed || this.#stopped || this.#timer !== null) return;
    const timer = setTimeout(() => {
      this.#timer = null;
      this.#owed = false;
      collect();
    }, this.delayMs);
    // It never keeps a stopping server's process alive.
    Deno.unrefTimer(Number(timer));
    this.#timer = timer;
  }

  /** A session has started: no collection while it runs (what is owed stays owed). */
  cancel(): void {
    if (this.#timer === null) return;
    clearTimeout(this.#timer);
    this.#timer = null;
  }

  /** The server stops: no collection from now on. */
  stop(): void {
    this.#stopped = true;
    this.cancel();
  }
}
