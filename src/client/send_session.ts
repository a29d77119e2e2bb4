/**
 * The sender: `send()` runs sessions until the transfer is complete. After a
 * dropped connection it reconnects (reconnect.ts) and the receiver's plan
 * tells it what it already has and where partial files resume.
 *
 * A session follows the data, one module a step:
 * - handshake.ts: the preambles, the key exchange on the code, HELLO and
 *   WELCOME, over a FramedLink that switches to the secure channel;
 * - pipeline.ts: the walk's entries announced in batches (batcher.ts), one
 *   batch ahead of the one being sent, each batch's plan followed;
 * - file_sender.ts: one accepted file's FILE_START, DATA and FILE_END;
 * - reply_reader.ts: a separate task reading PLAN, ACK and BYE, so no file
 *   ever waits for a round trip;
 * - send_errors.ts: every failure in the sender's words.
 */
import { bytesToHex, utf8ToBytes } from "../protocol/bytes.ts";
import { FerryError } from "../errors.ts";
import { FrameType } from "../protocol/frame.ts";
import { encodeJson, type Totals } from "../protocol/messages.ts";
import type { ProtocolError } from "../protocol/errors.ts";
import { digestHex, type DigestName, loadDigest } from "../protocol/digests.ts";
import { LIST_MAX_ROOTS, LIST_SALT_BYTES } from "../protocol/listing.ts";
import { MAX_HOST_UNITS } from "../protocol/limits.ts";
import { isConnectionError } from "../transport/connection_errors.ts";
import { FramedLink } from "../transport/framed_link.ts";
import { KeepAlive } from "../transport/keep_alive.ts";
import { nativeDigests } from "../transport/native_digests.ts";
import { type Address, connect, formatAddress } from "../transport/tcp.ts";
import { Watchdog } from "../transport/watchdog.ts";
import { contentDigest } from "./content_digest.ts";
import { FileSender } from "./file_sender.ts";
import { FirstPlanWait } from "./first_plan_wait.ts";
import { handshake } from "./handshake.ts";
import { sleep } from "../transport/timer.ts";
import { opensslSha256Into } from "../transport/sha256_openssl.ts";
import { loadShortHashes, sha256 } from "../transport/short_hashes.ts";
import { ListingFilter } from "./listing_filter.ts";
import { Pipeline } from "./pipeline.ts";
import { withReconnects } from "./reconnect.ts";
import { ReplyReader } from "./reply_reader.ts";
import { SendErrors } from "./send_errors.ts";
import { noResult, Outcomes, type SendEvent, type SendResult } from "./send_types.ts";
import { type Source, walk, type Walker, type WalkItem } from "./walk.ts";

export type { SendEvent, SendResult } from "./send_types.ts";

export interface SendOptions {
  to: Address;
  sources: Source[];
  connectTimeoutMs: number;
  idleTimeoutMs: number;
  /** Reconnections after a dropped connection. */
  retries: number;
  /** The receiver's code (null or absent: none given). */
  code?: string | null;
  /** Use the plain channel (no code, no encryption); the receiver must allow it. */
  plaintext?: boolean;
  /** First backoff before reconnecting; doubles each time, up to 30 s. */
  retryDelayMs?: number;
  /** The digests to offer, best first (default: DIGEST_NAMES, xxh128 first). */
  digests?: readonly DigestName[] | undefined;
  /**
   * `send --checksum`: announce each file with its digest, so that a receiver under `update`
   * compares content rather than size and time. Needs the receiver's "sync" feature.
   */
  checksum?: boolean;
  /** The sources' totals once counted (send.ts's second walk), else null; told to the receiver. */
  totals?: () => Totals | null;
  /** A text to deliver instead of files (`send --text`, UTF-8, at most MAX_TEXT_BYTES). */
  text?: Uint8Array | undefined;
  software: string;
  onEvent: (event: SendEvent) => void;
}

export async function send(opts: SendOptions): Promise<SendResult> {
  const started = performance.now();
  const total = noResult();
  const transfer = await transferId(opts);
  const reconnects = {
    retries: opts.retries,
    firstDelayMs: opts.retryDelayMs,
    onRetry: (attempt: number, delayMs: number, reason: string) =>
      opts.onEvent({ type: "retry", attempt, delayMs, reason }),
  };
  return await withReconnects(reconnects, async (attempt) => {
    let session: SendSession | null = null;
    try {
      const conn = await connect(opts.to, opts.connectTimeoutMs);
      session = new SendSession(conn, opts, transfer, attempt);
      const tally = await session.run();
      // Files delivered by earlier sessions of this run come back as `have` or `unchanged`.
      let earlier = total.files;
      total.files += tally.files;
      total.bytes += tally.bytes;
      total.resumedBytes += tally.resumedBytes;
      total.already = Math.max(0, tally.already - earlier);
      earlier = Math.max(0, earlier - tally.already);
      total.updated += tally.updated;
      // Each session decides every entry again: the last one's count is the transfer's.
      total.unchanged = Math.max(0, tally.unchanged - earlier);
      total.texts += tally.texts;
      total.skipped = tally.skipped;
      total.failed = tally.failed;
      total.seconds = (performance.now() - started) / 1000;
      return total;
    } catch (err) {
      if (session) {
        const tally = session.tally;
        total.files += tally.files;
        total.bytes += tally.bytes;
        total.resumedBytes += tally.resumedBytes;
        total.updated += tally.updated;
      }
      throw err;
    } finally {
      session?.stop();
    }
  });
}

/**
 * Names this transfer (this host, these sources) the same way on every run,
 * so the receiver can tell a rerun after an interruption (resume) from a new
 * transfer (a new copy). The receiver is not part of it: each receiver keeps
 * its own record, and the same receiver may be reached by another address.
 */
async function transferId(opts: SendOptions): Promise<string> {
  await loadShortHashes();
  const host = hostName() ?? "";
  const sources: unknown[] = await Promise.all(opts.sources.map(async (s) => {
    const real = s.info === null ? "-" : await Deno.realPath(s.arg).catch(() => s.arg);
    return [real, s.name];
  }));
  // A text names its transfer by its digest: two different texts are two transfers.
  if (opts.text !== undefined) {
    sources.push(["text", bytesToHex(sha256(opts.text))]);
  }
  return bytesToHex(sha256(utf8ToBytes(JSON.stringify([host, sources])))).slice(0, 32);
}

/** This machine's name (for HELLO's `host` and the transfer's name), or null if not permitted. */
function hostName(): string | null {
  try {
    return Deno.hostname().slice(0, MAX_HOST_UNITS);
  } catch {
    return null;
  }
}

/** What a session sends: the text alone (`send --text`), or the walk of the sources. */
async function* textItems(text: Uint8Array): AsyncGenerator<WalkItem> {
  yield {
    type: "entry",
    entry: {
      path: "(text)",
      kind: "text",
      size: text.length,
      mtime: 0,
      mode: 0,
      source: null,
      text,
    },
  };
}

/** One connection: the handshake, the transfer, DONE and BYE, and its failure in words. */
class SendSession {
  #watchdog: Watchdog;
  #link: FramedLink;
  #errors: SendErrors;
  #replies: ReplyReader | null = null;
  #files: FileSender | null = null;
  #outcomes: Outcomes;
  /** The longer wait for the first PLAN (`serve --ask`). */
  #firstPlan: FirstPlanWait | null = null;
  /** stop() was called: a listing that settles later starts no wait. */
  #stopped = false;

  constructor(
    readonly conn: Deno.TcpConn,
    readonly opts: SendOptions,
    readonly transfer: string,
    readonly attempt: number,
  ) {
    this.#errors = new SendErrors(formatAddress(opts.to), opts.idleTimeoutMs, attempt);
    this.#watchdog = new Watchdog(opts.idleTimeoutMs, () => this.#close());
    this.#link = new FramedLink(conn, () => this.#watchdog.touch());
    this.#outcomes = new Outcomes(opts.onEvent);
  }

  /** What this session did so far. */
  get tally(): SendResult {
    return this.#outcomes.tally;
  }

  stop(): void {
    this.#stopped = true;
    this.#firstPlan?.stop();
    this.#watchdog.stop();
    this.#files?.close();
    this.#close();
  }

  #close(): void {
    try {
      this.conn.close();
    } catch { /* already closed */ }
  }

  async run(): Promise<SendResult> {
    try {
      const agreed = await handshake(this.#link, {
        software: this.opts.software,
        transfer: this.transfer,
        code: this.opts.code ?? null,
        plaintext: this.opts.plaintext === true,
        digests: this.opts.digests,
        host: hostName(),
      }, this.#errors);
      if (this.opts.text !== undefined && !agreed.text) throw this.#errors.noText();
      this.opts.onEvent({
        type: "connected",
        to: this.#errors.where,
        server: agreed.welcome.software,
        attempt: this.attempt,
        cipher: agreed.cipher,
        digest: agreed.digest.name,
      });
      const { reader, writer } = this.#link;
      if (this.opts.checksum === true && !agreed.sync) await this.#refuseChecksum();
      // The first PLAN may be held while a person decides (§6.5): a longer wait, from the first
      // batch on (after a listing, which has the usual deadline: nobody is asked for it).
      const waitForPlan = () => {
        if (this.#stopped) return;
        this.#firstPlan = new FirstPlanWait(
          this.#errors,
          this.#watchdog,
          this.opts.idleTimeoutMs,
          this.opts.onEvent,
        );
      };
      const replies = new ReplyReader(reader, this.#errors, {
        planned: () => this.#firstPlan?.planned(),
        acknowledged: (ack) => pipeline.acknowledged(ack),
        explain: (err) => this.#explainFailure(err),
        close: () => this.#close(),
      });
      const files = new FileSender(
        writer,
        agreed.digest,
        this.#outcomes.emit,
        () => replies.failure !== null,
      );
      this.#files = files;
      const pipeline = new Pipeline(writer, replies, files, this.#outcomes, {
        limits: agreed.welcome.limits,
        resume: agreed.resume,
        sync: agreed.sync,
        checksum: this.opts.checksum === true
          ? contentDigest(agreed.digest, () => agreed.sync ? keepAlive.tick() : Promise.resolve())
          : null,
        totals: this.opts.totals,
      });
      replies.sync = agreed.sync;
      const keepAlive = new KeepAlive(writer);
      this.#replies = replies;
      replies.start();
      const text = this.opts.text;
      const items = text === undefined ? walk(this.opts.sources) : textItems(text);
      // A sync asks what the receiver has first, and announces only the rest (§5.16).
      const listing = text === undefined && agreed.listing && this.opts.checksum !== true
        ? await this.#list(
          replies,
          items as Walker,
          agreed.welcome.limits.maxFrame,
          (size) => pipeline.countWalked(size),
        )
        : null;
      if (listing === null) waitForPlan();
      else listing.settled.then(waitForPlan);
      await pipeline.run(listing ?? items);
      if (listing !== null) {
        await writer.frame(FrameType.LISTED, encodeJson(listing.unchanged));
      }
      await writer.frame(FrameType.DONE, new Uint8Array(0));
      await writer.flush();
      await replies.bye();
      await replies.reading;
      // End our direction with the channel's authenticated close record (best effort: all is done).
      await this.#link.stream.closeWrite?.().catch(() => {});
      for (const entry of pipeline.unacknowledged) {
        this.#outcomes.failed(entry.path, "the receiver never acknowledged it");
      }
    } catch (err) {
      throw await this.#explain(err);
    }
    return this.tally;
  }

  /**
   * Sends LIST for the sources' top-level names (§5.16) and gives the walk that leaves out what
   * the receiver lists; null where no source has a name there (standard input only).
   */
  async #list(
    replies: ReplyReader,
    walk: Walker,
    maxFrame: number,
    counted: (size: number) => void,
  ): Promise<ListingFilter | null> {
    const roots = [...new Set(this.opts.sources.filter((s) => s.info !== null).map((s) => s.name))];
    if (roots.length === 0 || roots.length > LIST_MAX_ROOTS) return null;
    const salt = crypto.getRandomValues(new Uint8Array(LIST_SALT_BYTES));
    const list = encodeJson({ salt: digestHex(salt), roots });
    if (list.length > maxFrame) return null; // more names than the receiver takes in one frame
    const listing = replies.expectListing();
    const writer = this.#link.writer;
    await writer.frame(FrameType.LIST, list);
    await writer.flush();
    const sha256 = (await loadDigest("sha256", nativeDigests())).of;
    return new ListingFilter(
      walk,
      listing,
      salt,
      sha256,
      this.#outcomes,
      counted,
      opensslSha256Into(),
    );
  }

  /**
   * `--checksum` needs the receiver's "sync" feature, which it lacks: the session ends with
   * nothing announced (DONE, so the receiver counts it complete and keeps no marker of it).
   */
  async #refuseChecksum(): Promise<never> {
    try {
      await this.#link.writer.frame(FrameType.DONE, new Uint8Array(0));
      await this.#link.writer.flush();
      // Its BYE, for a second at most: the receiver then ends the session as complete.
      await Promise.race([this.#link.reader.next(), sleep(1000)]);
    } catch {
      /* nothing was sent either way */
    }
    throw new FerryError(
      "unsupported",
      `${this.#errors.where} cannot compare content (its ferry does not support --checksum); ` +
        "nothing was sent",
      { hint: "send without --checksum, or update ferry on the receiver" },
    );
  }

  /** The clearest error for a failed session: the receiver's own word first. */
  async #explain(err: unknown): Promise<unknown> {
    const reading = this.#replies?.reading ?? Promise.resolve();
    if (!this.#replies?.failure && isConnectionError(err)) {
      // A write failed; the receiver may have said why just before closing. Give the reader a moment.
      await Promise.race([reading, sleep(500)]);
    }
    return this.#replies?.failure ?? await this.#explainFailure(err);
  }

  /** A failure in words (SendErrors.explain); the receiver hears of its protocol error first. */
  async #explainFailure(err: unknown): Promise<unknown> {
    const expired = this.#watchdog.expired;
    if (SendErrors.tellsReceiver(err, expired)) await this.#sendError(err);
    return this.#errors.explain(err, expired);
  }

  /** Tells the receiver about its protocol error before closing. */
  async #sendError(err: ProtocolError): Promise<void> {
    const writer = this.#link.writer;
    if (writer.busy) return;
    try {
      await writer.frame(FrameType.ERROR, encodeJson({ code: err.code, message: err.message }));
      await writer.flush();
    } catch { /* gone already */ }
  }
}
