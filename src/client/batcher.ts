/**
 * Cuts the entries to send into batches and announces them (ANNOUNCE,
 * PROTOCOL.md §5.4, §6.2), keeping at most OPEN_BATCHES open: the one whose
 * files are being sent and one announced ahead, so the receiver's next plan
 * is on its way while a batch streams. Each open batch waits for its plan.
 */
import { FrameType, type FrameTypeCode } from "../protocol/frame.ts";
import { ANNOUNCE_WINDOW } from "../protocol/limits.ts";
import type { Entry, Plan, Totals } from "../protocol/messages.ts";
import type { Plans } from "./reply_reader.ts";
import type { Numbered, Outcomes } from "./send_types.ts";

/**
 * Batches are cut at this many entries (or fewer, if the receiver says so).
 * Up to OPEN_BATCHES batches are in flight, and their entries stay alive on
 * both sides until their files are acknowledged: 4 × 4096 of them kept each
 * process's heap (and RSS) growing on a 100,000-file tree, while 512 is as
 * fast and keeps it flat (docs/PERFORMANCE.md).
 */
export const BATCH_ENTRIES = 512;
/**
 * Batches open at once, the one being sent included: one more is announced
 * while a batch streams. The protocol allows ANNOUNCE_WINDOW (4); 2 keeps
 * fewer entries alive, at a cost in speed within the bench's noise
 * (docs/PERFORMANCE.md).
 */
export const OPEN_BATCHES = Math.min(2, ANNOUNCE_WINDOW);
/** Batches are cut at this many bytes of JSON (or the receiver's frame bound less 64). */
export const BATCH_BYTES = 512 * 1024;
/** What an ANNOUNCE's payload takes besides its entries (PROTOCOL.md §6.2). */
const ANNOUNCE_OVERHEAD = 64;

/** The bytes of `text` in UTF-8, counted without encoding it. */
export function utf8Length(text: string): number {
  let bytes = text.length;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) continue;
    if (c < 0x800) bytes += 1;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        bytes += 2; // a pair: 2 UTF-16 units, 4 bytes
        i++;
      } else bytes += 2;
    } else bytes += 2; // 3 bytes (a lone surrogate becomes U+FFFD, also 3)
  }
  return bytes;
}

/** Where ANNOUNCEs go (a FrameWriter). */
export interface AnnounceWriter {
  frame(type: FrameTypeCode, payload: Uint8Array): Promise<void>;
  flush(): Promise<void>;
}

/** An announced batch, waiting for its plan or being sent. */
export interface Batch {
  batch: number;
  entries: Numbered[];
  plan: Promise<Plan>;
}

/** The next entry to announce, or null when there are none left: in place where it need not wait. */
export type Take = () => Numbered | null | Promise<Numbered | null>;

export class Batcher {
  /** Open batches, oldest first. */
  #open: Batch[] = [];
  /** An entry taken that did not fit its batch: it opens the next one. */
  #carry: Numbered | null = null;
  #nextBatch = 0;
  /** An ANNOUNCE of this session carried the totals. */
  #totalsSent = false;
  readonly maxEntries: number;
  readonly maxBytes: number;
  readonly maxFrame: number;

  constructor(
    readonly writer: AnnounceWriter,
    readonly plans: Plans,
    /** WELCOME's limits. */
    limits: { maxBatchEntries: number; maxFrame: number },
    readonly outcomes: Outcomes,
    /** The transfer's totals once known (§5.4), else null. */
    readonly totals: () => Totals | null = () => null,
  ) {
    this.maxEntries = Math.min(BATCH_ENTRIES, limits.maxBatchEntries);
    this.maxFrame = limits.maxFrame;
    this.maxBytes = Math.min(BATCH_BYTES, limits.maxFrame - ANNOUNCE_OVERHEAD);
  }

  /** The oldest open batch: the one to send next. */
  get oldest(): Batch | undefined {
    return this.#open[0];
  }

  /** As many batches are open as may be. */
  get full(): boolean {
    return this.#open.length >= OPEN_BATCHES;
  }

  /** The oldest batch has been sent: it no longer counts as open. */
  sent(): void {
    this.#open.shift();
  }

  /**
   * Announces batches of what `take` yields until the window is full or it
   * runs dry, each sent as soon as it is cut; returns whether it may have more.
   */
  async fill(take: Take): Promise<boolean> {
    let more = true;
    while (more && this.#open.length < OPEN_BATCHES) {
      const entries: Numbered[] = [];
      /** Each entry's JSON, as its ANNOUNCE carries it. */
      const wire: string[] = [];
      let bytes = ANNOUNCE_OVERHEAD;
      while (entries.length < this.maxEntries) {
        const taken = this.#carry ?? take();
        const entry = taken instanceof Promise ? await taken : taken;
        this.#carry = null;
        if (entry === null) {
          more = false;
          break;
        }
        const item = entryJson(entry);
        const itemBytes = utf8Length(item) + 1;
        if (entries.length === 0 && ANNOUNCE_OVERHEAD + itemBytes > this.maxFrame) {
          this.outcomes.failed(
            entry.path,
            "its name is too long for the receiver's message limit",
          );
          continue;
        }
        if (bytes + itemBytes > this.maxBytes && entries.length > 0) {
          this.#carry = entry; // opens the next batch
          break;
        }
        entries.push(entry);
        wire.push(item);
        bytes += itemBytes;
      }
      if (entries.length === 0) break;
      const batch = this.#nextBatch++;
      this.#open.push({ batch, entries, plan: this.plans.expect(batch) });
      await this.writer.frame(FrameType.ANNOUNCE, this.#announce(batch, wire));
      // Out at once: the receiver plans it while the next batch is walked.
      await this.writer.flush();
    }
    return more;
  }

  /**
   * An ANNOUNCE's payload, `{"batch":…,"entries":[…]}` as encodeJson would
   * write it, from each entry's JSON made once: with the totals (PROTOCOL.md
   * §5.4) on the first one after they are known, if they fit.
   */
  #announce(batch: number, entries: string[]): Uint8Array {
    const head = `{"batch":${batch},"entries":[${entries.join(",")}]`;
    const totals = this.#totalsSent ? null : this.totals();
    if (totals !== null) {
      const payload = encoder.encode(`${head},"totals":${JSON.stringify(totals)}}`);
      if (payload.length <= this.maxFrame) {
        this.#totalsSent = true;
        return payload;
      }
    }
    return encoder.encode(`${head}}`);
  }
}

const encoder = new TextEncoder();

/**
 * An entry as ANNOUNCE carries it (PROTOCOL.md §5.4): the same text as
 * JSON.stringify of `{ id, path, kind, size, mtime, mode, digest }`, made
 * without the object; a text has no name, time or mode (§5.15).
 */
export function entryJson(entry: Entry): string {
  const { id, kind, size, digest } = entry;
  const head = kind === "text"
    ? `{"id":${id},"kind":"text","size":${size}`
    : `{"id":${id},"path":${JSON.stringify(entry.path)},"kind":"${kind}","size":${size},"mtime":${
      JSON.stringify(entry.mtime)
    },"mode":${entry.mode}`;
  return digest === undefined ? `${head}}` : `${head},"digest":${JSON.stringify(digest)}}`;
}
