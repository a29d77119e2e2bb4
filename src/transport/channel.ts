/**
 * The secure channel's handshake (channel 1 of the preamble), run in plain
 * frames right after the preambles:
 *
 *   sender                                    receiver
 *   CHANNEL_OPEN  nonce_s (16)          -->
 *                                       <--   CHANNEL_OPEN  mode (1) | nonce_r (16)
 *   KEY_SHARE     Ya (32) | ADa         -->
 *                                       <--   KEY_SHARE     Yb (32) | tag_r (32) | ADb
 *   KEY_CONFIRM   tag_s (32)            -->
 *   ...records both ways (record_layer.ts), the frames inside them
 *
 * CPace (cpace.ts) runs on the code; both preambles and the mode are bound
 * into its channel identifier, both nonces form its session id. Each side
 * proves it derived the same keys (key_schedule.ts) before any record flows,
 * so a wrong code fails here, on both sides, before anything is sent.
 */
import { concat } from "@std/bytes";
import { ProtocolError } from "../protocol/errors.ts";
import { FrameType, type FrameTypeCode } from "../protocol/frame.ts";
import { decodeError, encodeJson } from "../protocol/messages.ts";
import { CpaceError, cpaceFinish, cpaceStart, lvCat } from "./cpace.ts";
import type { Frame, FrameReader, FrameWriter } from "./frame_io.ts";
import {
  deriveSessionKeys,
  ownConfirmation,
  trafficKeys,
  verifyPeerConfirmation,
} from "./key_schedule.ts";
import { RecordOpener, RecordSealer } from "./record_layer.ts";

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
const AD_SENDER = encoder.encode("ferry/1 sender");
const AD_RECEIVER = encoder.encode("ferry/1 receiver");
const CI_LABEL = encoder.encode("ferry/1 ci");

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
  return frame;
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
 * out. Returns the record keys; throws WrongCode, CodeRequired, PeerRefused
 * or ProtocolError.
 */
export async function senderKeyExchange(
  reader: FrameReader,
  writer: FrameWriter,
  opts: {
    senderPreamble: Uint8Array;
    receiverPreamble: Uint8Array;
    nonce: Uint8Array;
    code: string | null;
  },
): Promise<ChannelKeys> {
  const open = (await expect(reader, FrameType.CHANNEL_OPEN, "CHANNEL_OPEN")).payload;
  if (open.length !== 1 + NONCE_BYTES) throw new ProtocolError("bad-frame", "CHANNEL_OPEN size");
  const mode = open[0];
  if (mode !== ChannelMode.code && mode !== ChannelMode.open) {
    throw new ProtocolError("bad-frame", `unknown channel mode ${mode}`);
  }
  if (mode === ChannelMode.code && opts.code === null) throw new CodeRequired();
  const code = mode === ChannelMode.open ? null : opts.code;
  const sid = concat([opts.nonce, open.subarray(1)]);
  const ci = channelId(opts.senderPreamble, opts.receiverPreamble, mode);
  const start = cpaceStart({ prs: password(code), ci, sid, ad: AD_SENDER, role: "initiator" });
  await writer.frame(FrameType.KEY_SHARE, concat([start.message, AD_SENDER]));
  await writer.flush();
  const share = (await expect(reader, FrameType.KEY_SHARE, "KEY_SHARE")).payload;
  if (share.length < SHARE_BYTES + TAG_BYTES) {
    throw new ProtocolError("bad-frame", "KEY_SHARE size");
  }
  let keys;
  try {
    keys = deriveSessionKeys(
      cpaceFinish(start.state, share.slice(0, SHARE_BYTES), share.slice(SHARE_BYTES + TAG_BYTES)),
    );
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
  await writer.frame(FrameType.KEY_CONFIRM, ownConfirmation(keys, "initiator"));
  const { send, receive } = trafficKeys(keys, "initiator");
  return {
    sealer: new RecordSealer(send, "c2s"),
    opener: new RecordOpener(receive, "s2c"),
    mode,
  };
}

/**
 * The receiver's side, after both preambles. `admit` runs once the sender
 * opened (it may throw, e.g. a locked-out address); `pace` runs before the
 * receiver answers a key share (the wrong-code slowdown). Throws WrongCode
 * when the sender did not prove the code after seeing our share: the caller
 * counts that as a failed guess.
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
  },
): Promise<ChannelKeys> {
  const nonce = (await expect(reader, FrameType.CHANNEL_OPEN, "CHANNEL_OPEN")).payload;
  if (nonce.length !== NONCE_BYTES) throw new ProtocolError("bad-frame", "CHANNEL_OPEN size");
  await opts.admit();
  const mode = opts.code === null ? ChannelMode.open : ChannelMode.code;
  const ours = crypto.getRandomValues(new Uint8Array(NONCE_BYTES));
  await writer.frame(FrameType.CHANNEL_OPEN, concat([Uint8Array.of(mode), ours]));
  await writer.flush();
  const share = (await expect(reader, FrameType.KEY_SHARE, "KEY_SHARE")).payload;
  if (share.length < SHARE_BYTES) throw new ProtocolError("bad-frame", "KEY_SHARE size");
  await opts.pace();
  const sid = concat([nonce, ours]);
  const ci = channelId(opts.senderPreamble, opts.receiverPreamble, mode);
  const start = cpaceStart({
    prs: password(opts.code),
    ci,
    sid,
    ad: AD_RECEIVER,
    role: "responder",
  });
  let keys;
  try {
    keys = deriveSessionKeys(
      cpaceFinish(start.state, share.slice(0, SHARE_BYTES), share.slice(SHARE_BYTES)),
    );
  } catch (err) {
    if (err instanceof CpaceError) throw new ProtocolError("bad-key-share", "invalid key share");
    throw err;
  }
  await writer.frame(
    FrameType.KEY_SHARE,
    concat([start.message, ownConfirmation(keys, "responder"), AD_RECEIVER]),
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
  const { send, receive } = trafficKeys(keys, "responder");
  return {
    sealer: new RecordSealer(send, "s2c"),
    opener: new RecordOpener(receive, "c2s"),
    mode,
  };
}
