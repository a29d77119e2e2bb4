/**
 * What the planner accepted and the data stream still owes: the accepted entries in announce
 * order (PROTOCOL.md §6.1: data comes for the first accepted file not yet ended), and the
 * session's byte total they draw on (--max-total).
 */
import { ProtocolError } from "../protocol/errors.ts";
import type { Entry } from "../protocol/messages.ts";
import { type HeldPartial, type Inbox, Refusal } from "./inbox.ts";
import type { Resume } from "./incoming_file.ts";

/** An accepted entry waiting for its turn in the data stream. */
export interface Accepted {
  entry: Entry;
  /** Absolute directory: the parent for a file, the directory itself for a dir. */
  dir: string;
  name: string;
  /** The claimed partial slot (resumable files only). */
  partial: HeldPartial | null;
  /** The resume offer made in the plan, if any. */
  offer: Resume | null;
  /** Bytes reserved against the free space. */
  reserved: number;
  /** Under `update`: a file or link was at its name when planned, which it replaces (Ack `replaced`). */
  replaces?: boolean;
}

/** The accepted entries not yet finished, first in, first out. */
export class AcceptedQueue {
  #items: Accepted[] = [];
  #head = 0;

  /** Releases what a finished or abandoned entry holds of `inbox`: its partial claim, its space. */
  constructor(readonly inbox: Pick<Inbox, "releasePartial" | "reserved">) {}

  /** Entries accepted and not yet finished. */
  get pending(): number {
    return this.#items.length - this.#head;
  }

  push(item: Accepted): void {
    if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    this.#items.push(item);
  }

  /** The file whose data comes next; `id`, when given, must be its id. */
  head(what: string, id?: number): Accepted {
    const item = this.#items[this.#head];
    if (!item) throw new ProtocolError("bad-sequence", `${what} but no announced file is pending`);
    if (id !== undefined && id !== item.entry.id) {
      throw new ProtocolError("bad-sequence", `${what} for id ${id}, expected id ${item.entry.id}`);
    }
    return item;
  }

  /** Whether the head is a directory (`takeDir` would take it). */
  get dirNext(): boolean {
    return this.#items[this.#head]?.entry.kind === "dir";
  }

  /** Takes the head off if it is a directory (directories come after their contents). */
  takeDir(): Accepted | null {
    const item = this.#items[this.#head];
    if (item === undefined || item.entry.kind !== "dir") return null;
    this.#head++;
    return item;
  }

  /** The head file ended: off the queue, and what it held is released. */
  finish(item: Accepted): void {
    this.#head++;
    this.release(item);
  }

  /** Releases every entry still queued (the session ended). */
  releaseAll(): void {
    for (let i = this.#head; i < this.#items.length; i++) this.release(this.#items[i]!);
    this.#items = [];
    this.#head = 0;
  }

  release(item: Accepted): void {
    if (item.partial) this.inbox.releasePartial(item.partial);
    this.inbox.reserved -= item.reserved;
    item.reserved = 0;
  }
}

/** The session's bytes against --max-total: announced sizes, and streamed files' bytes as they come. */
export class SessionBytes {
  announced = 0;
  streamed = 0;

  constructor(readonly max: number) {}

  /** Whether `size` more announced bytes stay within the limit. */
  fits(size: number): boolean {
    return this.announced + size <= this.max;
  }

  /** Counts `n` bytes of a streamed file (size known only as it arrives); refuses them past the limit. */
  stream(n: number): void {
    if (n > this.max - this.announced - this.streamed) throw new Refusal(this.overLimit);
    this.streamed += n;
  }

  get overLimit(): string {
    return `over the receiver's limit of ${this.max} bytes per session`;
  }
}
