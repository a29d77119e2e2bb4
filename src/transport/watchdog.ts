/**
 * A deadline for a connection: if `touch()` is not called for `ms`, the
 * watchdog fires once (the owner closes the connection, which fails any
 * pending read or write). One timer per connection, checked at a coarse
 * interval, so touching costs nothing on the hot path.
 */
import { every, type Timer } from "./timer.ts";

export class Watchdog {
  #last = performance.now();
  readonly #timer: Timer;
  #fired = false;

  #ms: number;
  /** Holds in force (hold()): the deadline does not run while any is. */
  #holds = 0;

  constructor(ms: number, onExpire: () => void) {
    this.#ms = ms;
    const interval = Math.max(10, Math.min(1000, ms / 4));
    this.#timer = every(interval, () => {
      if (this.#holds === 0 && performance.now() - this.#last >= this.#ms) {
        this.#fired = true;
        this.stop();
        onExpire();
      }
    });
  }

  /** Moves to a new deadline (e.g. from the handshake's to the idle one), counting from now. */
  reset(ms: number): void {
    this.#ms = ms;
    this.touch();
  }

  /**
   * Stops the deadline from running (while the owner waits on something of its own, such as a
   * person deciding, with its own bound); the returned call releases the hold and restarts the
   * deadline from then.
   */
  hold(): () => void {
    this.#holds++;
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      this.#holds--;
      this.touch();
    };
  }

  touch(): void {
    this.#last = performance.now();
  }

  /** Whether it fired. */
  get expired(): boolean {
    return this.#fired;
  }

  stop(): void {
    this.#timer.cancel();
  }
}
