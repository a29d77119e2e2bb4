/** The record suite's negotiation in the handshake (src/transport/channel.ts). */
import { assertEquals, assertRejects, assertThrows } from "@std/assert";
import { concat } from "@std/bytes";
import { ProtocolError } from "../src/protocol/errors.ts";
import { encodeFrame, FrameType, parseHeader } from "../src/protocol/frame.ts";
import { FRAME_HEADER_BYTES } from "../src/protocol/limits.ts";
import { Channel, encodePreamble, PROTOCOL_VERSION } from "../src/protocol/preamble.ts";
import type { Suite } from "../src/transport/aead.ts";
import type { ByteStream } from "../src/transport/byte_stream.ts";
import {
  type ChannelKeys,
  chooseSuite,
  parseChoice,
  parseOffer,
  receiverAd,
  receiverKeyExchange,
  senderAd,
  senderKeyExchange,
  senderOpen,
  WrongCode,
} from "../src/transport/channel.ts";
import { FrameReader, FrameWriter } from "../src/transport/frame_io.ts";
import type { Ristretto255 } from "../src/transport/ristretto255.ts";
import { nobleRistretto255 } from "../src/transport/ristretto255_noble.ts";
import { sodiumRistretto255 } from "../src/transport/ristretto255_sodium.ts";
import { recordingGroup } from "./_recording_group.ts";
import { loadShortHashes } from "../src/transport/short_hashes.ts";

// The handshake's hashes where no OpenSSL loads (@noble/hashes) are imported by this first.
await loadShortHashes();

const utf8 = (s: string) => new TextEncoder().encode(s);
const BOTH: Suite[] = ["aes-256-gcm", "chacha20-poly1305"];
const CHACHA: Suite[] = ["chacha20-poly1305"];

Deno.test("parseOffer() reads the suites of senderAd() and drops unknown names", () => {
  assertEquals(senderAd(BOTH), utf8("ferry/1 sender aes-256-gcm,chacha20-poly1305"));
  assertEquals(parseOffer(senderAd(BOTH)), BOTH);
  assertEquals(parseOffer(senderAd(CHACHA)), CHACHA);
  assertEquals(parseOffer(utf8("ferry/1 sender rot13,chacha20-poly1305,aes-128-ocb")), CHACHA);
  assertEquals(parseOffer(utf8("ferry/1 sender rot13")), []);
});

Deno.test("parseOffer() refuses associated data that is not ferry's, from an older ferry, not ASCII, or too long", () => {
  for (
    const ad of [
      "",
      "ferry/1 sendex",
      "ferry/2 sender aes-256-gcm",
      "ferry/1 receiver",
      "ferry/1 sender", // a ferry from before the negotiation: its keys would differ
      "\ufeffferry/1 sender aes-256-gcm",
      "ferry/1 sender aes-256-gcm\n",
      "ferry/1 sender chacha20-poly1305,é",
    ]
  ) {
    const err = assertThrows(() => parseOffer(utf8(ad)), ProtocolError, undefined, ad);
    assertEquals(err.code, "bad-key-share");
  }
  assertThrows(() => parseOffer(utf8(`ferry/1 sender ${"x,".repeat(60)}`)), ProtocolError);
});

Deno.test("parseOffer() refuses a suite list outside the grammar of PROTOCOL.md §4.1", () => {
  for (
    const list of [
      "", // no name at all
      "aes-256-gcm,", // an empty name
      ",chacha20-poly1305",
      "aes-256-gcm,,chacha20-poly1305",
      "aes-256-gcm, chacha20-poly1305", // spaces
      " chacha20-poly1305",
      "chacha20-poly1305 ",
      "chacha20-poly1305,chacha20-poly1305", // a name twice
      "rot13,chacha20-poly1305,rot13", // unknown names too
      "AES-256-GCM,chacha20-poly1305", // uppercase
      "chacha20-poly1305;aes-256-gcm", // another separator
      "chacha20_poly1305,chacha20-poly1305",
    ]
  ) {
    const err = assertThrows(
      () => parseOffer(utf8(`ferry/1 sender ${list}`)),
      ProtocolError,
      undefined,
      JSON.stringify(list),
    );
    assertEquals(err.code, "bad-key-share");
  }
  // Well-formed names it does not know are left out, wherever they stand.
  assertEquals(parseOffer(utf8("ferry/1 sender x,aes-256-gcm,9-y,chacha20-poly1305")), BOTH);
});

Deno.test("parseChoice() accepts only an offered suite, and refuses an older ferry's bare label", () => {
  assertEquals(receiverAd("aes-256-gcm"), utf8("ferry/1 receiver aes-256-gcm"));
  assertEquals(parseChoice(receiverAd("aes-256-gcm"), BOTH), "aes-256-gcm");
  assertEquals(parseChoice(receiverAd("chacha20-poly1305"), CHACHA), "chacha20-poly1305");
  for (
    const [ad, offer] of [
      [utf8("ferry/1 receiver"), BOTH],
      [receiverAd("aes-256-gcm"), CHACHA],
      [utf8("ferry/1 receiver rot13"), BOTH],
      [utf8("ferry/1 sender aes-256-gcm"), BOTH],
      [utf8("ferry/1 receiver aes-256-gcm,chacha20-poly1305"), BOTH],
    ] as const
  ) {
    assertEquals(
      assertThrows(() => parseChoice(ad, offer), ProtocolError).code,
      "bad-key-share",
    );
  }
});

Deno.test("chooseSuite() takes the receiver's first suite that the sender offered", () => {
  assertEquals(chooseSuite(BOTH, BOTH), "aes-256-gcm");
  assertEquals(chooseSuite(BOTH, ["chacha20-poly1305", "aes-256-gcm"]), "aes-256-gcm");
  assertEquals(chooseSuite(CHACHA, BOTH), "chacha20-poly1305");
  assertEquals(chooseSuite(BOTH, CHACHA), "chacha20-poly1305");
  assertEquals(chooseSuite(CHACHA, ["aes-256-gcm"]), null);
  assertEquals(chooseSuite(BOTH, []), null);
});

// ---------------------------------------------------------------------------
// The handshake, in memory, with an optional man in the middle

/** One direction of an in-memory connection: writes queue up, reads take them in order. */
class Pipe {
  #chunks: Uint8Array[] = [];
  #waiting: (() => void) | null = null;
  #closed = false;

  push(bytes: Uint8Array): void {
    this.#chunks.push(bytes.slice());
    this.#waiting?.();
  }

  end(): void {
    this.#closed = true;
    this.#waiting?.();
  }

  async read(p: Uint8Array): Promise<number | null> {
    while (this.#chunks.length === 0) {
      if (this.#closed) return null;
      await new Promise<void>((resolve) => this.#waiting = resolve);
      this.#waiting = null;
    }
    const chunk = this.#chunks[0]!;
    const n = Math.min(p.length, chunk.length);
    p.set(chunk.subarray(0, n));
    if (n === chunk.length) this.#chunks.shift();
    else this.#chunks[0] = chunk.subarray(n);
    return n;
  }
}

/** Rewrites each whole frame a side writes (writes here always hold whole frames). */
type Rewrite = (type: number, payload: Uint8Array) => Uint8Array;

function endpoint(incoming: Pipe, outgoing: Pipe, rewrite?: Rewrite): ByteStream {
  return {
    read: (p) => incoming.read(p),
    write(p) {
      if (rewrite === undefined) {
        outgoing.push(p);
        return Promise.resolve(p.length);
      }
      const frames: Uint8Array[] = [];
      for (let at = 0; at < p.length;) {
        const { type, length } = parseHeader(p.subarray(at));
        const payload = p.subarray(at + FRAME_HEADER_BYTES, at + FRAME_HEADER_BYTES + length);
        frames.push(encodeFrame(type, rewrite(type, payload)));
        at += FRAME_HEADER_BYTES + length;
      }
      outgoing.push(concat(frames));
      return Promise.resolve(p.length);
    },
    close() {
      outgoing.end();
      incoming.end();
    },
  };
}

const PREAMBLE_S = encodePreamble({ version: PROTOCOL_VERSION, channel: Channel.cpace });
const PREAMBLE_R = encodePreamble({ version: PROTOCOL_VERSION, channel: Channel.cpace });

async function handshake(opts: {
  sender: Suite[];
  receiver: Suite[];
  fromSender?: Rewrite;
  fromReceiver?: Rewrite;
  /** Called where the receiver would count a guess (right before its key share). */
  pace?: () => void;
  /** Each side's build of the group (default: loadRistretto255()'s). */
  senderGroup?: Ristretto255;
  receiverGroup?: Ristretto255;
}): Promise<[PromiseSettledResult<ChannelKeys>, PromiseSettledResult<ChannelKeys>]> {
  const toReceiver = new Pipe();
  const toSender = new Pipe();
  const s = endpoint(toSender, toReceiver, opts.fromSender);
  const r = endpoint(toReceiver, toSender, opts.fromReceiver);
  const sw = new FrameWriter(s);
  const open = senderOpen();
  await sw.frame(FrameType.CHANNEL_OPEN, open.payload);
  await sw.flush();
  const sender = senderKeyExchange(new FrameReader(s), sw, {
    senderPreamble: PREAMBLE_S,
    receiverPreamble: PREAMBLE_R,
    nonce: open.nonce,
    code: "4821-crane-lotus-oyster",
    suites: opts.sender,
    ...(opts.senderGroup ? { group: opts.senderGroup } : {}),
  }).then(async (keys) => {
    await sw.flush(); // KEY_CONFIRM: the session sends it with its first records
    return keys;
  }).finally(() => s.close());
  const receiver = receiverKeyExchange(new FrameReader(r), new FrameWriter(r), {
    senderPreamble: PREAMBLE_S,
    receiverPreamble: PREAMBLE_R,
    code: "4821-crane-lotus-oyster",
    admit: () => Promise.resolve(),
    pace: () => {
      opts.pace?.();
      return Promise.resolve();
    },
    suites: opts.receiver,
    ...(opts.receiverGroup ? { group: opts.receiverGroup } : {}),
  }).finally(() => r.close());
  const [sent, received] = await Promise.allSettled([sender, receiver]);
  return [sent, received];
}

async function agreed(
  sender: Suite[],
  receiver: Suite[],
  groups: { senderGroup?: Ristretto255; receiverGroup?: Ristretto255 } = {},
): Promise<Suite> {
  const [s, r] = await handshake({ sender, receiver, ...groups });
  if (s.status !== "fulfilled" || r.status !== "fulfilled") {
    throw new Error(`handshake failed: ${JSON.stringify([s, r].map((x) => x.status))}`);
  }
  assertEquals(s.value.suite, r.value.suite);
  // The keys work: a record sealed by one side opens on the other, both ways.
  const there = s.value.sealer.seal(utf8("to the receiver"));
  assertEquals(r.value.opener.open(there), utf8("to the receiver"));
  const back = r.value.sealer.seal(utf8("to the sender"));
  assertEquals(s.value.opener.open(back), utf8("to the sender"));
  return s.value.suite;
}

Deno.test("the handshake agrees on AES-256-GCM when both offer it, else on ChaCha20-Poly1305", async () => {
  assertEquals(await agreed(BOTH, BOTH), "aes-256-gcm");
  assertEquals(await agreed(CHACHA, BOTH), "chacha20-poly1305");
  assertEquals(await agreed(BOTH, CHACHA), "chacha20-poly1305");
  assertEquals(await agreed(CHACHA, CHACHA), "chacha20-poly1305");
});

const sodium = sodiumRistretto255();

Deno.test({
  name: `the handshake agrees whichever build of ristretto255 each side has${
    sodium === null ? " (skipped: libsodium is not at any of LIBSODIUM_PATHS here)" : ""
  }`,
  ignore: sodium === null,
  fn: async () => {
    const noble = nobleRistretto255;
    const pairs: [Ristretto255, Ristretto255][] = [[noble, sodium!], [sodium!, noble]];
    for (const [senderGroup, receiverGroup] of pairs) {
      assertEquals(await agreed(BOTH, BOTH, { senderGroup, receiverGroup }), "aes-256-gcm");
    }
  },
});

Deno.test("a sender offering no suite the receiver has is refused with bad-key-share", async () => {
  // The sender's scalar is wiped though the receiver never answered its share.
  const handed: Uint8Array[] = [];
  const senderGroup = recordingGroup(handed);
  const [s, r] = await handshake({ sender: ["aes-256-gcm"], receiver: CHACHA, senderGroup });
  assertEquals(s.status, "rejected");
  assertEquals(r.status === "rejected" && (r.reason as ProtocolError).code, "bad-key-share");
  assertEquals(handed.length, 1);
  assertEquals(handed[0], new Uint8Array(32), "the sender's scalar is left in memory");
});

Deno.test("a man in the middle who changes the offer or the choice makes the handshake fail on both sides", async () => {
  const downgradeOffer: Rewrite = (type, payload) =>
    type === FrameType.KEY_SHARE ? concat([payload.subarray(0, 32), senderAd(CHACHA)]) : payload;
  const changeChoice: Rewrite = (type, payload) =>
    type === FrameType.KEY_SHARE
      ? concat([payload.subarray(0, 64), receiverAd("chacha20-poly1305")])
      : payload;
  for (
    const tamper of [{ fromSender: downgradeOffer }, { fromReceiver: changeChoice }]
  ) {
    const [s, r] = await handshake({ sender: BOTH, receiver: BOTH, ...tamper });
    assertEquals(s.status, "rejected");
    assertEquals(r.status, "rejected");
    await assertRejects(() => Promise.reject(s.status === "rejected" && s.reason), WrongCode);
    await assertRejects(() => Promise.reject(r.status === "rejected" && r.reason), WrongCode);
  }
});

Deno.test("a receiver refuses a malformed suite list before its key share: not a guess", async () => {
  const duplicate: Rewrite = (type, payload) =>
    type === FrameType.KEY_SHARE
      ? concat([
        payload.subarray(0, 32),
        utf8("ferry/1 sender chacha20-poly1305,chacha20-poly1305"),
      ])
      : payload;
  let paced = false;
  const [s, r] = await handshake({
    sender: CHACHA,
    receiver: BOTH,
    fromSender: duplicate,
    pace: () => paced = true,
  });
  assertEquals(s.status, "rejected");
  assertEquals(r.status === "rejected" && (r.reason as ProtocolError).code, "bad-key-share");
  assertEquals(paced, false, "refused before the receiver's share, so no guess was counted");
});
