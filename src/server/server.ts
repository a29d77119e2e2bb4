/**
 * The listener: accepts connections and runs each as its own Session, so a
 * sender that misbehaves or fails never affects the others or the server.
 */
import { formatAddress, listen } from "../transport/tcp.ts";
import { Inbox } from "./inbox.ts";
import { Session, type SessionOptions } from "./session.ts";

export interface ServerOptions extends Omit<SessionOptions, "inbox"> {
  dir: string;
  host: string;
  port: number;
}

export class FerryServer {
  #sessions = new Map<Session, Promise<void>>();
  #nextSession = 1;
  #closed = false;
  #done: Promise<void>;

  private constructor(
    readonly inbox: Inbox,
    readonly listener: Deno.TcpListener,
    readonly opts: ServerOptions,
  ) {
    this.#done = this.#acceptLoop();
  }

  static async start(opts: ServerOptions): Promise<FerryServer> {
    const inbox = await Inbox.open(opts.dir);
    const listener = listen({ host: opts.host, port: opts.port });
    return new FerryServer(inbox, listener, opts);
  }

  get port(): number {
    return this.listener.addr.port;
  }

  /** Resolves when the server has stopped and its sessions have ended. */
  get done(): Promise<void> {
    return this.#done;
  }

  async #acceptLoop(): Promise<void> {
    while (!this.#closed) {
      let conn: Deno.TcpConn;
      try {
        conn = await this.listener.accept();
      } catch (err) {
        if (this.#closed || err instanceof Deno.errors.BadResource) break;
        // Out of file descriptors and the like: wait, then keep serving.
        await new Promise((r) => setTimeout(r, 100));
        continue;
      }
      conn.setNoDelay(true);
      const peer = formatAddress({
        host: conn.remoteAddr.hostname,
        port: conn.remoteAddr.port,
      });
      const session = new Session(this.#nextSession++, conn, peer, {
        ...this.opts,
        inbox: this.inbox,
      });
      const running = session.run().catch((err) => {
        // Session.run() handles its own failures; reaching here is a bug, and still not fatal.
        console.error(`ferry: session failed unexpectedly: ${err?.stack ?? err}`);
      }).finally(() => this.#sessions.delete(session));
      this.#sessions.set(session, running);
    }
    await Promise.all(this.#sessions.values());
  }

  /**
   * Stops accepting and ends the running sessions; each discards its
   * unfinished file. `done` resolves once they have.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.listener.close();
    } catch { /* already closed */ }
    for (const session of this.#sessions.keys()) session.abort("the receiver is shutting down");
  }
}
