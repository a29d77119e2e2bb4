/**
 * A deadline for a connection: if `touch()` is not called for `ms`, the
 * watchdog fires once (the owner closes the connection, which fails any
 * pending read or write). One timer per connection, checked at a coarse
 * interval, so touching costs nothing on the hot path.
 */
import { after, type Timer } from "./timer.ts";

export class Watchdog {
  #last = performance.now();
  #timer: Timer | null = null;
  #fired = false;
  #stopped = false;
  readonly #interval: number;
  readonly #onExpire: () => void;

  #ms: number;
  /** Holds in force (hold()): the deadline does not run while any is. */
  #holds = 0;

  constructor(ms: number, onExpire: () => void) {
    this.#ms = ms;
    this.#interval = Math.max(10, Math.min(1000, ms / 4));
    this.#onExpire = onExpire;
    this.#arm();
  }

  /** The next check, an interval from now. */
  #arm(): void {
    this.#timer = after(this.#interval, () => {
      if (this.#stopped) return;
      if (this.#holds === 0 && performance.now() - this.#last >= this.#ms) {
        this.#fired = true;
        this.stop();
        this.#onExpire();
        return;
      }
      this.#arm();
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
    this.#stopped = true;
    this.#timer?.cancel();
  }
}
