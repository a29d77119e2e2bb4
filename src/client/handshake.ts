/**
 * The sender's handshake (PROTOCOL.md §2, §4, §5.2–5.3): the preambles, the
 * key exchange on the code (channel 1) and the switch of the link to the
 * secure channel, then HELLO and the receiver's WELCOME, which settles the
 * digest, the features and the limits of the session.
 */
import { ProtocolError } from "../protocol/errors.ts";
import { FrameType } from "../protocol/frame.ts";
import {
  type Digest,
  DIGEST_NAMES,
  type DigestName,
  loadDigest,
  MANDATORY_DIGEST,
} from "../protocol/digests.ts";
import { decodeWelcome, encodeJson, Feature, type Welcome } from "../protocol/messages.ts";
import {
  Channel,
  decodePreamble,
  encodePreamble,
  PREAMBLE_BYTES,
  PROTOCOL_VERSION,
} from "../protocol/preamble.ts";
import { fastSuites, type Suite } from "../transport/aead.ts";
import { senderKeyExchange, senderOpen } from "../transport/channel.ts";
import type { FramedLink } from "../transport/framed_link.ts";
import { nativeDigests } from "../transport/native_digests.ts";
import { loadRistretto255 } from "../transport/ristretto255_load.ts";
import { loadShortHashes, shortHashes } from "../transport/short_hashes.ts";
import type { SendErrors } from "./send_errors.ts";

export interface HandshakeOptions {
  /** HELLO's `software`. */
  software: string;
  /** HELLO's `transfer` (§7). */
  transfer: string;
  /** The receiver's code, or null. */
  code: string | null;
  /** Channel 0: no code, no encryption. */
  plaintext: boolean;
  /** The digests to offer, best first (default: DIGEST_NAMES). */
  digests?: readonly DigestName[] | undefined;
  /** HELLO's `host`: this machine's name, as shown to the person receiving (null: none). */
  host?: string | null;
}

/** What the handshake settled. */
export interface Agreement {
  welcome: Welcome;
  /** The digest WELCOME chose, for every FILE_END. */
  digest: Digest;
  /** The encrypted channel's record suite; null on the plain channel. */
  cipher: Suite | null;
  /** Both sides named the resume feature. */
  resume: boolean;
  /** Both sides named the sync feature: `unchanged`, `replaced` and entry digests (§9.3). */
  sync: boolean;
  /** Both sides named the text feature (PROTOCOL.md §5.15). */
  text: boolean;
  /** Both sides named the listing feature: the sender may LIST (PROTOCOL.md §5.16). */
  listing: boolean;
}

/** What HELLO offers: the chosen digests, best first; sha256 always among them (§8). */
export function offeredDigests(
  wanted: readonly DigestName[] = DIGEST_NAMES,
): readonly DigestName[] {
  return wanted.includes(MANDATORY_DIGEST) ? wanted : [...wanted, MANDATORY_DIGEST];
}

/** Runs the handshake on `link`; on channel 1 the link is secure when it returns. */
export async function handshake(
  link: FramedLink,
  opts: HandshakeOptions,
  errors: SendErrors,
): Promise<Agreement> {
  await loadShortHashes();
  const plain = opts.plaintext;
  const offered = offeredDigests(opts.digests);
  // The first choice's code (xxh128's WebAssembly, where no native build loads) loads while the
  // key exchange runs.
  loadDigest(offered[0]!, nativeDigests()).catch(() => {});
  const hello = () =>
    link.writer.frame(
      FrameType.HELLO,
      encodeJson({
        software: opts.software,
        digests: offered,
        features: [Feature.resume, Feature.sync, Feature.text, Feature.listing],
        transfer: opts.transfer,
        ...(opts.host ? { host: opts.host } : {}),
      }),
    );
  const ours = encodePreamble({
    version: PROTOCOL_VERSION,
    channel: plain ? Channel.plain : Channel.cpace,
  });
  await link.writer.raw(ours);
  const open = senderOpen();
  if (plain) await hello();
  else await link.writer.frame(FrameType.CHANNEL_OPEN, open.payload);
  await link.writer.flush();
  if (!plain) readyKeyExchange();
  const raw = await link.reader.readRaw(PREAMBLE_BYTES);
  if (raw === null) throw errors.closedInHandshake();
  let theirs;
  try {
    theirs = decodePreamble(raw);
  } catch {
    throw errors.notFerry();
  }
  if (theirs.version !== PROTOCOL_VERSION) {
    throw errors.otherVersion(theirs.version, PROTOCOL_VERSION);
  }
  let cipher: Suite | null = null;
  if (!plain) {
    // CPace on the code; then the frames run inside records, starting with HELLO.
    let keys;
    try {
      keys = await senderKeyExchange(link.reader, link.writer, {
        senderPreamble: ours,
        receiverPreamble: raw,
        nonce: open.nonce,
        code: opts.code,
      });
    } catch (err) {
      throw errors.keyExchange(err);
    }
    cipher = keys.suite;
    await link.secure(keys); // KEY_CONFIRM goes out in the clear, before the first record
    await hello();
    await link.writer.flush();
  }
  const frame = await link.reader.next();
  if (frame?.type === FrameType.ERROR) throw errors.refused(frame.payload);
  if (theirs.channel !== (plain ? Channel.plain : Channel.cpace)) {
    throw new ProtocolError(
      "unsupported-channel",
      `the receiver chose channel ${theirs.channel}`,
    );
  }
  if (frame?.type !== FrameType.WELCOME) {
    throw new ProtocolError("unexpected-frame", "expected WELCOME");
  }
  const welcome = decodeWelcome(frame.payload);
  const chosen = offered.find((name) => name === welcome.digest);
  if (chosen === undefined) {
    throw new ProtocolError(
      "bad-message",
      `the receiver chose digest ${welcome.digest}, not offered`,
    );
  }
  return {
    welcome,
    digest: await loadDigest(chosen, nativeDigests()),
    cipher,
    resume: welcome.features.includes(Feature.resume),
    sync: welcome.features.includes(Feature.sync),
    text: welcome.features.includes(Feature.text),
    listing: welcome.features.includes(Feature.listing),
  };
}

/**
 * What the key exchange uses first, made ready while the receiver answers our CHANNEL_OPEN
 * rather than after: the record suites' known-answer tests (OpenSSL's first call, about a
 * millisecond), the handshake's hashes and CPace's group. Each is kept for the process; a
 * failure here is met again, and reported, where the exchange needs it.
 */
function readyKeyExchange(): void {
  try {
    fastSuites();
    shortHashes();
    loadRistretto255().catch(() => {});
  } catch {
    // reported by the key exchange itself
  }
}
