/**
 * A fake receiver for tests of the sender: it accepts one connection, reads
 * the sender's preamble and CHANNEL_OPEN, answers with whatever `reply`
 * makes of them, then records every frame the sender sends until it closes.
 * It plays the hostile peer: a receiver that claims to be open, one that
 * sends an ERROR full of escape codes.
 */
import { encodeFrame, FrameType } from "../src/protocol/frame.ts";
import { encodeJson } from "../src/protocol/messages.ts";
import { Channel, encodePreamble, PREAMBLE_BYTES } from "../src/protocol/preamble.ts";
import { receiverKeyExchange } from "../src/transport/channel.ts";
import { type Frame, FrameReader } from "../src/transport/frame_io.ts";
import { FramedLink } from "../src/transport/framed_link.ts";
import { TEST_CODE } from "./_in_process.ts";
import { loadShortHashes } from "../src/transport/short_hashes.ts";

// The handshake's hashes where no OpenSSL loads (@noble/hashes) are imported by this first.
await loadShortHashes();

export interface FakeReceiver {
  port: number;
  /** Resolves with the frames the sender sent after its CHANNEL_OPEN, once it closed. */
  frames: Promise<Frame[]>;
  close(): void;
}

/** Our preamble (version 1, channel 1), then CHANNEL_OPEN in open mode (1) with a nonce. */
export function openModeReply(): Uint8Array {
  const open = new Uint8Array(17);
  open[0] = 1;
  crypto.getRandomValues(open.subarray(1));
  return Uint8Array.from([
    ...encodePreamble({ version: 1, channel: Channel.cpace }),
    ...encodeFrame(FrameType.CHANNEL_OPEN, open),
  ]);
}

/** Our preamble, then a plain ERROR with the given code and message. */
export function clearErrorReply(code: string, message: string): Uint8Array {
  return Uint8Array.from([
    ...encodePreamble({ version: 1, channel: Channel.cpace }),
    ...encodeFrame(FrameType.ERROR, new TextEncoder().encode(JSON.stringify({ code, message }))),
  ]);
}

/**
 * A receiver that proves the code (TEST_CODE) like ferry's and answers HELLO with `welcome`
 * (e.g. an older ferry's, without a feature), then records every frame the sender sends inside
 * the channel (HELLO first) until it closes. It never answers an ANNOUNCE.
 */
export function fakeWelcomer(welcome: Record<string, unknown>): FakeReceiver {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const frames = (async () => {
    const conn = await listener.accept();
    listener.close();
    const seen: Frame[] = [];
    try {
      const link = new FramedLink(conn);
      const theirs = await link.reader.readRaw(PREAMBLE_BYTES);
      if (theirs === null) return seen;
      const ours = encodePreamble({ version: 1, channel: Channel.cpace });
      await link.writer.raw(ours);
      const keys = await receiverKeyExchange(link.reader, link.writer, {
        senderPreamble: theirs.slice(),
        receiverPreamble: ours,
        code: TEST_CODE,
        admit: () => Promise.resolve(),
        pace: () => Promise.resolve(),
      });
      await link.secure(keys);
      const hello = await link.reader.next();
      if (hello === null) return seen;
      seen.push({ type: hello.type, payload: hello.payload.slice() });
      await link.writer.frame(FrameType.WELCOME, encodeJson(welcome));
      await link.writer.flush();
      for (;;) {
        const frame = await link.reader.next().catch(() => null);
        if (frame === null) break;
        seen.push({ type: frame.type, payload: frame.payload.slice() });
      }
    } finally {
      conn.close();
    }
    return seen;
  })();
  return {
    port: (listener.addr as Deno.NetAddr).port,
    frames,
    close: () => {
      try {
        listener.close();
      } catch { /* closed when the connection came */ }
    },
  };
}

export function fakeReceiver(reply: Uint8Array): FakeReceiver {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const frames = (async () => {
    const conn = await listener.accept();
    listener.close();
    const seen: Frame[] = [];
    try {
      const reader = new FrameReader(conn);
      if ((await reader.readRaw(PREAMBLE_BYTES)) === null) return seen;
      const open = await reader.next();
      if (open?.type !== FrameType.CHANNEL_OPEN) throw new Error("expected CHANNEL_OPEN");
      await conn.write(reply);
      for (;;) {
        const frame = await reader.next().catch(() => null);
        if (frame === null) break;
        seen.push({ type: frame.type, payload: frame.payload.slice() });
      }
    } finally {
      conn.close();
    }
    return seen;
  })();
  return {
    port: (listener.addr as Deno.NetAddr).port,
    frames,
    close: () => {
      try {
        listener.close();
      } catch { /* closed when the connection came */ }
    },
  };
}
