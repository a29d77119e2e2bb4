/**
 * A receiver may hold a session's first PLAN while a person decides (`serve --ask`, PROTOCOL.md
 * §6.5). Until it comes the sender allows that much more silence, and no more; if the wait goes
 * on it says why nothing moves, once. The CLI's session and the browser page's both use it.
 */
import { MAX_FIRST_PLAN_DELAY_MS } from "../protocol/limits.ts";
import { after, type Timer } from "../transport/timer.ts";
import type { Watchdog } from "../transport/watchdog.ts";
import type { SendErrors } from "./send_errors.ts";
import type { SendEvent } from "./send_types.ts";

/** How long the sender waits for the first PLAN before it says it is waiting for an answer. */
export const WAIT_NOTE_MS = 3000;

export class FirstPlanWait {
  #planned = false;
  #note: Timer;

  /** Starts the longer wait now; a warning goes to `emit` once if no PLAN came in WAIT_NOTE_MS. */
  constructor(
    readonly errors: SendErrors,
    readonly watchdog: Watchdog,
    readonly idleTimeoutMs: number,
    emit: (event: SendEvent) => void,
  ) {
    errors.idleTimeoutMs = idleTimeoutMs + MAX_FIRST_PLAN_DELAY_MS;
    watchdog.reset(errors.idleTimeoutMs);
    this.#note = after(WAIT_NOTE_MS, () => {
      if (this.#planned) return;
      const message = `waiting for ${errors.where} to accept (it may be asking the person there)`;
      emit({ type: "warning", message });
    });
  }

  /** The first PLAN came: back to the usual timeout. */
  planned(): void {
    if (this.#planned) return;
    this.#planned = true;
    this.#note.cancel();
    this.errors.idleTimeoutMs = this.idleTimeoutMs;
    this.watchdog.reset(this.idleTimeoutMs);
  }

  /** The session ends: no note any more. */
  stop(): void {
    this.#note.cancel();
  }
}
