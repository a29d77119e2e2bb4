/**
 * `serve --web`: one static page over plain HTTP, and the WebSocket it sends
 * through (PROTOCOL.md §14). Two paths and one method: GET / is the page,
 * GET /ferry upgrades to the WebSocket; anything else gets a short 404 or 405
 * and nothing is read from a request's body. Each WebSocket is handed to the
 * FerryServer as one more connection, so the connection caps, the per-address
 * cap on handshakes, the deadlines, the guess budget and every rule of the
 * receiver apply to a browser as to any sender. The public port is a WebGate
 * (web_gate.ts), which bounds connections and their time before Deno.serve,
 * on a loopback port, sees them.
 */
import { FerryError } from "../errors.ts";
import { WEB_PAGE, WEB_PAGE_CSP } from "./web_page.ts";
import type { FerryServer } from "./server.ts";
import { WebSocketStream } from "../transport/websocket_stream.ts";
import { type GatedConnection, type GateLimits, WebGate } from "./web_gate.ts";
import { fromOwnPage, isOwnHost, localNames } from "./web_origin.ts";

export const DEFAULT_WEB_PORT = 4456;
/** Where the page opens its WebSocket. */
export const WEB_SOCKET_PATH = "/ferry";
/** WebSocket pings after this long without traffic (the session's own deadlines end it). */
const PING_SECONDS = 30;

/** Connections from one address group at once: a browser opens a few for a page, and WebSockets. */
const PER_ADDRESS = 16;
/** Connections beyond the server's --max-connections, for page loads. */
const PAGE_CONNECTIONS = 16;
/** A connection's first byte must come this soon (a request is one write). */
const FIRST_BYTE_MS = 10_000;
/** No traffic either way this long closes a connection (a WebSocket pings every PING_SECONDS). */
const IDLE_MS = 75_000;
/** A connection must have become a WebSocket this soon (loading the page takes far less). */
const REQUEST_MS = 60_000;
/** A WebSocket's peer has this long to close it once its session ended. */
const CLOSE_MS = 5_000;

export interface WebListenerOptions {
  host: string;
  port: number;
  server: FerryServer;
  /** The server's --max-connections (the gate admits a few more, for loading the page). */
  maxConnections: number;
  /** Tighter bounds of the gate (tests). */
  gate?: Partial<GateLimits>;
}

export class WebListener {
  private constructor(
    readonly http: Deno.HttpServer<Deno.NetAddr>,
    readonly gate: WebGate,
  ) {}

  static start(opts: WebListenerOptions): WebListener {
    let gate: WebGate | null = null;
    const names = localNames(machineName());
    const http = Deno.serve({
      hostname: "127.0.0.1",
      port: 0,
      onListen: () => {},
      onError: () => new Response("error\n", { status: 500 }),
    }, (request, info) => {
      // Only what came through the gate, with its client's address.
      const client = gate?.client(info.remoteAddr);
      if (client === undefined) return plain(403, "connect through the web port");
      return answer(request, client, opts.server, names);
    });
    try {
      gate = WebGate.start(opts.host, opts.port, http.addr, {
        maxConnections: opts.maxConnections + PAGE_CONNECTIONS,
        perAddress: PER_ADDRESS,
        firstByteMs: FIRST_BYTE_MS,
        idleMs: IDLE_MS,
        requestMs: REQUEST_MS,
        closeMs: CLOSE_MS,
        ...opts.gate,
      });
    } catch (err) {
      http.shutdown().catch(() => {});
      if (err instanceof FerryError && err.code === "address-in-use") {
        throw new FerryError(
          "address-in-use",
          `port ${opts.port} is already in use on ${opts.host}; choose another with --web-port`,
        );
      }
      throw err;
    }
    return new WebListener(http, gate);
  }

  get port(): number {
    return this.gate.port;
  }

  /** Stops serving; open WebSockets are the FerryServer's sessions and end with it. */
  async close(): Promise<void> {
    await this.gate.close();
    await this.http.shutdown().catch(() => {});
  }
}

function plain(status: number, text: string, headers: Record<string, string> = {}): Response {
  return new Response(`${text}\n`, {
    status,
    headers: { "content-type": "text/plain; charset=utf-8", ...headers },
  });
}

/** This machine's name, if allowed to ask (never prompts for the permission). */
function machineName(): string | null {
  try {
    if (Deno.permissions.querySync({ name: "sys", kind: "hostname" }).state !== "granted") {
      return null;
    }
    return Deno.hostname();
  } catch {
    return null;
  }
}

function answer(
  request: Request,
  gated: GatedConnection,
  server: FerryServer,
  names: readonly string[],
): Response {
  if (request.method !== "GET") return plain(405, "method not allowed", { allow: "GET" });
  const url = new URL(request.url);
  if (url.pathname === "/" && url.search === "" && !isOwnHost(request.headers.get("host"), names)) {
    // The page could not connect from here (see below): say so, rather than a page that fails.
    return plain(
      421,
      "open this page by the receiver's address, as ferry serve shows it " +
        "(or localhost, or the machine's own name)",
    );
  }
  if (url.pathname === "/" && url.search === "") {
    return new Response(WEB_PAGE, {
      headers: {
        "content-type": "text/html; charset=utf-8",
        "content-security-policy": WEB_PAGE_CSP,
        "cache-control": "no-store",
        "referrer-policy": "no-referrer",
        "x-content-type-options": "nosniff",
        "x-frame-options": "DENY",
      },
    });
  }
  if (url.pathname !== WEB_SOCKET_PATH) return plain(404, "not found");
  if (request.headers.get("upgrade")?.toLowerCase() !== "websocket") {
    return plain(426, "this path takes a WebSocket", { upgrade: "websocket" });
  }
  // Only the page itself may connect: another site's script running in a browser on this
  // network is refused before it can try a single code, also one whose own name it pointed
  // at this machine (DNS rebinding: web_origin.ts).
  if (!fromOwnPage(request.headers.get("host"), request.headers.get("origin"), names)) {
    return plain(403, "only the page served here may connect");
  }
  const { hostname, port } = gated.client;
  const { socket, response } = Deno.upgradeWebSocket(request, { idleTimeout: PING_SECONDS });
  const stream = new SessionSocket(socket, () => gated.ended());
  socket.addEventListener("open", () => {
    gated.upgraded();
    server.accept(stream, hostname, port);
  });
  return response;
}

/** The server side's WebSocketStream: its close (the session's end) is also told to the gate. */
class SessionSocket extends WebSocketStream {
  constructor(ws: WebSocket, readonly onClose: () => void) {
    super(ws);
  }

  override close(): void {
    super.close();
    this.onClose();
  }
}
