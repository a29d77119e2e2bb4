/**
 * Online guessing of the code, slowed down and then refused, per address
 * group (an IPv4 address or an IPv6 /64, address_group.ts) and overall.
 *
 * A guess is a key share the receiver sends: from it the sender can test
 * one code. It counts as pending from the moment the share is about to go
 * out (`reserve`) and stays counted unless the sender then proves the code
 * (`confirm`) or the session ends for a reason that is not a guess (the
 * receiver stopping: `release`). Pending guesses count toward the slow-down
 * and the lockout at once, so guesses sent in parallel cannot all be
 * answered before the first of them is judged: a group is sent at most
 * `lockAfter` key shares per window, whatever its concurrency. After
 * `slowAfter` failed or pending guesses within the window its key shares
 * are delayed (doubling up to `maxDelayMs`); after `lockAfter` failures it
 * is refused for `lockMs`. A group may run `maxConcurrent` key exchanges at
 * once. More than `globalSlowAfter` failures within the window across all
 * groups delay every key share by `globalDelayMs` more (within
 * `maxDelayMs`): many addresses guessing together are slowed down too.
 *
 * Memory is bounded: at most `maxAddresses` groups are remembered. A full
 * table forgets the group whose last failure is oldest among those that are
 * neither locked nor in a key exchange; when every group is, new groups are
 * refused ("busy") rather than a lock forgotten.
 */
import { ProtocolError } from "../protocol/errors.ts";
import { addressGroup } from "./address_group.ts";

export interface GuardPolicy {
  slowAfter: number;
  lockAfter: number;
  windowMs: number;
  lockMs: number;
  maxDelayMs: number;
  /** Key exchanges under way at once per group; more are refused "busy". */
  maxConcurrent?: number;
  /** Failures within the window across all groups beyond which every key share is delayed. */
  globalSlowAfter?: number;
  /** That delay, added to the group's own (within maxDelayMs). */
  globalDelayMs?: number;
  /** Groups remembered at most. */
  maxAddresses?: number;
}

export const DEFAULT_GUARD: Required<GuardPolicy> = {
  slowAfter: 3,
  lockAfter: 10,
  windowMs: 10 * 60_000,
  lockMs: 10 * 60_000,
  maxDelayMs: 5_000,
  maxConcurrent: 2,
  globalSlowAfter: 100,
  globalDelayMs: 2_000,
  maxAddresses: 10_000,
};

/** What counting a failed guess did. */
export interface FailResult {
  /** The group's failures in the window (lockAfter when this one locked it). */
  failures: number;
  /** This failure locked the group out. */
  locked: boolean;
  /** This failure started the global slow-down (reported once per window). */
  globalSlowdown: boolean;
}

/** One key exchange of one sender, from its CHANNEL_OPEN to its end. */
export interface GuessAttempt {
  /** The sender's address group, as the guard counts it. */
  readonly group: string;
  /**
   * Counts the key share about to be sent as a pending guess; returns how
   * long to wait before sending it. Throws "locked-out" when the group's
   * budget is spent (by failures and pending guesses).
   */
  reserve(): number;
  /** The sender proved the code: the pending guess is credited back. */
  confirm(): void;
  /** The sender saw our key share and did not prove the code. */
  fail(): FailResult;
  /** The key exchange is over: frees its slot, and a guess still pending without counting it. */
  release(): void;
}

interface Entry {
  /** Times of failed guesses within the window, oldest first (fewer than lockAfter). */
  failures: number[];
  /** Key shares sent whose outcome is not known yet. */
  pending: number;
  /** Key exchanges under way. */
  active: number;
  lockedUntil: number;
}

export class CodeGuard {
  readonly policy: Required<GuardPolicy>;
  /** By group, in the order of their last failure (or first sight), oldest first. */
  #entries = new Map<string, Entry>();
  /** The latest globalSlowAfter + 1 failure times of all groups, oldest first. */
  #recent: number[] = [];
  #globalReportedAt = -Infinity;

  constructor(policy: GuardPolicy = DEFAULT_GUARD, readonly now = () => Date.now()) {
    this.policy = { ...DEFAULT_GUARD, ...policy };
  }

  /**
   * A sender of `host` opened a key exchange. Throws ProtocolError
   * "locked-out" (its group is locked or has spent its guesses) or "busy"
   * (too many key exchanges of its group at once, or the table is full of
   * groups that must be kept).
   */
  admit(host: string): GuessAttempt {
    const group = addressGroup(host);
    const entry = this.#current(group) ?? this.#create(group);
    if (entry === null) {
      throw new ProtocolError(
        "busy",
        `the receiver keeps ${this.policy.maxAddresses} addresses locked out or in their ` +
          "handshake; try again later",
      );
    }
    this.#refuseIfSpent(group, entry);
    if (entry.active >= this.policy.maxConcurrent) {
      throw new ProtocolError(
        "busy",
        `${entry.active} key exchanges from ${group} are under way, the most at once; ` +
          "try again shortly",
      );
    }
    entry.active++;
    let reserved = false;
    let released = false;
    return {
      group,
      reserve: () => {
        if (released || reserved) throw new Error("CodeGuard: reserve() out of turn");
        this.#refuseIfSpent(group, entry);
        const delay = this.#delay(entry);
        entry.pending++;
        reserved = true;
        return delay;
      },
      confirm: () => {
        if (!reserved) return;
        reserved = false;
        entry.pending--;
      },
      fail: () => {
        // Counted even if never reserved: whoever calls this saw the sender fail the code.
        if (reserved) entry.pending--;
        reserved = false;
        return this.#fail(group, entry);
      },
      release: () => {
        if (released) return;
        released = true;
        if (reserved) entry.pending--;
        reserved = false;
        entry.active--;
        this.#forgetIfIdle(group, entry);
      },
    };
  }

  /** Milliseconds until `host`'s group may try again, or 0 if it may now. */
  lockedFor(host: string): number {
    const entry = this.#current(addressGroup(host));
    return entry ? Math.max(0, entry.lockedUntil - this.now()) : 0;
  }

  /** How long the next key share to `host` would wait (its group's guesses, and the global slow-down). */
  delayFor(host: string): number {
    return this.#delay(this.#current(addressGroup(host)));
  }

  /** Counts a failed guess of `host` outside an attempt: its group's failures, and whether it is now locked. */
  fail(host: string): { failures: number; locked: boolean } {
    const group = addressGroup(host);
    const { failures, locked } = this.#fail(group, this.#current(group) ?? this.#create(group));
    return { failures, locked };
  }

  /** Whether more than globalSlowAfter failures fell within the window. */
  get globalSlowdown(): boolean {
    const { globalSlowAfter, windowMs } = this.policy;
    const oldest = this.#recent[0];
    return this.#recent.length > globalSlowAfter && oldest !== undefined &&
      oldest > this.now() - windowMs;
  }

  /** The group's entry with what has expired dropped, or undefined. */
  #current(group: string): Entry | undefined {
    const entry = this.#entries.get(group);
    if (entry === undefined) return undefined;
    const now = this.now();
    if (entry.lockedUntil <= now) entry.lockedUntil = 0;
    const since = now - this.policy.windowMs;
    let expired = 0;
    while (expired < entry.failures.length && entry.failures[expired]! <= since) expired++;
    if (expired > 0) entry.failures.splice(0, expired);
    return entry;
  }

  /** A new entry; when the table is full, the oldest that may be forgotten goes. Null if none may. */
  #create(group: string): Entry | null {
    if (this.#entries.size >= this.policy.maxAddresses) {
      let victim: string | null = null;
      for (const [name] of this.#entries) {
        const entry = this.#current(name)!;
        if (entry.lockedUntil === 0 && entry.pending === 0 && entry.active === 0) {
          victim = name;
          break;
        }
      }
      if (victim === null) return null;
      this.#entries.delete(victim);
    }
    const entry: Entry = { failures: [], pending: 0, active: 0, lockedUntil: 0 };
    this.#entries.set(group, entry);
    return entry;
  }

  /** Drops an entry that has nothing left to remember. */
  #forgetIfIdle(group: string, entry: Entry): void {
    this.#current(group);
    if (
      entry.failures.length === 0 && entry.pending === 0 && entry.active === 0 &&
      entry.lockedUntil === 0 && this.#entries.get(group) === entry
    ) {
      this.#entries.delete(group);
    }
  }

  #refuseIfSpent(group: string, entry: Entry): void {
    const wait = entry.lockedUntil === 0 ? 0 : entry.lockedUntil - this.now();
    if (wait > 0) {
      throw new ProtocolError(
        "locked-out",
        `too many wrong codes from ${group}; try again in ${Math.ceil(wait / 60_000)} min`,
      );
    }
    if (entry.failures.length + entry.pending >= this.policy.lockAfter) {
      // The rest of the budget is in key exchanges still under way: they decide the lockout.
      throw new ProtocolError(
        "locked-out",
        `too many wrong codes from ${group}; try again later`,
      );
    }
  }

  #delay(entry: Entry | undefined): number {
    const { slowAfter, maxDelayMs, globalDelayMs } = this.policy;
    const guesses = entry === undefined ? 0 : entry.failures.length + entry.pending;
    const extra = guesses - slowAfter;
    const own = extra < 0 ? 0 : 1000 * 2 ** extra;
    return Math.min(maxDelayMs, own + (this.globalSlowdown ? globalDelayMs : 0));
  }

  #fail(group: string, entry: Entry | null): FailResult {
    const now = this.now();
    this.#recent.push(now);
    if (this.#recent.length > this.policy.globalSlowAfter + 1) this.#recent.shift();
    let globalSlowdown = false;
    if (this.globalSlowdown && now - this.#globalReportedAt >= this.policy.windowMs) {
      this.#globalReportedAt = now;
      globalSlowdown = true;
    }
    // A table full of locked groups: the failure still counts toward the global budget.
    if (entry === null) return { failures: 0, locked: false, globalSlowdown };
    entry.failures.push(now);
    // Keep the order of last failures: a full table forgets the group that failed longest ago.
    if (this.#entries.get(group) === entry) {
      this.#entries.delete(group);
      this.#entries.set(group, entry);
    }
    const locked = entry.failures.length >= this.policy.lockAfter;
    if (locked) {
      entry.lockedUntil = now + this.policy.lockMs;
      entry.failures = [];
    }
    return {
      failures: locked ? this.policy.lockAfter : entry.failures.length,
      locked,
      globalSlowdown,
    };
  }
}
