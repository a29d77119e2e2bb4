/**
 * A raw client that speaks (or mis-speaks) ferry's protocol, for adversarial
 * tests: frames, records and the secure channel by hand.
 */
import { createHash } from "node:crypto";
import { FrameType, type FrameTypeCode } from "../src/protocol/frame.ts";
import { encodeJson } from "../src/protocol/messages.ts";
import { Channel, encodePreamble, PROTOCOL_VERSION } from "../src/protocol/preamble.ts";
import { type Frame, FrameReader, FrameWriter } from "../src/transport/frame_io.ts";
import { type ChannelKeys, senderKeyExchange, senderOpen } from "../src/transport/channel.ts";
import { FramedLink } from "../src/transport/framed_link.ts";
import type { ByteStream } from "../src/transport/byte_stream.ts";
import { TEST_CODE } from "./_in_process.ts";
import { loadShortHashes } from "../src/transport/short_hashes.ts";

// The handshake's hashes where no OpenSSL loads (@noble/hashes) are imported by this first.
await loadShortHashes();

/** A raw client that speaks (or mis-speaks) the protocol, for adversarial tests. */
export class RawClient {
  /** The connection's frames, plain and then (after `channel()`) in records: ferry's own switch. */
  readonly link: FramedLink;

  private constructor(readonly conn: Deno.TcpConn) {
    this.link = new FramedLink(conn);
  }

  get reader(): FrameReader {
    return this.link.reader;
  }

  get writer(): FrameWriter {
    return this.link.writer;
  }

  /** What frames run on: the connection, then the secure channel after `handshake()`. */
  get stream(): ByteStream {
    return this.link.stream;
  }

  static async connect(port: number): Promise<RawClient> {
    return new RawClient(await Deno.connect({ hostname: "127.0.0.1", port }));
  }

  /** Connects, sends preamble and HELLO, and reads the preamble and WELCOME. */
  static async open(port: number): Promise<RawClient> {
    const client = await RawClient.connect(port);
    await client.handshake();
    return client;
  }

  /**
   * Preamble, the secure channel on `code` (the test servers' code unless
   * given), then HELLO; returns the WELCOME frame (or whatever came instead).
   * Afterwards `reader`/`writer` run inside the channel's records.
   */
  async handshake(
    version = PROTOCOL_VERSION,
    opts: { code?: string | null; features?: string[]; digests?: string[]; transfer?: string } = {},
  ): Promise<Frame | null> {
    if (!(await this.channel({ version, code: opts.code }))) return null;
    await this.send(
      FrameType.HELLO,
      encodeJson({
        software: "raw-test",
        digests: opts.digests ?? ["sha256"],
        features: opts.features ?? [],
        ...(opts.transfer === undefined ? {} : { transfer: opts.transfer }),
      }),
    );
    return await this.reader.next();
  }

  /**
   * Preamble and the secure channel only (no HELLO): afterwards whatever is
   * sent goes inside records. False if the server closed before its preamble.
   */
  async channel(
    opts: { version?: number; code?: string | null | undefined; preamble?: Uint8Array } = {},
  ): Promise<boolean> {
    const keys = await this.exchangeKeys(opts);
    if (keys === null) return false;
    await this.link.secure(keys); // KEY_CONFIRM goes out in the clear, then records
    return true;
  }

  /**
   * Preamble and key exchange up to the receiver's KEY_SHARE; our KEY_CONFIRM
   * is left in the writer, unsent. Null if the server closed before its
   * preamble.
   */
  async exchangeKeys(
    opts: { version?: number; code?: string | null | undefined; preamble?: Uint8Array } = {},
  ): Promise<ChannelKeys | null> {
    const ours = opts.preamble ??
      encodePreamble({ version: opts.version ?? PROTOCOL_VERSION, channel: Channel.cpace });
    const open = senderOpen();
    await this.writer.raw(ours);
    await this.writer.frame(FrameType.CHANNEL_OPEN, open.payload);
    await this.writer.flush();
    const theirs = await this.reader.readRaw(8);
    if (theirs === null) return null;
    return await senderKeyExchange(this.reader, this.writer, {
      senderPreamble: ours,
      receiverPreamble: theirs,
      nonce: open.nonce,
      code: opts.code === undefined ? TEST_CODE : opts.code,
    });
  }

  async raw(bytes: Uint8Array): Promise<void> {
    await this.writer.raw(bytes);
    await this.writer.flush();
  }

  async send(type: FrameTypeCode, payload: Uint8Array): Promise<void> {
    await this.writer.frame(type, payload);
    await this.writer.flush();
  }

  async json(type: FrameTypeCode, value: unknown): Promise<void> {
    await this.send(type, encodeJson(value));
  }

  /** The next frame with its payload copied and, if JSON, parsed; null at end of stream. */
  async next(): Promise<{ type: number; payload: Uint8Array; json?: unknown } | null> {
    const frame = await this.reader.next();
    if (frame === null) return null;
    const payload = frame.payload.slice();
    let json: unknown;
    try {
      json = JSON.parse(new TextDecoder().decode(payload));
    } catch { /* binary */ }
    return { type: frame.type, payload, json };
  }

  /** Reads frames until the server closes; returns them. Errors count as the end. */
  async drain(): Promise<{ type: number; json?: unknown }[]> {
    const frames = [];
    try {
      for (;;) {
        const f = await this.next();
        if (f === null) break;
        frames.push(f);
      }
    } catch { /* reset or truncated: the end */ }
    return frames;
  }

  close(): void {
    try {
      this.conn.close();
    } catch { /* already closed */ }
  }
}

/** SHA-256 of `data`, as FILE_END carries it. */
export function sha256(data: Uint8Array): Uint8Array {
  return new Uint8Array(createHash("sha256").update(data).digest());
}

/**
 * Connects as a sender would (preamble, CHANNEL_OPEN), reads the receiver's
 * preamble and first frame, and returns that frame's ERROR code and message:
 * what a receiver that turns a sender away (busy, locked out) says, which
 * ferry's sender does not show, since it is unauthenticated. Null if the
 * first frame is not an ERROR.
 */
export async function readTurnAway(
  port: number,
): Promise<{ code: string; message: string } | null> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    const writer = new FrameWriter(conn);
    await writer.raw(encodePreamble({ version: PROTOCOL_VERSION, channel: Channel.cpace }));
    await writer.frame(FrameType.CHANNEL_OPEN, crypto.getRandomValues(new Uint8Array(16)));
    await writer.flush();
    const reader = new FrameReader(conn);
    await reader.readRaw(8);
    const frame = await reader.next();
    if (frame?.type !== FrameType.ERROR) return null;
    return JSON.parse(new TextDecoder().decode(frame.payload));
  } finally {
    conn.close();
  }
}
