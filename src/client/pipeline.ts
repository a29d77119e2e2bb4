/**
 * The transfer phase of a session, along the data: the walk's entries are
 * numbered and announced in batches (batcher.ts); each batch's plan says
 * what to do with each entry, and accepted files go to the file sender back
 * to back, without waiting for a round trip; the receiver's ACKs (read by
 * reply_reader.ts) settle each file, and files that arrived damaged are
 * announced and sent once more at the end.
 */
import { ProtocolError } from "../protocol/errors.ts";
import type { Ack, Decision, Totals } from "../protocol/messages.ts";
import { type AnnounceWriter, Batcher, type Take } from "./batcher.ts";
import type { FileSender } from "./file_sender.ts";
import type { Plans } from "./reply_reader.ts";
import type { ContentDigest } from "./content_digest.ts";
import type { Numbered, Outcomes } from "./send_types.ts";
import type { WalkItem, WalkItems } from "./walk.ts";

/** Files sent but not yet acknowledged before the sender waits (4 × the receiver's ACK batch). */
export const MAX_UNACKED = 2048;
/** Damaged files kept for a second try; beyond this they are reported failed. */
export const MAX_RESENDS = 10_000;

/** What the pipeline waits on: plans, and the next ACK (a ReplyReader). */
export interface Replies extends Plans {
  nextAck(): Promise<void>;
}

/** What sends one accepted file (a FileSender). */
export type Files = Pick<FileSender, "send">;

export interface PipelineOptions {
  /** WELCOME's limits. */
  limits: { maxBatchEntries: number; maxFrame: number };
  /** Both sides named the resume feature: offers may come. */
  resume: boolean;
  /** Both sides named the sync feature: a skip may say `unchanged`, an Ack `replaced`. */
  sync?: boolean;
  /**
   * `send --checksum`: gives each file entry its digest before it is announced (content_digest.ts);
   * returns why the file could not be read, or null.
   */
  checksum?: ContentDigest | null;
  /** The sources' totals once counted elsewhere, else null. */
  totals?: (() => Totals | null) | undefined;
}

export class Pipeline {
  /** Accepted files awaiting their acknowledgement, by id. */
  #unacked = new Map<number, Numbered>();
  /** Files that arrived damaged, to send once more. */
  #resends: Numbered[] = [];
  #nextId = 0;
  /** What this session's walk yielded so far, and whether it has ended (then these are the totals). */
  #walked: Totals = { files: 0, bytes: 0 };
  #walkEnded = false;
  #batches: Batcher;
  #resume: boolean;
  #sync: boolean;
  #checksum: ContentDigest | null;

  constructor(
    readonly writer: AnnounceWriter,
    readonly replies: Replies,
    readonly files: Files,
    readonly outcomes: Outcomes,
    opts: PipelineOptions,
  ) {
    this.#resume = opts.resume;
    this.#sync = opts.sync === true;
    this.#checksum = opts.checksum ?? null;
    const counted = opts.totals ?? (() => null);
    this.#batches = new Batcher(
      writer,
      replies,
      opts.limits,
      outcomes,
      () => counted() ?? (this.#walkEnded ? this.#walked : null),
    );
  }

  /**
   * A file of the walk, in the totals: each one the pipeline takes, and each one a sync leaves
   * out because the receiver listed it (listing_filter.ts), which the sources hold all the same.
   */
  countWalked(size: number | null): void {
    const { bytes } = this.#walked;
    this.#walked.files++;
    this.#walked.bytes = bytes === null || size === null ? null : bytes + size;
  }

  /** Accepted files the receiver has not acknowledged (yet). */
  get unacknowledged(): Iterable<Numbered> {
    return this.#unacked.values();
  }

  /** Sends everything `items` (a walk) yields, then the damaged files again; returns once all is acknowledged. */
  async run(items: WalkItems): Promise<void> {
    const pull = items.pull?.bind(items) ??
      (() => items.next().then((next) => next.done ? null : next.value));
    // In place while the walk does not wait (no promise per entry), else through promises.
    const fromWalk: Take = () => {
      for (;;) {
        const pulled = pull();
        const taken = pulled instanceof Promise
          ? pulled.then((item) => this.#take(item))
          : this.#take(pulled);
        if (taken instanceof Promise) {
          return taken.then((entry) => entry === undefined ? fromWalk() : entry);
        }
        if (taken !== undefined) return taken;
      }
    };
    try {
      await this.#send(fromWalk);
    } finally {
      // A session that ends mid-walk (the connection lost, a protocol error) closes the
      // folders the walk holds open; a retry walks anew. Nothing to do after a whole walk.
      await items.return?.();
    }
    // Files that arrived damaged get one more try, once all acknowledgements are in.
    while (true) {
      await this.#allAcknowledged();
      if (this.#resends.length === 0) break;
      const again = this.#resends.splice(0).map((e) => ({ ...e, id: this.#nextId++ }));
      await this.#send(() => again.shift() ?? null);
    }
  }

  /**
   * The walk's next item as an entry to announce, numbered; null at the walk's
   * end; undefined for an item only reported (skipped, failed).
   */
  #take(item: WalkItem | null): Numbered | null | undefined | Promise<Numbered | undefined> {
    if (item === null) {
      this.#walkEnded = true;
      return null;
    }
    if (item.type !== "entry") {
      if (item.type === "skipped") this.outcomes.skipped(item.path, item.reason);
      else this.outcomes.failed(item.path, item.reason);
      return undefined;
    }
    if (item.entry.kind === "file") this.countWalked(item.entry.size);
    // The walk's entry becomes this session's (each session walks anew): numbered in place.
    const entry = item.entry as Numbered;
    entry.id = this.#nextId++;
    if (this.#checksum !== null && entry.kind === "file" && entry.source !== null) {
      return this.#checksummed(entry, this.#checksum);
    }
    return entry;
  }

  /** `send --checksum`: the entry with its digest, or undefined if it could not be read (failed). */
  async #checksummed(entry: Numbered, checksum: ContentDigest): Promise<Numbered | undefined> {
    const failure = await checksum(entry);
    if (failure === null) return entry;
    this.outcomes.failed(entry.path, failure);
    return undefined;
  }

  /** Announces everything `take` yields and sends the accepted files. */
  async #send(take: Take): Promise<void> {
    const batches = this.#batches;
    let more = await batches.fill(take);
    for (let open = batches.oldest; open !== undefined; open = batches.oldest) {
      const { batch, entries, plan: planned } = open;
      await this.writer.flush();
      const plan = await planned;
      if (plan.decisions.length !== entries.length) {
        throw new ProtocolError("bad-message", `plan ${batch} does not match its batch`);
      }
      for (let i = 0; i < entries.length; i++) {
        // Both are entries.length long (checked above).
        const entry = entries[i]!;
        const decision = plan.decisions[i]!;
        if (decision.id !== entry.id) {
          throw new ProtocolError("bad-message", `plan ${batch} is out of order`);
        }
        const sending = this.#follow(entry, decision);
        if (sending !== undefined) await sending;
        // Keep the receiver's plans coming while this batch streams.
        if (more && !batches.full) more = await batches.fill(take);
      }
      batches.sent();
      if (more) more = await batches.fill(take);
    }
  }

  async #allAcknowledged(): Promise<void> {
    while (this.#unacked.size > 0) {
      // The signal is taken before the flush: an ACK read while the flush waits resolves it.
      const next = this.replies.nextAck();
      await this.writer.flush();
      await next;
    }
  }

  /**
   * Does what `decision` says with `entry`: a promise while a file is sent,
   * else nothing (an outcome is settled in place, without an async frame).
   */
  #follow(entry: Numbered, decision: Decision): Promise<void> | undefined {
    switch (decision.action) {
      case "have":
        this.outcomes.already(entry.path, entry.size ?? 0);
        return;
      case "skip":
        if (decision.unchanged === true) {
          // Only a file of known size can have been compared; a directory is never "unchanged".
          if (!this.#sync || entry.kind !== "file" || entry.size === null) {
            throw new ProtocolError(
              "bad-message",
              `the receiver says ${entry.path} is unchanged, which it cannot know`,
            );
          }
          this.outcomes.unchanged(entry.path, entry.size);
          return;
        }
        this.outcomes.skipped(
          entry.path,
          `skipped by the receiver: ${decision.reason ?? "no reason given"}`,
        );
        return;
      case "refuse":
        this.outcomes.failed(
          entry.path,
          `refused by the receiver: ${decision.reason ?? "no reason given"}`,
        );
        return;
    }
    if (entry.kind === "dir") return;
    const offset = decision.offset ?? 0;
    if (
      offset > 0 &&
      (!this.#resume || entry.kind === "text" || entry.size === null || offset > entry.size)
    ) {
      throw new ProtocolError("bad-message", "the receiver offered a resume that cannot be");
    }
    if (this.#unacked.size >= MAX_UNACKED) return this.#sendOnceAcked(entry, offset, decision);
    this.#unacked.set(entry.id, entry);
    return this.files.send(entry, offset, decision.prefix);
  }

  /** Sends `entry` once fewer than MAX_UNACKED files wait for their acknowledgement. */
  async #sendOnceAcked(entry: Numbered, offset: number, decision: Decision): Promise<void> {
    while (this.#unacked.size >= MAX_UNACKED) {
      await this.writer.flush();
      await this.replies.nextAck();
    }
    this.#unacked.set(entry.id, entry);
    await this.files.send(entry, offset, decision.prefix);
  }

  /** What one Ack says of a file sent; an Ack for no file sent is a protocol error. */
  acknowledged(ack: Ack): void {
    const entry = this.#unacked.get(ack.id);
    if (!entry) throw new ProtocolError("bad-sequence", `ACK for unknown id ${ack.id}`);
    this.#unacked.delete(ack.id);
    if (ack.replaced === true && !this.#sync) {
      throw new ProtocolError("bad-message", "ACK says replaced, but the receiver lacks sync");
    }
    if (ack.ok && entry.kind === "text") {
      this.outcomes.textDelivered(entry.size ?? 0);
    } else if (ack.ok) {
      const resumed = entry.resumed ?? 0;
      this.outcomes.delivered(
        entry.path,
        ack.name ?? entry.path,
        (entry.size ?? 0) - resumed,
        resumed,
        ack.replaced === true,
        entry.sha256,
      );
    } else if (ack.skipped) {
      this.outcomes.skipped(
        entry.path,
        `skipped by the receiver: ${ack.reason ?? "already exists"}`,
      );
    } else if (ack.retry && !entry.resend && this.#resends.length < MAX_RESENDS) {
      this.outcomes.emit({
        type: "warning",
        message: `${
          entry.kind === "text" ? "the text" : entry.path
        } arrived damaged (${ack.reason}); sending it again`,
      });
      this.#resends.push({ ...entry, resend: true });
    } else {
      this.outcomes.failed(entry.path, ack.reason ?? "failed on the receiver");
    }
  }
}
