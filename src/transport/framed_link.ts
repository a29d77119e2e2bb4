/**
 * One connection as frames: the reader and writer over the TCP stream, then,
 * once the key exchange has given keys, over the secure channel's records.
 * The switch is the same for both roles and for the tests' raw client:
 * the bytes already read past the last plain frame go to the secure stream,
 * and what the plain writer still holds (the sender's KEY_CONFIRM) goes out
 * in the clear before the first record.
 */
import type { ByteStream } from "./byte_stream.ts";
import type { ChannelKeys } from "./channel.ts";
import { FrameReader, FrameWriter } from "./frame_io.ts";
import { SecureStream } from "./secure_stream.ts";

export class FramedLink {
  reader: FrameReader;
  writer: FrameWriter;
  /** What frames run on now: the connection, then the secure stream. */
  stream: ByteStream;

  /**
   * `onProgress` runs whenever bytes move (a watchdog's touch); `maxControl`
   * bounds control frames' payloads (the receiver's --max-message).
   */
  constructor(
    readonly conn: ByteStream,
    readonly onProgress: () => void = () => {},
    readonly maxControl?: number,
  ) {
    this.stream = conn;
    this.reader = this.#readerOn(conn);
    this.writer = new FrameWriter(conn, onProgress);
  }

  #readerOn(stream: ByteStream): FrameReader {
    const reader = new FrameReader(stream, this.onProgress);
    if (this.maxControl !== undefined) reader.maxControl = this.maxControl;
    return reader;
  }

  /** From now on frames run inside the secure channel's records. */
  async secure(keys: ChannelKeys): Promise<void> {
    const stream = new SecureStream(
      this.conn,
      keys.sealer,
      keys.opener,
      this.reader.takeBuffered(),
    );
    const plain = this.writer;
    this.stream = stream;
    this.reader = this.#readerOn(stream);
    this.writer = new FrameWriter(stream, this.onProgress);
    await plain.flush();
  }
}
