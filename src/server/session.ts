/**
 * One sender's session on the receiver, from connection to close: the handshake
 * (handshake.ts), then the loop that routes the sender's frames (session_loop.ts), and around
 * them what ends a session from outside (its deadlines, the server stopping, a newer session of
 * its transfer), how it ended, and letting go of what it holds. Its failures end this session
 * only.
 */
import { ProtocolError } from "../protocol/errors.ts";
import { FrameType } from "../protocol/frame.ts";
import { encodeJson } from "../protocol/messages.ts";
import { Channel, encodePreamble, PROTOCOL_VERSION } from "../protocol/preamble.ts";
import { type ByteStream, closeGracefully } from "../transport/byte_stream.ts";
import { isConnectionError } from "../transport/connection_errors.ts";
import { FramedLink } from "../transport/framed_link.ts";
import { Watchdog } from "../transport/watchdog.ts";
import type { Ask } from "./ask.ts";
import type { CodeGuard } from "./code_guard.ts";
import { Handshake, lockedOut } from "./handshake.ts";
import type { ConflictPolicy, Inbox } from "./inbox.ts";
import type { Folders } from "./folders.ts";
import { openFolders } from "./open_folders.ts";
import type { EndCause, EndedEarly, ServerEvent } from "./server_events.ts";
import type { ServerLimits } from "./server_limits.ts";
import { SessionLoop } from "./session_loop.ts";
import { Tally } from "./tally.ts";

export type { EndCause, ServerEvent } from "./server_events.ts";

export interface SessionOptions {
  inbox: Inbox;
  /** Counts wrong codes per address; shared by the server's sessions. */
  guard: CodeGuard;
  /** Also accept the plain channel (no code, no encryption): `serve --plaintext`. */
  plaintext?: boolean;
  /**
   * Called when a session names its transfer; resolves once any older
   * session of the same transfer (a stale connection of a sender that has
   * reconnected) has ended, so its partial files are free to resume.
   */
  claimTransfer?: (transfer: string, session: ReceiveSession) => Promise<void>;
  onConflict: ConflictPolicy;
  limits: ServerLimits;
  /** The code senders must know; null accepts anyone (`serve --open`). */
  code?: string | null;
  software: string;
  onEvent: (event: ServerEvent) => void;
  /** How long a session closed from outside may take to wind down (default STALL_GRACE_MS). */
  stallGraceMs?: number;
  /** How long the sender has for its preamble (default DEFAULT_PRE_AUTH.firstFrameMs). */
  firstFrameMs?: number;
  /** Called once the sender is past the key exchange (or on the plain channel, its preamble). */
  onAuthenticated?: () => void;
  /** `serve --ask`: who decides on each session, and how long they have (PROTOCOL.md §6.5). */
  ask?: { ask: Ask; timeoutMs: number } | undefined;
}

/**
 * How long a session that was closed from outside (its idle or handshake
 * deadline, the server stopping, a newer session of its transfer) may take
 * to wind down before it is dropped. Once its connection is closed, only a
 * storage call that does not return (a hung disk or network file system)
 * or the wrong-code delay (at most 5 s) keeps it going. A dropped session's
 * run() ends; what it holds (its open file, claims, reservations) is let go
 * of when that call returns.
 */
export const STALL_GRACE_MS = 10_000;

export class ReceiveSession {
  /** The connection's frames: plain, then inside the secure channel. */
  #link: FramedLink;
  #handshake: Handshake;
  /** The frames after WELCOME; null until then. */
  #loop: SessionLoop | null = null;
  #tally = new Tally();
  #watchdog: Watchdog | null = null;
  /** The handshake's fixed deadline, and how much of it is left while it is paused. */
  #deadline: ReturnType<typeof setTimeout> | undefined;
  #deadlineAt = 0;
  #handshakeExpired = false;
  /** The sender's preamble did not come within firstFrameMs. */
  #silentExpired = false;
  #transfer: string | null = null;
  /** DIR's folders as this session sees them: created, placed into, fsynced (folders.ts). */
  #folders: Folders;
  #startedAt = performance.now();
  #aborted: string | null = null;
  /** The ERROR code abort() was given. */
  #abortCode: string | null = null;
  /** abort()'s reply to the sender, under way or done. */
  #abortReply: Promise<void> = Promise.resolve();
  /** Ends run() early with this reason once the session is closed from outside and stalls. */
  #drop: ((reason: string) => void) | null = null;
  #dropTimer: ReturnType<typeof setTimeout> | undefined;
  /** Closed from outside: the work stops before its next frame or placing (it may have been dropped). */
  #closedFromOutside = false;
  /** run() has reported the end: later events of a dropped session's work are not reported. */
  #ended = false;
  /** Settles when the session's work has really finished, dropped or not. */
  #settled: Promise<void> = Promise.resolve();
  #hasSettled = false;
  /** Waiting for an older session of its transfer to end (not on the disk). */
  #claiming = false;
  /** Aborts when the session is closed from outside (a question put to the person is withdrawn). */
  #closing = new AbortController();

  /** `host` is the sender's address (for the wrong-code guard); `peer` adds the port. */
  constructor(
    readonly id: number,
    readonly conn: ByteStream,
    readonly host: string,
    readonly peer: string,
    readonly opts: SessionOptions,
  ) {
    this.#link = new FramedLink(conn, () => this.#watchdog?.touch(), opts.limits.maxMessage);
    this.#folders = openFolders(opts.inbox);
    this.#handshake = new Handshake(id, this.#link, host, peer, opts, {
      report: (event) => this.#event(event),
      stopIfClosed: () => this.#stopIfClosed(),
      silent: () => {
        this.#silentExpired = true;
        this.#closeFromOutside();
      },
      aborted: () => this.#aborted !== null,
      claim: (transfer) => this.#claim(transfer),
    });
  }

  /**
   * Runs the session to its end. Never throws: failures end this session
   * only. Resolves at most STALL_GRACE_MS after the session was closed from
   * outside, even if a storage call has not returned (`settled` says when
   * it has).
   */
  async run(): Promise<void> {
    this.#event({ type: "session-start", session: this.id, peer: this.peer });
    const dropped = new Promise<string>((resolve) => this.#drop = resolve);
    const work = this.#work();
    this.#settled = work.then(() => {}, () => {}).finally(() => this.#hasSettled = true);
    let ended: EndedEarly | undefined;
    try {
      ended = await Promise.race([
        work,
        dropped.then((error) => ({ error, cause: this.#outsideCause() ?? "stopped" })),
      ]);
    } finally {
      clearTimeout(this.#dropTimer);
      this.#drop = null;
    }
    this.#ended = true;
    const tally = this.#tally;
    this.#event({
      type: "session-end",
      session: this.id,
      peer: this.peer,
      files: tally.files,
      bytes: tally.bytes,
      resumedBytes: tally.resumedBytes,
      already: tally.already,
      updated: tally.updated,
      unchanged: tally.unchanged,
      texts: tally.texts,
      failed: tally.failed,
      seconds: (performance.now() - this.#startedAt) / 1000,
      ...ended,
    });
  }

  /** Reports an event, until the session has ended (a dropped session's work goes on unheard). */
  #event(event: ServerEvent): void {
    if (this.#ended && event.type !== "session-end") return;
    this.opts.onEvent(event);
  }

  /** Settles once the session's work has finished, also after run() dropped it. */
  get settled(): Promise<void> {
    return this.#settled;
  }

  /** Dropped, and its work still waits on a storage call (not on an older session of its transfer). */
  get stuck(): boolean {
    return this.#ended && !this.#hasSettled && !this.#claiming;
  }

  /** The session itself: handshake, frames, and letting go of what it holds; how it ended early. */
  async #work(): Promise<EndedEarly | undefined> {
    const { opts } = this;
    let ended: EndedEarly | undefined;
    let clean = false;
    this.#armDeadline(opts.limits.handshakeTimeoutMs);
    try {
      const greeting = await this.#handshake.run();
      clearTimeout(this.#deadline);
      if (greeting === null) {
        // Its reply, if abort() answered first, goes out before the connection is closed.
        await this.#abortReply;
      } else {
        this.#watchdog = new Watchdog(opts.limits.idleTimeoutMs, () => this.#closeFromOutside());
        this.#loop = new SessionLoop({
          session: this.id,
          report: (event) => this.#event(event),
          link: this.#link,
          inbox: opts.inbox,
          folders: this.#folders,
          greeting,
          onConflict: opts.onConflict,
          limits: opts.limits,
          tally: this.#tally,
          stopIfClosed: () => this.#stopIfClosed(),
          ask: opts.ask === undefined ? undefined : {
            ask: opts.ask.ask,
            timeoutMs: opts.ask.timeoutMs,
            peer: this.peer,
            signal: this.#closing.signal,
            holdIdle: () => this.#watchdog?.hold() ?? (() => {}),
          },
        });
        await this.#loop.run();
        clean = true;
      }
    } catch (err) {
      ended = this.#describe(err);
      await this.#sendError(err);
    } finally {
      clearTimeout(this.#deadline);
      this.#watchdog?.stop();
      await this.#release(clean);
      this.#folders.close();
      this.#closeNow();
    }
    return ended;
  }

  /** Starts (or resumes) the handshake's fixed deadline, `ms` from now. */
  #armDeadline(ms: number): void {
    this.#deadlineAt = performance.now() + ms;
    this.#deadline = setTimeout(() => {
      this.#handshakeExpired = true;
      this.#closeFromOutside();
    }, ms);
  }

  /**
   * Takes over the transfer HELLO named. The wait for a superseded session is the receiver's,
   * not the sender's: it does not count against the handshake deadline (it is bounded by the
   * stall grace).
   */
  async #claim(transfer: string): Promise<void> {
    // A session already closed (a deadline, stopping) does not take its transfer over.
    this.#stopIfClosed();
    this.#transfer = transfer;
    clearTimeout(this.#deadline);
    const left = this.#deadlineAt - performance.now();
    this.#claiming = true;
    try {
      await this.opts.claimTransfer?.(transfer, this);
    } finally {
      this.#claiming = false;
    }
    this.#stopIfClosed();
    this.#armDeadline(Math.max(left, 0));
  }

  /**
   * Ends the session from outside (server shutdown): tells the sender, if
   * the connection is free to write on, then closes it. The file in
   * progress is kept as a resumable partial.
   */
  async abort(code: string, message: string): Promise<void> {
    this.#aborted = message;
    this.#abortCode = code;
    this.#abortReply = this.#tellAborted(code, message);
    await this.#abortReply;
    this.#closeFromOutside();
  }

  /** abort()'s ERROR, where the sender can read it; settles within a second. */
  async #tellAborted(code: string, message: string): Promise<void> {
    const { writer } = this.#link;
    if (writer.busy || this.#handshake.quiet) return;
    // Through the writer, so whatever it holds (our preamble, early in a session) goes first.
    const timer = setTimeout(() => this.#closeFromOutside(), 1000);
    try {
      if (this.#handshake.takePreamble()) {
        // The sender's preamble has not been read yet, so ours has not gone out: refuse as a
        // receiver at its limit does, behind a preamble (PROTOCOL.md §2).
        await writer.raw(encodePreamble({ version: PROTOCOL_VERSION, channel: Channel.plain }));
      }
      await writer.frame(FrameType.ERROR, encodeJson({ code, message }));
      await writer.flush();
    } catch { /* the peer is gone */ }
    clearTimeout(timer);
  }

  /** The transfer this session belongs to, once the handshake named it. */
  get transfer(): string | null {
    return this.#transfer;
  }

  #closeNow(): void {
    try {
      this.conn.close();
    } catch { /* already closed */ }
  }

  /**
   * Stops the work once the session was closed from outside: a dropped
   * session whose stuck call returns must not go on with frames it had
   * buffered, nor place files a newer session of its transfer may receive.
   */
  #stopIfClosed(): void {
    if (this.#closedFromOutside) throw new ProtocolError("truncated", "the session was closed");
  }

  /**
   * Closes the connection for a reason from outside the session's own
   * work, and drops the session if it has not wound down STALL_GRACE_MS
   * later (its work is then stuck in a storage call).
   */
  #closeFromOutside(): void {
    this.#closedFromOutside = true;
    this.#closing.abort();
    this.#closeNow();
    if (this.#drop === null || this.#dropTimer !== undefined) return;
    const grace = this.opts.stallGraceMs ?? STALL_GRACE_MS;
    this.#dropTimer = setTimeout(() => {
      const why = this.#endedFromOutside() ?? "closed";
      this.#drop?.(
        `${why}; dropped after ${grace / 1000} s more: a storage call in the receiving folder ` +
          "has not returned (a hung or very slow disk); what it holds is let go of when it does",
      );
    }, grace);
  }

  /** Lets go of what this session holds: its file (kept as a partial if cut off), claims and reservations. */
  async #release(clean: boolean): Promise<void> {
    await this.#loop?.release(clean);
    if (clean && this.#transfer !== null && this.#tally.failed === 0) {
      await this.opts.inbox.endTransfer(this.#transfer);
    }
  }

  /** Why the session was ended from outside (stopped, superseded, a deadline), if it was. */
  #endedFromOutside(): string | null {
    if (this.#aborted !== null) return this.#aborted;
    if (this.#silentExpired) return "timed out: the sender sent nothing";
    if (this.#handshakeExpired) return "timed out: the handshake took too long";
    if (this.#watchdog?.expired) return "timed out: the sender went quiet";
    return null;
  }

  /** The cause of an end from outside, if the session was ended from outside. */
  #outsideCause(): EndCause | null {
    if (this.#aborted !== null) return this.#abortCode === "superseded" ? "superseded" : "stopped";
    if (this.#silentExpired || this.#handshakeExpired || this.#watchdog?.expired) return "timeout";
    return null;
  }

  /** How the session ended early, said as what it is. */
  #describe(err: unknown): EndedEarly {
    const outside = this.#endedFromOutside();
    if (outside !== null) return { error: outside, cause: this.#outsideCause()! };
    if (this.#handshake.leftWithoutCode) {
      return {
        error: "a sender without the code tried to connect (it left when asked for the code)",
        cause: "no-code",
      };
    }
    if (err instanceof ProtocolError) {
      if (err.code === "wrong-code") return { error: err.message, cause: "wrong-code" };
      if (err.code === "locked-out") {
        return { error: lockedOut(this.opts.guard, this.host), cause: "locked-out" };
      }
      if (err.code === "busy") return { error: err.message, cause: "busy" };
      if (err.code === "peer-error") return { error: err.message, cause: "sender-error" };
      if (err.code === "declined") return { error: err.message, cause: "declined" };
    }
    if (isConnectionError(err)) {
      return {
        error: this.#transfer === null
          ? "the sender disconnected"
          : "the sender disconnected (its transfer can resume)",
        cause: "disconnected",
      };
    }
    if (err instanceof ProtocolError) {
      return { error: `protocol error: ${err.message}`, cause: "protocol" };
    }
    return {
      error: `internal error: ${err instanceof Error ? err.stack ?? err.message : String(err)}`,
      cause: "internal",
    };
  }

  /** Tells the sender why the session ends, when there is someone to tell. */
  async #sendError(err: unknown): Promise<void> {
    if (this.#endedFromOutside() !== null) return;
    if (isConnectionError(err)) return;
    let code = "internal";
    let message = "the receiver failed; see its log";
    if (err instanceof ProtocolError) {
      // Not to a peer that is not ferry, nor in answer to the sender's own ERROR, nor to a
      // sender that failed the code (it knows, or it is guessing and learns nothing more).
      if (err.code === "not-ferry" || err.code === "peer-error" || err.code === "wrong-code") {
        return;
      }
      code = err.code;
      message = err.message;
    }
    try {
      await this.#link.writer.frame(FrameType.ERROR, encodeJson({ code, message }));
      await this.#link.writer.flush();
      await closeGracefully(this.#link.stream);
    } catch { /* the peer is gone */ }
  }
}
