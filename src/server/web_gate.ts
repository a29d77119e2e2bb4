/**
 * The TCP front of `serve --web`'s port. Deno.serve has no cap on
 * connections and keeps a connection that never sends a request (or stops
 * halfway through one) open for as long as the client likes; so the public
 * port is this gate, which bounds connections (in all and per address group)
 * and time (the first byte, then any traffic), and passes each connection it
 * admits, byte for byte, to the page's HTTP server on a loopback port. The
 * HTTP server learns each connection's real address from the gate, and
 * refuses connections that did not come through it. A connection must become
 * a WebSocket within a deadline (a request trickled in byte by byte, or a
 * keep-alive connection, ends then); a WebSocket lives as long as the
 * session on it, and a short grace after it (a peer that never answers the
 * WebSocket's closing handshake is cut). What the client sends is checked on
 * the way (web_client_bytes.ts): no WebSocket message over the size ferry
 * accepts reaches the HTTP server, which would read it whole into memory.
 */
import { addressGroup } from "./address_group.ts";
import { isAnyAddress, listen, listenAll, unmapIpv4 } from "../transport/tcp.ts";
import { Watchdog } from "../transport/watchdog.ts";
import { ClientBytes } from "./web_client_bytes.ts";

export interface GateLimits {
  /** Connections at once; more are answered 503 and closed. */
  maxConnections: number;
  /** Connections at once from one address group (address_group.ts). */
  perAddress: number;
  /** The client's first byte must come this soon. */
  firstByteMs: number;
  /** A connection with no traffic either way this long is closed (a WebSocket pings sooner). */
  idleMs: number;
  /** A connection that has not become a WebSocket this long after it came is closed. */
  requestMs: number;
  /** A WebSocket whose session ended is closed this long after, if its peer has not closed it. */
  closeMs: number;
}

/** What the HTTP server knows of, and tells the gate about, a connection through the gate. */
export interface GatedConnection {
  /** The client's real address. */
  readonly client: Deno.NetAddr;
  /** The connection is now a WebSocket: no request deadline any more. */
  upgraded(): void;
  /** The session on the WebSocket ended: the connection closes after closeMs at the latest. */
  ended(): void;
}

const BUSY = new TextEncoder().encode(
  "HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\ncontent-length: 5\r\n" +
    "connection: close\r\n\r\nbusy\n",
);

export class WebGate {
  #open = new Set<Deno.Conn>();
  #groups = new Map<string, number>();
  /** Each admitted connection, by the gate's own port (and address) towards the HTTP server. */
  #clients = new Map<number, { from: string; connection: GatedConnection }>();
  #closed = false;
  #accepting: Promise<void>[];

  private constructor(
    readonly listeners: Deno.TcpListener[],
    readonly inner: Deno.NetAddr,
    readonly limits: GateLimits,
  ) {
    this.#accepting = listeners.map((listener) => this.#accept(listener));
  }

  /** Listens on `host`:`port` (every address for "::", as serve's own port) and passes to `inner`. */
  static start(host: string, port: number, inner: Deno.NetAddr, limits: GateLimits): WebGate {
    const listeners = isAnyAddress(host) ? listenAll(port) : [listen({ host, port })];
    return new WebGate(listeners, inner, limits);
  }

  get port(): number {
    return this.listeners[0]!.addr.port;
  }

  /** The connection behind the HTTP server's from `from` (the gate's, on 127.0.0.1); else undefined. */
  client(from: Deno.NetAddr): GatedConnection | undefined {
    // The address too: another local user could connect from 127.0.0.2 with the same port.
    const found = this.#clients.get(from.port);
    return found?.from === from.hostname ? found.connection : undefined;
  }

  async #accept(listener: Deno.TcpListener): Promise<void> {
    while (!this.#closed) {
      let conn: Deno.TcpConn;
      try {
        conn = await listener.accept();
      } catch (err) {
        if (this.#closed || err instanceof Deno.errors.BadResource) break;
        await new Promise((r) => setTimeout(r, 100));
        continue;
      }
      const group = addressGroup(unmapIpv4(conn.remoteAddr.hostname));
      const fromGroup = this.#groups.get(group) ?? 0;
      if (this.#open.size >= this.limits.maxConnections || fromGroup >= this.limits.perAddress) {
        conn.write(BUSY).catch(() => {}).finally(() => conn.close());
        continue;
      }
      this.#groups.set(group, fromGroup + 1);
      this.#open.add(conn);
      this.#pass(conn).catch(() => {}).finally(() => {
        this.#open.delete(conn);
        const left = this.#groups.get(group)! - 1;
        if (left === 0) this.#groups.delete(group);
        else this.#groups.set(group, left);
      });
    }
  }

  async #pass(client: Deno.TcpConn): Promise<void> {
    let upstream: Deno.TcpConn | null = null;
    let heard = false;
    const closeBoth = () => {
      for (const c of [client, upstream]) {
        try {
          c?.close();
        } catch { /* already closed */ }
      }
    };
    const first = setTimeout(() => heard || closeBoth(), this.limits.firstByteMs);
    let request: ReturnType<typeof setTimeout> | undefined = setTimeout(
      closeBoth,
      this.limits.requestMs,
    );
    let ending: ReturnType<typeof setTimeout> | undefined;
    const watchdog = new Watchdog(this.limits.idleMs, closeBoth);
    try {
      upstream = await Deno.connect({ hostname: this.inner.hostname, port: this.inner.port });
      const { hostname: from, port: local } = upstream.localAddr as Deno.NetAddr;
      const closeMs = this.limits.closeMs;
      this.#clients.set(local, {
        from,
        connection: {
          client: {
            transport: "tcp",
            hostname: unmapIpv4(client.remoteAddr.hostname),
            port: client.remoteAddr.port,
          },
          upgraded() {
            clearTimeout(request);
            request = undefined;
          },
          ended() {
            ending ??= setTimeout(closeBoth, closeMs);
          },
        },
      });
      try {
        const checked = new ClientBytes();
        await Promise.all([
          copy(client, upstream, (bytes) => {
            heard = true;
            watchdog.touch();
            return checked.feed(bytes);
          }),
          copy(upstream, client, () => {
            watchdog.touch();
            return true;
          }),
        ]);
      } finally {
        this.#clients.delete(local);
      }
    } finally {
      clearTimeout(first);
      clearTimeout(request);
      clearTimeout(ending);
      watchdog.stop();
      closeBoth();
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const listener of this.listeners) {
      try {
        listener.close();
      } catch { /* already closed */ }
    }
    for (const conn of this.#open) {
      try {
        conn.close();
      } catch { /* already closed */ }
    }
    await Promise.all(this.#accepting);
  }
}

/**
 * Copies `from` to `to` until `from` ends (then half-closes `to`) or either fails; and ends both
 * when `passes` refuses what was read (before any of it goes on).
 */
async function copy(
  from: Deno.TcpConn,
  to: Deno.TcpConn,
  passes: (bytes: Uint8Array) => boolean,
): Promise<void> {
  const buf = new Uint8Array(64 * 1024);
  try {
    for (;;) {
      const n = await from.read(buf);
      if (n === null) break;
      if (!passes(buf.subarray(0, n))) throw new Error("refused");
      for (let at = 0; at < n;) at += await to.write(buf.subarray(at, n));
    }
    await to.closeWrite();
  } catch {
    // One side is gone: end both directions.
    try {
      from.close();
    } catch { /* already closed */ }
    try {
      to.close();
    } catch { /* already closed */ }
  }
}
