/**
 * The secure channel's handshake (channel 1 of the preamble), run in plain
 * frames right after the preambles:
 *
 *   sender                                    receiver
 *   CHANNEL_OPEN  nonce_s (16)          -->
 *                                       <--   CHANNEL_OPEN  mode (1) | nonce_r (16)
 *   KEY_SHARE     Ya (32) | ADa         -->         ADa = "ferry/1 sender " + offered suites
 *                                       <--   KEY_SHARE     Yb (32) | tag_r (32) | ADb
 *                                                           ADb = "ferry/1 receiver " + chosen suite
 *   KEY_CONFIRM   tag_s (32)            -->
 *   ...records both ways (record_layer.ts), the frames inside them
 *
 * CPace (cpace.ts) runs on the code; both preambles and the mode are bound
 * into its channel identifier, both nonces form its session id. The record
 * suite is negotiated in the associated data: the sender lists the suites it
 * runs fast, the receiver picks the first of its own list the sender offered.
 * Both ADs enter CPace's transcript, so a changed offer or choice makes the
 * keys differ. Each side proves it derived the same keys (key_schedule.ts)
 * before any record flows, so a wrong code (or a tampered handshake) fails
 * here, on both sides, before anything is sent.
 */
import { concatBytes } from "../protocol/bytes.ts";
import { ProtocolError } from "../protocol/errors.ts";
import { FrameType, type FrameTypeCode } from "../protocol/frame.ts";
import { Channel } from "../protocol/preamble.ts";
import { decodeError, encodeJson } from "../protocol/messages.ts";
import {
  cpaceAbandon,
  CpaceError,
  cpaceFinish,
  type CpaceRole,
  cpaceStart,
  isValidShare,
  lvCat,
} from "./cpace.ts";
import type { Frame, FrameReader, FrameWriter } from "./frame_io.ts";
import {
  deriveSessionKeys,
  ownConfirmation,
  type SessionKeys,
  trafficKeys,
  verifyPeerConfirmation,
} from "./key_schedule.ts";
import { RecordOpener, RecordSealer } from "./record_layer.ts";
import type { Ristretto255 } from "./ristretto255.ts";
import { loadRistretto255 } from "./ristretto255_load.ts";
import { defaultAead, fastSuites, isSuite, type Suite } from "./aead.ts";

/** What the receiver asks of senders, in its CHANNEL_OPEN. */
export const ChannelMode = {
  /** Senders must know the receiver's code. */
  code: 0,
  /** `serve --open`: anyone; the key exchange runs on the empty code (encryption, no authentication). */
  open: 1,
} as const;

const NONCE_BYTES = 16;
const SHARE_BYTES = 32;
const TAG_BYTES = 32;
const encoder = new TextEncoder();
const AD_SENDER = "ferry/1 sender";
const AD_RECEIVER = "ferry/1 receiver";
/** The longest AD either side accepts (PROTOCOL.md §4.1). */
const MAX_AD_BYTES = 96;
const CI_LABEL = encoder.encode("ferry/1 ci");
/** Where the preamble carries its channel (PROTOCOL.md §2). */
const CHANNEL_BYTE = 6;

/** The code did not match: the key confirmation failed. */
export class WrongCode extends Error {
  constructor(message: string) {
    super(message);
    this.name = "WrongCode";
  }
}

/** The receiver needs a code and the sender has none. */
export class CodeRequired extends Error {
  constructor() {
    super("the receiver needs a code");
    this.name = "CodeRequired";
  }
}

/**
 * The receiver answered in open mode to a sender that has a code. The sender
 * never runs the key exchange then: an open receiver proves nothing, and
 * whoever answers can claim to be open (a spoofed discovery answer, a
 * mistyped host, a man in the middle).
 */
export class ReceiverOpen extends Error {
  constructor() {
    super("the receiver asks for no code");
    this.name = "ReceiverOpen";
  }
}

/** What a sender with a code tells an open receiver before it closes (PROTOCOL.md §4.1). */
export const CODE_EXPECTED = "code-expected";

/** An ERROR frame the peer sent during the handshake. */
export class PeerRefused extends Error {
  constructor(readonly code: string, message: string) {
    super(message);
    this.name = "PeerRefused";
  }
}

export interface ChannelKeys {
  sealer: RecordSealer;
  opener: RecordOpener;
  mode: number;
  /** The record suite both sides use. */
  suite: Suite;
}

/** ADa: the sender's label, then the suites it offers, best first. */
export function senderAd(offer: readonly Suite[]): Uint8Array {
  return encoder.encode(`${AD_SENDER} ${offer.join(",")}`);
}

/** ADb: the receiver's label, then the suite it chose. */
export function receiverAd(choice: Suite): Uint8Array {
  return encoder.encode(`${AD_RECEIVER} ${choice}`);
}

/** Printable ASCII, at most MAX_AD_BYTES: what an AD may hold; anything else reads as "". */
function adText(ad: Uint8Array): string {
  if (ad.length > MAX_AD_BYTES || ad.some((b) => b < 0x20 || b > 0x7e)) return "";
  return String.fromCharCode(...ad);
}

/** A suite name in an offer (PROTOCOL.md §4.1): lowercase letters, digits and "-". */
const SUITE_NAME = /^[a-z0-9-]+$/;

/**
 * The suites a sender's ADa offers, in its order, unknown names left out.
 * Anything but ferry's label and a list as PROTOCOL.md §4.1 has it (names of
 * `a`–`z`, `0`–`9` and `-`, separated by single commas, none empty, none
 * twice, no spaces) is refused with bad-key-share, as is the bare label (a
 * ferry from before the negotiation, whose keys differ).
 */
export function parseOffer(ad: Uint8Array): Suite[] {
  const text = adText(ad);
  if (text === AD_SENDER) {
    throw new ProtocolError(
      "bad-key-share",
      "the sender's ferry is older than this one (it names no cipher); use the same version on both sides",
    );
  }
  if (!text.startsWith(`${AD_SENDER} `)) {
    throw new ProtocolError("bad-key-share", "the sender's associated data is not ferry's");
  }
  const names = text.slice(AD_SENDER.length + 1).split(",");
  if (!names.every((name) => SUITE_NAME.test(name)) || new Set(names).size !== names.length) {
    throw new ProtocolError(
      "bad-key-share",
      "the sender's suite list is malformed (an empty, repeated or ill-formed name)",
    );
  }
  return names.filter(isSuite);
}

/**
 * The suite a receiver's ADb chose; it must be one we offered. Anything else
 * (the bare label is a ferry from before the negotiation): bad-key-share.
 */
export function parseChoice(ad: Uint8Array, offer: readonly Suite[]): Suite {
  const text = adText(ad);
  if (text === AD_RECEIVER) {
    throw new ProtocolError(
      "bad-key-share",
      "the receiver's ferry is older than this one (it names no cipher); use the same version on both sides",
    );
  }
  const choice = text.startsWith(`${AD_RECEIVER} `) ? text.slice(AD_RECEIVER.length + 1) : null;
  if (choice === null || !isSuite(choice) || !offer.includes(choice)) {
    throw new ProtocolError("bad-key-share", "the receiver chose a record suite we did not offer");
  }
  return choice;
}

/** The receiver's pick: the first of its own suites that the sender offered, or null. */
export function chooseSuite(ours: readonly Suite[], offer: readonly Suite[]): Suite | null {
  return ours.find((suite) => offer.includes(suite)) ?? null;
}

async function expect(reader: FrameReader, type: FrameTypeCode, name: string): Promise<Frame> {
  const frame = await reader.next();
  if (frame === null) throw new ProtocolError("truncated", `connection closed before ${name}`);
  if (frame.type === FrameType.ERROR) {
    const e = decodeError(frame.payload);
    throw new PeerRefused(e.code, e.message);
  }
  if (frame.type !== type) {
    throw new ProtocolError(
      "unexpected-frame",
      `expected ${name}, got frame 0x${frame.type.toString(16)}`,
    );
  }
  // A copy: the reader's view is only valid until its next frame, and the handshake keeps
  // the nonces and shares across frames (they are at most 128 bytes).
  return { type: frame.type, payload: frame.payload.slice() };
}

function channelId(senderPreamble: Uint8Array, receiverPreamble: Uint8Array, mode: number) {
  return lvCat(CI_LABEL, senderPreamble, receiverPreamble, Uint8Array.of(mode));
}

function password(code: string | null): Uint8Array {
  return encoder.encode(code ?? "");
}

/** The sender's first channel frame, sent right behind its preamble. */
export function senderOpen(): { nonce: Uint8Array; payload: Uint8Array } {
  const nonce = crypto.getRandomValues(new Uint8Array(NONCE_BYTES));
  return { nonce, payload: nonce };
}

/**
 * The sender's side, after both preambles and its own CHANNEL_OPEN went
 * out. Returns the record keys; throws WrongCode, CodeRequired, ReceiverOpen,
 * PeerRefused or ProtocolError. A sender with a code continues only in code
 * mode (ReceiverOpen otherwise), so nothing it sends afterwards reaches a
 * peer that has not proved the code.
 */
export async function senderKeyExchange(
  reader: FrameReader,
  writer: FrameWriter,
  opts: {
    senderPreamble: Uint8Array;
    receiverPreamble: Uint8Array;
    nonce: Uint8Array;
    code: string | null;
    /** The suites to offer, best first (tests). Default: fastSuites(). */
    suites?: readonly Suite[];
    /** The group's build (tests). Default: loadRistretto255(). */
    group?: Ristretto255;
  },
): Promise<ChannelKeys> {
  // Loads while the receiver answers (@noble/curves' modules, where libsodium is missing).
  const loading = opts.group === undefined ? loadRistretto255() : Promise.resolve(opts.group);
  loading.catch(() => {}); // awaited below, unless the exchange ends first
  const open = (await expect(reader, FrameType.CHANNEL_OPEN, "CHANNEL_OPEN")).payload;
  // The channel byte is judged once the frame behind the preamble is known not to be an
  // ERROR (a refusal may come behind any channel byte), and before anything else is sent.
  if (opts.receiverPreamble[CHANNEL_BYTE] !== Channel.cpace) {
    throw new ProtocolError(
      "unsupported-channel",
      `the receiver chose channel ${opts.receiverPreamble[CHANNEL_BYTE]}`,
    );
  }
  if (open.length !== 1 + NONCE_BYTES) throw new ProtocolError("bad-frame", "CHANNEL_OPEN size");
  const mode = open[0];
  if (mode !== ChannelMode.code && mode !== ChannelMode.open) {
    throw new ProtocolError("bad-frame", `unknown channel mode ${mode}`);
  }
  if (mode === ChannelMode.code && opts.code === null) throw new CodeRequired();
  if (mode === ChannelMode.open && opts.code !== null) {
    // The sender's own expectation decides, not the receiver's claim: no key share, no name.
    await writer.frame(
      FrameType.ERROR,
      encodeJson({
        code: CODE_EXPECTED,
        message: "this sender sends only to a receiver with a code",
      }),
    );
    await writer.flush().catch(() => {});
    throw new ReceiverOpen();
  }
  const code = opts.code;
  const sid = concatBytes(opts.nonce, open.subarray(1));
  const ci = channelId(opts.senderPreamble, opts.receiverPreamble, mode);
  const offer = opts.suites ?? fastSuites();
  const ad = senderAd(offer);
  const group = await loading;
  const start = cpaceStart({ prs: password(code), ci, sid, ad, role: "initiator", group });
  let share: Uint8Array;
  try {
    await writer.frame(FrameType.KEY_SHARE, concatBytes(start.message, ad));
    await writer.flush();
    share = (await expect(reader, FrameType.KEY_SHARE, "KEY_SHARE")).payload;
    if (share.length < SHARE_BYTES + TAG_BYTES) {
      throw new ProtocolError("bad-frame", "KEY_SHARE size");
    }
  } catch (err) {
    cpaceAbandon(start.state); // the receiver left or refused: our scalar is wiped
    throw err;
  }
  const theirAd = share.slice(SHARE_BYTES + TAG_BYTES);
  let keys;
  try {
    keys = deriveSessionKeys(cpaceFinish(start.state, share.slice(0, SHARE_BYTES), theirAd));
  } catch (err) {
    if (err instanceof CpaceError) throw new ProtocolError("bad-key-share", "invalid key share");
    throw err;
  }
  if (
    !verifyPeerConfirmation(keys, "initiator", share.slice(SHARE_BYTES, SHARE_BYTES + TAG_BYTES))
  ) {
    // Tell the receiver at once (it counts this as a failed guess), then give up.
    await writer.frame(FrameType.ERROR, encodeJson({ code: "wrong-code", message: "wrong code" }));
    await writer.flush().catch(() => {});
    throw new WrongCode("wrong code");
  }
  // Read only now that tag_r proved ADb is the receiver's, as sent.
  const suite = parseChoice(theirAd, offer);
  await writer.frame(FrameType.KEY_CONFIRM, ownConfirmation(keys, "initiator"));
  return channelKeys(keys, "initiator", mode, suite);
}

/**
 * The receiver's side, after both preambles. `admit` runs once the sender
 * opened (it may throw, e.g. a locked-out address); `pace` runs right before
 * the receiver computes and sends its key share, from which on the sender
 * can test a guess (the wrong-code slowdown; it may throw too); `confirmed`
 * runs once the sender proved the code. Throws WrongCode when the sender did
 * not prove the code after seeing our share: the caller counts that as a
 * failed guess.
 */
export async function receiverKeyExchange(
  reader: FrameReader,
  writer: FrameWriter,
  opts: {
    senderPreamble: Uint8Array;
    receiverPreamble: Uint8Array;
    code: string | null;
    admit: () => Promise<void>;
    pace: () => Promise<void>;
    /** The sender's KEY_CONFIRM is valid: the guess `pace` let through was right. */
    confirmed?: () => void;
    /** The suites we accept, best first (tests). Default: fastSuites(). */
    suites?: readonly Suite[];
    /** The group's build (tests). Default: loadRistretto255(). */
    group?: Ristretto255;
  },
): Promise<ChannelKeys> {
  const group = opts.group ?? await loadRistretto255();
  const nonce = (await expect(reader, FrameType.CHANNEL_OPEN, "CHANNEL_OPEN")).payload;
  if (nonce.length !== NONCE_BYTES) throw new ProtocolError("bad-frame", "CHANNEL_OPEN size");
  await opts.admit();
  const mode = opts.code === null ? ChannelMode.open : ChannelMode.code;
  const ours = crypto.getRandomValues(new Uint8Array(NONCE_BYTES));
  await writer.frame(FrameType.CHANNEL_OPEN, concatBytes(Uint8Array.of(mode), ours));
  await writer.flush();
  const share = (await expect(reader, FrameType.KEY_SHARE, "KEY_SHARE")).payload;
  if (share.length < SHARE_BYTES) throw new ProtocolError("bad-frame", "KEY_SHARE size");
  const theirAd = share.slice(SHARE_BYTES);
  const suite = chooseSuite(opts.suites ?? fastSuites(), parseOffer(theirAd));
  if (suite === null) {
    throw new ProtocolError("bad-key-share", "the sender offers no record suite we support");
  }
  // Checked before our share goes out: a share that cannot give a key tells us nothing about
  // the code and learns nothing of it, so it is refused in the clear, not counted as a guess.
  if (!isValidShare(share.subarray(0, SHARE_BYTES), group)) {
    throw new ProtocolError("bad-key-share", "invalid key share");
  }
  await opts.pace();
  const sid = concatBytes(nonce, ours);
  const ci = channelId(opts.senderPreamble, opts.receiverPreamble, mode);
  const ad = receiverAd(suite);
  const start = cpaceStart({ prs: password(opts.code), ci, sid, ad, role: "responder", group });
  let keys;
  try {
    keys = deriveSessionKeys(cpaceFinish(start.state, share.slice(0, SHARE_BYTES), theirAd));
  } catch (err) {
    if (err instanceof CpaceError) throw new ProtocolError("bad-key-share", "invalid key share");
    throw err;
  }
  await writer.frame(
    FrameType.KEY_SHARE,
    concatBytes(start.message, ownConfirmation(keys, "responder"), ad),
  );
  await writer.flush();
  // From here the sender can tell whether its code was right: whatever it does next but
  // prove it (an ERROR of any code, a hang-up, garbage) is a failed guess.
  let confirm: Frame;
  try {
    confirm = await expect(reader, FrameType.KEY_CONFIRM, "KEY_CONFIRM");
  } catch (err) {
    throw new WrongCode(
      err instanceof PeerRefused ? "wrong code" : "wrong code (the sender left without proving it)",
    );
  }
  if (!verifyPeerConfirmation(keys, "responder", confirm.payload)) {
    throw new WrongCode("wrong code");
  }
  opts.confirmed?.();
  return channelKeys(keys, "responder", mode, suite);
}

/** The record sealer and opener of our role, on the agreed suite. */
function channelKeys(keys: SessionKeys, role: CpaceRole, mode: number, suite: Suite): ChannelKeys {
  const { send, receive } = trafficKeys(keys, role);
  const [ours, theirs] = role === "initiator" ? ["c2s", "s2c"] as const : ["s2c", "c2s"] as const;
  const aead = defaultAead(suite);
  return {
    sealer: new RecordSealer(send, ours, { aead }),
    opener: new RecordOpener(receive, theirs, { aead }),
    mode,
    suite,
  };
}
