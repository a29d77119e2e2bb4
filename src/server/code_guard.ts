/**
 * Online guessing of the code, slowed down and then refused. Every session
 * that saw the receiver's key share and did not prove the code counts as a
 * failed guess for its address: after `slowAfter` failures within the
 * window, answers to that address are delayed (doubling up to `maxDelayMs`);
 * after `lockAfter` failures it is refused for `lockMs`.
 */

export interface GuardPolicy {
  slowAfter: number;
  lockAfter: number;
  windowMs: number;
  lockMs: number;
  maxDelayMs: number;
}

export const DEFAULT_GUARD: GuardPolicy = {
  slowAfter: 3,
  lockAfter: 10,
  windowMs: 10 * 60_000,
  lockMs: 10 * 60_000,
  maxDelayMs: 5_000,
};

/** Addresses remembered at most; the oldest are forgotten first. */
const MAX_ADDRESSES = 10_000;

interface Record {
  failures: number[];
  lockedUntil: number;
}

export class CodeGuard {
  #addresses = new Map<string, Record>();

  constructor(readonly policy: GuardPolicy = DEFAULT_GUARD, readonly now = () => Date.now()) {}

  #record(address: string): Record {
    let record = this.#addresses.get(address);
    if (!record) {
      if (this.#addresses.size >= MAX_ADDRESSES) {
        this.#addresses.delete(this.#addresses.keys().next().value!);
      }
      record = { failures: [], lockedUntil: 0 };
      this.#addresses.set(address, record);
    }
    const since = this.now() - this.policy.windowMs;
    record.failures = record.failures.filter((t) => t > since);
    return record;
  }

  /** Milliseconds until `address` may try again, or 0 if it may now. */
  lockedFor(address: string): number {
    const record = this.#addresses.get(address);
    return record ? Math.max(0, record.lockedUntil - this.now()) : 0;
  }

  /** How long to wait before answering `address`'s key share. */
  delayFor(address: string): number {
    const extra = this.#record(address).failures.length - this.policy.slowAfter;
    return extra < 0 ? 0 : Math.min(this.policy.maxDelayMs, 1000 * 2 ** extra);
  }

  /** Counts a failed guess; returns the failures in the window and whether it is now locked. */
  fail(address: string): { failures: number; locked: boolean } {
    const record = this.#record(address);
    record.failures.push(this.now());
    const locked = record.failures.length >= this.policy.lockAfter;
    if (locked) {
      record.lockedUntil = this.now() + this.policy.lockMs;
      record.failures = [];
    }
    return { failures: locked ? this.policy.lockAfter : record.failures.length, locked };
  }
}
