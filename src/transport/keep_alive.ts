/**
 * NOOP frames while one side works a long time without a word for the other (feature "sync",
 * PROTOCOL.md §5.14): the receiver comparing a large file's content, the sender hashing one for
 * `--checksum`. Each frame restarts both sides' inactivity timers (§10.2), as any bytes do.
 */
import { FrameType, type FrameTypeCode } from "../protocol/frame.ts";

/** At most one NOOP this often. */
export const KEEP_ALIVE_MS = 1000;

const EMPTY = new Uint8Array(0);

/** Where NOOPs go (a FrameWriter). */
export interface KeepAliveWriter {
  frame(type: FrameTypeCode, payload: Uint8Array): Promise<void>;
  flush(): Promise<void>;
}

export class KeepAlive {
  #last = performance.now();

  constructor(readonly writer: KeepAliveWriter, readonly everyMs = KEEP_ALIVE_MS) {}

  /** Sends a NOOP if none (nor this call's caller) has for `everyMs`; cheap otherwise. */
  async tick(): Promise<void> {
    const now = performance.now();
    if (now - this.#last < this.everyMs) return;
    this.#last = now;
    await this.writer.frame(FrameType.NOOP, EMPTY);
    await this.writer.flush();
  }
}
