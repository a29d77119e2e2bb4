/**
 * The receiver's side of a session's start (PROTOCOL.md §2, §4, §5.2, §5.3): the preambles, the
 * key exchange on the code with the guard against guessing, the switch to the secure channel,
 * then HELLO and WELCOME. What the two sides agree on is the Greeting the rest of the session
 * runs with. The session's deadlines, and abort(), stay the session's: it is told through the
 * hooks, and reads back what it needs to know to answer an abort (`quiet`, `takePreamble`).
 */
import { ProtocolError } from "../protocol/errors.ts";
import { FrameType, type FrameTypeCode } from "../protocol/frame.ts";
import { type Digest, DIGEST_NAMES, isDigestName, loadDigest } from "../protocol/digests.ts";
import {
  decodeError,
  decodeHello,
  encodeJson,
  Feature,
  type Welcome,
} from "../protocol/messages.ts";
import {
  Channel,
  decodePreamble,
  encodePreamble,
  PREAMBLE_BYTES,
  PROTOCOL_VERSION,
} from "../protocol/preamble.ts";
import { isConnectionError } from "../transport/connection_errors.ts";
import type { Frame } from "../transport/frame_io.ts";
import type { FramedLink } from "../transport/framed_link.ts";
import { CODE_EXPECTED, PeerRefused, receiverKeyExchange } from "../transport/channel.ts";
import { nativeDigests } from "../transport/native_digests.ts";
import { loadShortHashes } from "../transport/short_hashes.ts";
import { loadNativeReader } from "../native/native_read.ts";
import type { CodeGuard, GuessAttempt } from "./code_guard.ts";
import { addressGroup } from "./address_group.ts";
import type { ConflictPolicy, Inbox, TransferStart } from "./inbox.ts";
import type { Report } from "./server_events.ts";
import { DEFAULT_PRE_AUTH, type ServerLimits } from "./server_limits.ts";

export const SUPPORTED_FEATURES = [Feature.resume, Feature.sync, Feature.text];

/** What HELLO and WELCOME agreed on: the session runs its files with it. */
export interface Greeting {
  digest: Digest;
  /** Both sides take "resume" (PROTOCOL.md §7). */
  resumable: boolean;
  /** Both sides take "sync": decisions may say `unchanged`, Acks `replaced` (§9.3). */
  sync: boolean;
  /** The transfer HELLO named (resumable senders only), or null. */
  transfer: string | null;
  /** When the transfer this session resumes first started; null for a new one, or none. */
  resumedSince: TransferStart | null;
  /** Both sides take "text": the sender may announce texts (PROTOCOL.md §5.15). */
  text: boolean;
  /** The host name the sender gave in HELLO (raw, bounded), or null. */
  host: string | null;
  /** Both sides take "listing": the sender may LIST before its first batch (PROTOCOL.md §5.16). */
  listing: boolean;
}

export interface HandshakeOptions {
  inbox: Inbox;
  guard: CodeGuard;
  plaintext?: boolean;
  code?: string | null;
  software: string;
  limits: ServerLimits;
  firstFrameMs?: number;
  onAuthenticated?: () => void;
  /** The receiver's conflict policy: "listing" is offered under `update` only. */
  onConflict?: ConflictPolicy;
  /** `serve --ask`: nothing is listed to a sender before the person has decided. */
  ask?: unknown;
}

/** What the handshake needs of its session. */
export interface HandshakeHooks {
  report: Report;
  /** Throws once the session was closed from outside. */
  stopIfClosed(): void;
  /** The sender sent nothing for firstFrameMs: the session closes (a timeout). */
  silent(): void;
  /** Whether abort() ended the session: a guess it cuts off is forgotten, not failed. */
  aborted(): boolean;
  /** Takes HELLO's transfer over: resolves once an older session of it has ended. */
  claim(transfer: string): Promise<void>;
}

export class Handshake {
  /** Whether our preamble went into the writer (by the handshake, or by abort() before it). */
  #preambleSent = false;
  /** From our KEY_SHARE until records start (see `quiet`). */
  #quiet = false;
  /** The sender left when asked for the code, having none (a ferry sender without it). */
  #leftWithoutCode = false;

  /** `host` is the sender's address (for the wrong-code guard); `peer` adds the port. */
  constructor(
    readonly session: number,
    readonly link: FramedLink,
    readonly host: string,
    readonly peer: string,
    readonly opts: HandshakeOptions,
    readonly hooks: HandshakeHooks,
  ) {}

  /**
   * Between our KEY_SHARE and the switch to records the sender reads records while our writer
   * still writes plain frames: an ERROR would read as a bad record there, and the sender would
   * not retry. abort() then closes without a word, which reads as a lost connection, retried.
   */
  get quiet(): boolean {
    return this.#quiet;
  }

  /** The sender left when asked for the code, having none. */
  get leftWithoutCode(): boolean {
    return this.#leftWithoutCode;
  }

  /**
   * Takes the turn to send our preamble: true once, to the handshake or to abort(), whichever
   * comes first (an abort before the sender's preamble was read answers behind a preamble of
   * its own, as a receiver at its limit does: PROTOCOL.md §2).
   */
  takePreamble(): boolean {
    if (this.#preambleSent) return false;
    this.#preambleSent = true;
    return true;
  }

  /**
   * Preamble, channel and HELLO/WELCOME. Null if the peer left before saying anything, or
   * abort() answered it first.
   */
  async run(): Promise<Greeting | null> {
    const { link, opts } = this;
    // A short deadline for the first bytes, well inside the handshake's: a host that opens
    // connections and sends nothing holds its pre-authentication slots only briefly.
    let silent = false;
    const timer = setTimeout(() => {
      silent = true;
      this.hooks.silent();
    }, opts.firstFrameMs ?? DEFAULT_PRE_AUTH.firstFrameMs);
    let raw;
    try {
      raw = await link.reader.readRaw(PREAMBLE_BYTES);
    } finally {
      clearTimeout(timer);
    }
    if (silent) throw new ProtocolError("truncated", "the sender sent nothing");
    if (raw === null) return null;
    // Stopped while it waited: abort() answers, behind a preamble of its own.
    if (!this.takePreamble()) return null;
    const theirs = decodePreamble(raw);
    const plain = theirs.channel === Channel.plain && opts.plaintext === true;
    const ours = encodePreamble({
      version: PROTOCOL_VERSION,
      channel: plain ? Channel.plain : Channel.cpace,
    });
    await link.writer.raw(ours);
    if (theirs.version !== PROTOCOL_VERSION) {
      throw new ProtocolError(
        "unsupported-version",
        `this receiver speaks ferry protocol version ${PROTOCOL_VERSION}, the sender version ${theirs.version}`,
      );
    }
    if (theirs.channel === Channel.plain && !plain) {
      throw new ProtocolError(
        "unsupported-channel",
        "this receiver requires the encrypted channel (it was not started with --plaintext)",
      );
    }
    if (theirs.channel !== Channel.plain && theirs.channel !== Channel.cpace) {
      throw new ProtocolError("unsupported-channel", `unknown channel ${theirs.channel}`);
    }
    if (!plain) await this.#keyExchange(raw, ours);
    opts.onAuthenticated?.();
    return await this.#greet();
  }

  /** HELLO, the transfer it names, and WELCOME. */
  async #greet(): Promise<Greeting> {
    const { link, opts } = this;
    const hello = decodeHello((await expectFrame(link, FrameType.HELLO, "HELLO")).payload);
    const digestName = hello.digests.find(isDigestName);
    if (!digestName) {
      throw new ProtocolError(
        "no-common-digest",
        `no common digest; this receiver has ${DIGEST_NAMES.join(", ")}`,
      );
    }
    const digest = await loadDigest(digestName, nativeDigests());
    const resumable = hello.features.includes(Feature.resume);
    let transfer: string | null = null;
    let resumedSince: TransferStart | null = null;
    if (resumable && hello.transfer !== undefined) {
      transfer = hello.transfer;
      await this.hooks.claim(transfer);
      resumedSince = await opts.inbox.beginTransfer(transfer);
    }
    const { limits } = opts;
    // A listing (§5.16) serves a sync only, and tells the sender what is here: not before the
    // person asked (`--ask`) has decided, which is at the first batch.
    // Only where the C library lists folders by descriptor (listing_walk.ts).
    const listable = opts.onConflict === "update" && opts.ask === undefined &&
      loadNativeReader()?.lists === true;
    const welcome: Welcome = {
      software: opts.software,
      digest: digestName,
      features: listable ? [...SUPPORTED_FEATURES, Feature.listing] : SUPPORTED_FEATURES,
      limits: {
        maxBatchEntries: limits.maxBatchEntries,
        maxFrame: limits.maxMessage,
        maxPathBytes: limits.maxPathBytes,
      },
    };
    await link.writer.frame(FrameType.WELCOME, encodeJson(welcome));
    await link.writer.flush();
    return {
      digest,
      resumable,
      sync: hello.features.includes(Feature.sync),
      transfer,
      resumedSince,
      text: hello.features.includes(Feature.text),
      host: hello.host ?? null,
      listing: listable && hello.features.includes(Feature.listing),
    };
  }

  /**
   * The secure channel: CPace on the code, with the guard against guessing.
   * From the moment our KEY_SHARE goes out the sender can test its code, so
   * the guess is counted (pending) from then, and credited back only when
   * KEY_CONFIRM proves the code: however the session ends otherwise, save by
   * the receiver stopping, it is a failed guess.
   */
  async #keyExchange(senderPreamble: Uint8Array, receiverPreamble: Uint8Array): Promise<void> {
    await loadShortHashes();
    const { link, opts, hooks } = this;
    const { guard } = opts;
    let attempt: GuessAttempt | null = null;
    let shared = false;
    let confirmed = false;
    let keys;
    try {
      keys = await receiverKeyExchange(link.reader, link.writer, {
        senderPreamble,
        receiverPreamble,
        code: opts.code ?? null,
        admit: () => {
          attempt = guard.admit(this.host);
          return Promise.resolve();
        },
        pace: async () => {
          const delay = attempt!.reserve();
          if (delay > 0) await new Promise((r) => setTimeout(r, delay));
          // Closed while it waited (a deadline, stopping): no share goes out, no guess is made.
          hooks.stopIfClosed();
          shared = true;
          this.#quiet = true; // our KEY_SHARE goes out next
        },
        confirmed: () => {
          confirmed = true;
          attempt!.confirm();
        },
      });
    } catch (err) {
      // A session we ended ourselves (shutdown) is no guess: release() below forgets it.
      if (shared && !confirmed && !hooks.aborted()) throw this.#failedGuess(attempt!);
      // Asked for the code (our CHANNEL_OPEN said so), the sender left: ferry's sender does that
      // when it has none (a person is then asked for it, and it connects again).
      if (attempt !== null && !shared && opts.code != null && isConnectionError(err)) {
        this.#leftWithoutCode = true;
      }
      if (err instanceof PeerRefused) {
        // A plain frame, from a sender that proved nothing: its code only, never its text.
        throw new ProtocolError(
          "peer-error",
          err.code === CODE_EXPECTED
            ? "the sender has a code and sends nothing to an open receiver (code-expected)"
            : `the sender stopped before the key exchange (${err.code})`,
        );
      }
      throw err;
    } finally {
      (attempt as GuessAttempt | null)?.release();
    }
    await link.secure(keys);
    this.#quiet = false;
  }

  /** Counts a failed guess, reports it, and says it as the error that ends the session. */
  #failedGuess(attempt: GuessAttempt): ProtocolError {
    const { guard } = this.opts;
    const { failures, locked, globalSlowdown } = attempt.fail();
    const { report } = this.hooks;
    report({ type: "wrong-code", session: this.session, peer: this.peer, failures, locked });
    if (globalSlowdown) {
      const { globalSlowAfter, windowMs, globalDelayMs } = guard.policy;
      report({
        type: "guess-slowdown",
        session: this.session,
        failures: globalSlowAfter,
        windowMinutes: windowMs / 60_000,
        delayMs: globalDelayMs,
      });
    }
    const { lockAfter, windowMs } = guard.policy;
    return new ProtocolError(
      "wrong-code",
      locked
        ? `wrong code from ${this.host}: ${lockedOut(guard, this.host)}`
        : `wrong code from ${this.host} (${failures} of the ${lockAfter} allowed in ${
          windowMs / 60_000
        } minutes)`,
    );
  }
}

/** The next frame, which must be `type` (`name` to people); the sender's ERROR ends the session. */
async function expectFrame(link: FramedLink, type: FrameTypeCode, name: string): Promise<Frame> {
  const frame = await link.reader.next();
  if (frame === null) throw new ProtocolError("truncated", `connection closed before ${name}`);
  if (frame.type === FrameType.ERROR) peerError(frame.payload);
  if (frame.type !== type) {
    throw new ProtocolError(
      "unexpected-frame",
      `expected ${name}, got frame 0x${frame.type.toString(16)}`,
    );
  }
  return frame;
}

/** The sender's ERROR, as the error that ends the session. */
export function peerError(payload: Uint8Array): never {
  const e = decodeError(payload);
  throw new ProtocolError("peer-error", `the sender stopped: ${e.message} (${e.code})`);
}

/** What the lockout of `host`'s address group is: until when, or why it is refused already. */
export function lockedOut(guard: CodeGuard, host: string): string {
  const { lockAfter, windowMs } = guard.policy;
  const group = addressGroup(host);
  const left = guard.lockedFor(host);
  if (left > 0) {
    const minutes = Math.ceil(left / 60_000);
    return `${group} is locked out after ${lockAfter} wrong codes until ${
      clockTime(guard.now() + left)
    } (${minutes} minute${minutes === 1 ? "" : "s"})`;
  }
  return `${group} has used its ${lockAfter} code guesses of ${windowMs / 60_000} minutes ` +
    "(some still being checked): refused until they are decided";
}

/** `14:05`: the local time of day `ms` (since the epoch) falls at. */
function clockTime(ms: number): string {
  const at = new Date(ms);
  return `${String(at.getHours()).padStart(2, "0")}:${String(at.getMinutes()).padStart(2, "0")}`;
}
