/**
 * The sender's reading task (PROTOCOL.md §6.2: a sender must keep reading
 * while it writes): it reads what the receiver sends during the transfer,
 * PLAN, ACK, BYE or ERROR, and hands each to whoever waits for it. A plan
 * is awaited by its batch number, acknowledgements go to a handler as they
 * come, BYE ends the task. When the task fails, every waiter is rejected
 * with the failure, so the writing side stops at its next wait.
 */
import { FerryError } from "../errors.ts";
import { ProtocolError } from "../protocol/errors.ts";
import { FrameType } from "../protocol/frame.ts";
import {
  type Ack,
  type Bye,
  decodeAcks,
  decodeBye,
  decodePlan,
  type Plan,
} from "../protocol/messages.ts";
import {
  decodeListing,
  FINGERPRINT_BYTES,
  FingerprintSet,
  LISTING_INCOMPLETE,
  LISTING_LAST,
  LISTING_MAX_FINGERPRINTS,
} from "../protocol/listing.ts";
import type { Frame } from "../transport/frame_io.ts";
import type { SendErrors } from "./send_errors.ts";

/** A promise with its resolve and reject, as Promise.withResolvers() makes it. */
export type Deferred<T> = PromiseWithResolvers<T>;

/** Promise.withResolvers(), whose rejection is observed where it is awaited, not reported unhandled. */
export function deferred<T>(): Deferred<T> {
  const waiting = Promise.withResolvers<T>();
  waiting.promise.catch(() => {});
  return waiting;
}

/** Where the replies are read from (a FrameReader). */
export interface ReplySource {
  next(): Promise<Frame | null>;
}

/** What a batch waits on: its plan, by batch number. */
export interface Plans {
  /** The plan of `batch`, to be announced now; rejected if the session fails first. */
  expect(batch: number): Promise<Plan>;
}

export interface ReplyHandlers {
  /** A PLAN arrived (before it is handed to the batch that waits for it). */
  planned?(): void;
  /** One Ack, in order; throwing fails the session (an Ack for no file sent). */
  acknowledged(ack: Ack): void;
  /**
   * Puts a failure of the task into words (SendErrors.explain, after telling
   * the receiver of its protocol error); FerryErrors are not passed to it.
   */
  explain(err: unknown): Promise<unknown>;
  /** Closes the connection once the task failed (unblocks a pending write). */
  close(): void;
}

export class ReplyReader implements Plans {
  /** Plans not handed over yet, by batch number. */
  #plans = new Map<number, Deferred<Plan>>();
  #ackSignal = deferred<void>();
  #bye = deferred<Bye>();
  #failure: Error | null = null;
  /** The listing being received (between LIST and the last LISTING), or null. */
  #listing:
    | {
      set: FingerprintSet;
      whole: boolean;
      /** Fingerprints received so far, repeats counted. */
      received: number;
      waiting: Deferred<FingerprintSet | null>;
    }
    | null = null;
  #reading: Promise<void> = Promise.resolve();
  /** Both sides named "sync": the receiver may send NOOP while it works (§5.14). */
  sync = false;

  constructor(
    readonly source: ReplySource,
    readonly errors: SendErrors,
    readonly handlers: ReplyHandlers,
  ) {}

  /** Starts the reading task. */
  start(): void {
    this.#reading = this.#read();
  }

  /** The task: resolves once it has ended, with BYE or a failure (never rejects). */
  get reading(): Promise<void> {
    return this.#reading;
  }

  /** Why the task failed, in the sender's words; null while it has not. */
  get failure(): Error | null {
    return this.#failure;
  }

  expect(batch: number): Promise<Plan> {
    const waiting = deferred<Plan>();
    if (this.#failure) waiting.reject(this.#failure);
    else this.#plans.set(batch, waiting);
    return waiting.promise;
  }

  /** Resolves at the next ACK frame. */
  nextAck(): Promise<void> {
    return this.#ackSignal.promise;
  }

  /** Resolves with BYE. */
  bye(): Promise<Bye> {
    return this.#bye.promise;
  }

  /**
   * The receiver's listing (§5.16), after a LIST was sent: resolves with its fingerprints
   * once the last LISTING came, or null if the receiver's was not whole.
   */
  expectListing(): Promise<FingerprintSet | null> {
    const waiting = deferred<FingerprintSet | null>();
    if (this.#failure) waiting.reject(this.#failure);
    else this.#listing = { set: new FingerprintSet(), whole: true, received: 0, waiting };
    return waiting.promise;
  }

  #listingFrame(payload: Uint8Array): void {
    const listing = this.#listing;
    if (listing === null) {
      throw new ProtocolError("unexpected-frame", "LISTING without a LIST, or after its last");
    }
    const { flags, fingerprints } = decodeListing(payload);
    listing.received += fingerprints.length / FINGERPRINT_BYTES;
    if (listing.received > LISTING_MAX_FINGERPRINTS) {
      throw new ProtocolError("bad-frame", `more than ${LISTING_MAX_FINGERPRINTS} fingerprints`);
    }
    if (listing.whole && !listing.set.addAll(fingerprints)) listing.whole = false;
    if ((flags & LISTING_INCOMPLETE) !== 0) listing.whole = false;
    if ((flags & LISTING_LAST) === 0) return;
    this.#listing = null;
    listing.waiting.resolve(listing.whole ? listing.set : null);
  }

  async #read(): Promise<void> {
    try {
      for (;;) {
        const frame = await this.source.next();
        if (frame === null) throw this.errors.closedEarly();
        // Between LIST and the last LISTING only LISTING, NOOP and ERROR may come (§5.16).
        if (
          this.#listing !== null &&
          (frame.type === FrameType.PLAN || frame.type === FrameType.ACK ||
            frame.type === FrameType.BYE)
        ) {
          throw new ProtocolError(
            "unexpected-frame",
            `frame 0x${frame.type.toString(16)} before the listing's last LISTING`,
          );
        }
        switch (frame.type) {
          case FrameType.PLAN: {
            const plan = decodePlan(frame.payload);
            this.handlers.planned?.();
            const waiting = this.#plans.get(plan.batch);
            if (!waiting) throw new ProtocolError("bad-sequence", `unexpected plan ${plan.batch}`);
            this.#plans.delete(plan.batch);
            waiting.resolve(plan);
            break;
          }
          case FrameType.LISTING:
            this.#listingFrame(frame.payload);
            break;
          case FrameType.ACK:
            for (const ack of decodeAcks(frame.payload).acks) this.handlers.acknowledged(ack);
            this.#ackSignal.resolve();
            this.#ackSignal = deferred();
            break;
          case FrameType.BYE:
            this.#bye.resolve(decodeBye(frame.payload));
            return;
          case FrameType.ERROR:
            throw this.errors.stopped(frame.payload);
          case FrameType.NOOP:
            if (this.sync) break; // activity while the receiver compares a file: nothing to do
            throw new ProtocolError("unexpected-frame", "NOOP from a receiver without sync");
          default:
            throw new ProtocolError(
              "unexpected-frame",
              `frame 0x${frame.type.toString(16)} is not expected from a receiver`,
            );
        }
      }
    } catch (err) {
      const failure = err instanceof FerryError ? err : await this.handlers.explain(err);
      this.#failure = failure instanceof Error ? failure : new Error(String(failure));
      for (const waiting of this.#plans.values()) waiting.reject(this.#failure);
      this.#ackSignal.reject(this.#failure);
      this.#bye.reject(this.#failure);
      this.#listing?.waiting.reject(this.#failure);
      this.#listing = null;
      this.handlers.close();
    }
  }
}
