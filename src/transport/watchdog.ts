/**
 * A deadline for a connection: if `touch()` is not called for `ms`, the
 * watchdog fires once (the owner closes the connection, which fails any
 * pending read or write). One timer per connection, checked at a coarse
 * interval, so touching costs nothing on the hot path.
 */
export class Watchdog {
  #last = performance.now();
  #timer: ReturnType<typeof setInterval>;
  #fired = false;

  #ms: number;

  constructor(ms: number, onExpire: () => void) {
    this.#ms = ms;
    const interval = Math.max(10, Math.min(1000, ms / 4));
    this.#timer = setInterval(() => {
      if (performance.now() - this.#last >= this.#ms) {
        this.#fired = true;
        this.stop();
        onExpire();
      }
    }, interval);
  }

  /** Moves to a new deadline (e.g. from the handshake's to the idle one), counting from now. */
  reset(ms: number): void {
    this.#ms = ms;
    this.touch();
  }

  touch(): void {
    this.#last = performance.now();
  }

  /** Whether it fired. */
  get expired(): boolean {
    return this.#fired;
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}
