/**
 * The listener: accepts connections and runs each as its own ReceiveSession, so a
 * sender that misbehaves or fails never affects the others or the server.
 */
import { ProtocolError } from "../protocol/errors.ts";
import { encodeFrame, FrameType } from "../protocol/frame.ts";
import { encodeJson } from "../protocol/messages.ts";
import { Channel, encodePreamble, PROTOCOL_VERSION } from "../protocol/preamble.ts";
import { type ByteStream, closeGracefully, writeAll } from "../transport/byte_stream.ts";
import { formatAddress, isAnyAddress, listen, listenAll, unmapIpv4 } from "../transport/tcp.ts";
import { Inbox } from "./inbox.ts";
import { addressGroup } from "./address_group.ts";
import { CodeGuard, type GuardPolicy } from "./code_guard.ts";
import { ReceiveSession, type SessionOptions } from "./session.ts";
import { DEFAULT_PRE_AUTH, type PreAuthLimits } from "./server_limits.ts";
import { IdleCollector } from "./idle_collect.ts";

export interface ServerOptions
  extends Omit<SessionOptions, "inbox" | "guard" | "firstFrameMs" | "onAuthenticated"> {
  dir: string;
  host: string;
  port: number;
  /** How wrong codes are slowed down and locked out (default DEFAULT_GUARD). */
  guardPolicy?: GuardPolicy;
  /** Bounds before the key exchange (default DEFAULT_PRE_AUTH). */
  preAuth?: Partial<PreAuthLimits>;
  /** What collects garbage once no session is left (tests; default V8's, where exposed). */
  idleCollector?: IdleCollector;
}

/** How often abandoned partials are looked for, at most. */
const CLEANUP_INTERVAL_MS = 3600 * 1000;

export class FerryServer {
  #sessions = new Map<ReceiveSession, Promise<void>>();
  /**
   * Sessions dropped while a storage call of theirs had not returned: they
   * still hold a file and buffers, so they keep their connection slot
   * until it does (ReceiveSession.settled).
   */
  #stalled = new Set<ReceiveSession>();
  #guard: CodeGuard;
  #preAuth: PreAuthLimits;
  /** Connections not yet past the key exchange, by address group (only groups with some). */
  #unproven = new Map<string, number>();
  /** The live session of each named transfer. */
  #transfers = new Map<string, ReceiveSession>();
  #nextSession = 1;
  #closed = false;
  #done: Promise<void>;
  #cleanup: ReturnType<typeof setInterval>;
  /** Collects garbage when no session is left (idle_collect.ts). */
  #idle: IdleCollector;

  private constructor(
    readonly inbox: Inbox,
    /** One listener, or two where IPv6 sockets do not take IPv4 (listenAll). */
    readonly listeners: Deno.TcpListener[],
    readonly opts: ServerOptions,
  ) {
    this.#guard = new CodeGuard(opts.guardPolicy);
    this.#idle = opts.idleCollector ?? new IdleCollector();
    this.#preAuth = { ...DEFAULT_PRE_AUTH, ...opts.preAuth };
    const keep = opts.limits.keepPartialMs;
    this.#cleanup = setInterval(
      () => inbox.cleanUp(keep),
      Math.max(1000, Math.min(CLEANUP_INTERVAL_MS, keep / 4)),
    );
    Deno.unrefTimer(Number(this.#cleanup));
    this.#done = Promise.all(listeners.map((listener) => this.#acceptLoop(listener)))
      .then(() => Promise.all(this.#sessions.values())).then(() => {});
  }

  static async start(opts: ServerOptions): Promise<FerryServer> {
    const inbox = await Inbox.open(opts.dir);
    await inbox.cleanUp(opts.limits.keepPartialMs);
    const listeners = isAnyAddress(opts.host)
      ? listenAll(opts.port)
      : [listen({ host: opts.host, port: opts.port })];
    return new FerryServer(inbox, listeners, opts);
  }

  get port(): number {
    return this.listeners[0]!.addr.port;
  }

  /** Sessions dropped while a storage call of theirs has not returned yet. */
  get stalled(): number {
    return this.#stalled.size;
  }

  /** Resolves when the server has stopped and its sessions have ended. */
  get done(): Promise<void> {
    return this.#done;
  }

  async #acceptLoop(listener: Deno.TcpListener): Promise<void> {
    while (!this.#closed) {
      let conn: Deno.TcpConn;
      try {
        conn = await listener.accept();
      } catch (err) {
        if (this.#closed || err instanceof Deno.errors.BadResource) break;
        // Out of file descriptors and the like: wait, then keep serving.
        await new Promise((r) => setTimeout(r, 100));
        continue;
      }
      conn.setNoDelay(true);
      // An IPv4 sender on a dual-stack socket shows as ::ffff:a.b.c.d: shown and counted as a.b.c.d.
      this.accept(conn, conn.remoteAddr.hostname, conn.remoteAddr.port);
    }
  }

  /**
   * Runs one connection from `host`:`port` as a session, or turns it away
   * when the server is full or its address group has too many connections
   * still in their handshake. A TCP connection comes here from the listener;
   * a browser's WebSocket (web_listener.ts) the same way: one more sender.
   */
  accept(conn: ByteStream, remoteHost: string, remotePort: number): void {
    if (this.#closed) {
      turnAway(conn, "it is shutting down");
      return;
    }
    if (this.#sessions.size + this.#stalled.size >= this.opts.limits.maxConnections) {
      turnAway(
        conn,
        this.#stalled.size === 0
          ? `${this.opts.limits.maxConnections} senders are connected`
          : `${this.#stalled.size} of its ${this.opts.limits.maxConnections} connection slots ` +
            "wait on its disk",
      );
      return;
    }
    const host = unmapIpv4(remoteHost);
    const group = addressGroup(host);
    const unproven = this.#unproven.get(group) ?? 0;
    if (unproven >= this.#preAuth.perAddress) {
      turnAway(conn, `${unproven} connections from ${group} have not finished their handshake`);
      return;
    }
    this.#unproven.set(group, unproven + 1);
    let proven = false;
    /** Past the key exchange: its end makes a collection owed (idle_collect.ts). */
    let authenticated = false;
    const prove = () => {
      if (proven) return;
      proven = true;
      const left = this.#unproven.get(group)! - 1;
      if (left === 0) this.#unproven.delete(group);
      else this.#unproven.set(group, left);
    };
    const peer = formatAddress({ host, port: remotePort });
    const session = new ReceiveSession(this.#nextSession++, conn, host, peer, {
      ...this.opts,
      inbox: this.inbox,
      guard: this.#guard,
      firstFrameMs: this.#preAuth.firstFrameMs,
      onAuthenticated: () => {
        authenticated = true;
        prove();
      },
      claimTransfer: (transfer, session) => this.#claimTransfer(transfer, session),
    });
    const running = session.run().catch((err) => {
      // ReceiveSession.run() handles its own failures; reaching here is a bug, and still not fatal.
      console.error(`ferry: session failed unexpectedly: ${err?.stack ?? err}`);
    }).finally(() => {
      prove();
      this.#sessions.delete(session);
      this.#stalled.add(session);
      session.settled.finally(() => {
        this.#stalled.delete(session);
        if (authenticated) this.#idle.owe();
        if (this.#sessions.size === 0 && this.#stalled.size === 0) this.#idle.idle();
      });
      const transfer = session.transfer;
      if (transfer !== null && this.#transfers.get(transfer) === session) {
        this.#transfers.delete(transfer);
      }
    });
    this.#sessions.set(session, running);
    this.#idle.cancel();
  }

  /**
   * A sender runs one session of a transfer at a time: a new one means the
   * old connection is stale (the sender reconnected before the receiver
   * noticed the loss). End the old one so its partial files can resume.
   * While an earlier session of the transfer is dropped but stuck in a
   * storage call, the new one is told "busy" (the sender retries later)
   * instead of touching the same files on the same disk.
   */
  async #claimTransfer(transfer: string, session: ReceiveSession): Promise<void> {
    const previous = this.#transfers.get(transfer);
    this.#transfers.set(transfer, session);
    if (previous !== undefined && previous !== session) {
      await previous.abort("superseded", "the sender reconnected in another session");
      await this.#sessions.get(previous);
    }
    for (const other of this.#stalled) {
      if (other.transfer === transfer && other.stuck) {
        throw new ProtocolError(
          "busy",
          "an earlier session of this transfer still waits on the receiver's disk",
        );
      }
    }
  }

  /**
   * Stops accepting and ends the running sessions, telling their senders;
   * each keeps its unfinished file as a resumable partial. `done` resolves
   * once they have ended.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#cleanup);
    this.#idle.stop();
    for (const listener of this.listeners) {
      try {
        listener.close();
      } catch { /* already closed */ }
    }
    for (const session of this.#sessions.keys()) {
      session.abort("shutting-down", "the receiver is shutting down");
    }
  }
}

/**
 * Answers a connection over a cap (all connections, or those of its address
 * group still in their handshake) with ERROR "busy", without starting a
 * session.
 */
function turnAway(conn: ByteStream, why: string): void {
  const reply = new Uint8Array([
    ...encodePreamble({ version: PROTOCOL_VERSION, channel: Channel.plain }),
    ...encodeFrame(
      FrameType.ERROR,
      encodeJson({
        code: "busy",
        message: `the receiver is busy: ${why}; try again shortly`,
      }),
    ),
  ]);
  const timer = setTimeout(() => conn.close(), 2000);
  writeAll(conn, reply)
    .then(() => closeGracefully(conn, 500))
    .catch(() => {})
    .finally(() => clearTimeout(timer));
}
