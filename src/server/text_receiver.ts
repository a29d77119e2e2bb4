/**
 * A text entry's data (PROTOCOL.md §5.15): a short message for the person receiving, held in
 * memory (at most MAX_TEXT_BYTES, its announced size), checked at FILE_END like a file's
 * (length, digest) and as UTF-8, and never written anywhere. The ack queue acknowledges it once
 * it has been reported (shown).
 */
import type { FileEnd } from "../protocol/frame.ts";
import type { Digest } from "../protocol/digests.ts";
import type { Entry } from "../protocol/messages.ts";
import { Refusal } from "./inbox.ts";
import { DamagedData } from "./incoming_file.ts";

const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

export class TextReceiver {
  #buf = new Uint8Array(0);
  #length = 0;
  #entry: Entry | null = null;
  #failed: Refusal | null = null;

  /** DATA for the text `entry` (the head of the queue). */
  add(entry: Entry, chunk: Uint8Array): void {
    this.#begin(entry);
    if (this.#failed !== null) return;
    const size = entry.size!;
    if (this.#length + chunk.length > size) {
      this.#failed = new DamagedData(`the sender sent more than the ${size} bytes it announced`);
      return;
    }
    this.#buf.set(chunk, this.#length);
    this.#length += chunk.length;
  }

  /** FILE_ABORT: the sender gave up on it. */
  abandon(entry: Entry, reason: string): void {
    this.#begin(entry);
    this.#failed ??= new Refusal(`the sender gave up on it: ${reason}`);
  }

  /** FILE_END (`end`; null: FILE_ABORT): the text, or why it is not taken. */
  end(entry: Entry, end: FileEnd | null, digest: Digest): { text: string } | { failure: Refusal } {
    this.#begin(entry);
    const data = this.#buf.subarray(0, this.#length);
    const failed = this.#failed;
    this.#entry = null;
    this.#buf = new Uint8Array(0);
    if (failed !== null) return { failure: failed };
    if (end === null) return { failure: new Refusal("the sender gave up on it") };
    if (data.length !== entry.size) {
      return {
        failure: new DamagedData(`received ${data.length} bytes, but ${entry.size} were announced`),
      };
    }
    if (end.length !== data.length) {
      return {
        failure: new DamagedData(
          `received ${data.length} bytes, but the sender says it sent ${end.length}`,
        ),
      };
    }
    const actual = digest.of(data);
    if (actual.length !== end.digest.length || !actual.every((b, i) => b === end.digest[i])) {
      return { failure: new DamagedData("digest mismatch: the data was altered in transit") };
    }
    try {
      return { text: decoder.decode(data) };
    } catch {
      return { failure: new Refusal("the text is not valid UTF-8") };
    }
  }

  #begin(entry: Entry): void {
    if (this.#entry === entry) return;
    this.#entry = entry;
    this.#buf = new Uint8Array(entry.size ?? 0);
    this.#length = 0;
    this.#failed = null;
  }
}
