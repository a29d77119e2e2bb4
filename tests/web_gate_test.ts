/**
 * The bounds in front of `serve --web`'s HTTP server (src/server/web_gate.ts):
 * a connection that says nothing, stops halfway through a request, or trickles
 * one in, is closed; so is a WebSocket whose session ended and whose peer
 * never closes it; one address cannot hold more than its share of
 * connections; a WebSocket message too large for ferry is cut before the
 * HTTP server (which reads a message whole) takes it in; and the HTTP server
 * behind the gate refuses connections that bypass it, also one from another
 * loopback address that takes the port of one of the gate's.
 */
import { assertEquals, assertMatch } from "@std/assert";
import net from "node:net";
import { join } from "node:path";
import { tempDir } from "./_harness.ts";
import { FerryServer } from "../src/server/server.ts";
import { DEFAULT_LIMITS } from "../src/server/server_limits.ts";
import { WebListener } from "../src/server/web_listener.ts";
import type { GateLimits } from "../src/server/web_gate.ts";

async function withWeb(
  gate: Partial<GateLimits>,
  body: (web: WebListener) => Promise<void>,
): Promise<void> {
  await using base = await tempDir();
  const server = await FerryServer.start({
    dir: join(base.path, "inbox"),
    host: "127.0.0.1",
    port: 0,
    onConflict: "rename",
    limits: DEFAULT_LIMITS,
    code: "4821-crane-lotus-oyster",
    plaintext: false,
    software: "test",
    onEvent: () => {},
  });
  const web = WebListener.start({
    host: "127.0.0.1",
    port: 0,
    server,
    maxConnections: DEFAULT_LIMITS.maxConnections,
    gate,
  });
  try {
    await body(web);
  } finally {
    await web.close();
    server.close();
    await server.done;
  }
}

/** Milliseconds until the server closes `conn` (reads return null or fail); Infinity after 5 s. */
async function closedAfter(conn: Deno.Conn): Promise<number> {
  const start = performance.now();
  const buf = new Uint8Array(1024);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const closed = (async () => {
    try {
      while ((await conn.read(buf)) !== null) { /* drain */ }
    } catch { /* reset: closed too */ }
    return performance.now() - start;
  })();
  const late = new Promise<number>((resolve) => timer = setTimeout(() => resolve(Infinity), 5000));
  const ms = await Promise.race([closed, late]);
  clearTimeout(timer);
  conn.close();
  await closed;
  return ms;
}

Deno.test("web port: a connection that sends nothing, or half a request, is closed", async () => {
  await withWeb({ firstByteMs: 300, idleMs: 600 }, async (web) => {
    const silent = await Deno.connect({ hostname: "127.0.0.1", port: web.port });
    const partial = await Deno.connect({ hostname: "127.0.0.1", port: web.port });
    await partial.write(new TextEncoder().encode("GET / HTTP/1.1\r\nHo"));
    const [a, b] = await Promise.all([closedAfter(silent), closedAfter(partial)]);
    assertEquals(a < 5_000 && b < 5_000, true, `${a} ms, ${b} ms`);
  });
});

Deno.test("web port: one address holds at most its share of connections; more are told busy", async () => {
  await withWeb({ perAddress: 3, firstByteMs: 5_000 }, async (web) => {
    const held = await Promise.all(
      [1, 2, 3].map(() => Deno.connect({ hostname: "127.0.0.1", port: web.port })),
    );
    // Let the gate count them before the next one comes.
    await new Promise((r) => setTimeout(r, 100));
    const extra = await Deno.connect({ hostname: "127.0.0.1", port: web.port });
    const buf = new Uint8Array(200);
    const n = await extra.read(buf);
    assertMatch(new TextDecoder().decode(buf.subarray(0, n ?? 0)), /^HTTP\/1.1 503/);
    extra.close();
    for (const c of held) c.close();
    // Once they are gone, the address is welcome again.
    await new Promise((r) => setTimeout(r, 100));
    const page = await fetch(`http://127.0.0.1:${web.port}/`);
    assertEquals(page.status, 200);
    await page.body?.cancel();
  });
});

Deno.test("web port: the HTTP server behind the gate refuses connections that bypass it", async () => {
  await withWeb({}, async (web) => {
    const res = await fetch(`http://127.0.0.1:${web.http.addr.port}/`);
    assertEquals(res.status, 403);
    await res.body?.cancel();
  });
});

/** Writes `bytes` to `conn` every `ms` until it fails (the connection was closed). */
function trickle(conn: Deno.Conn, bytes: Uint8Array, ms: number): Promise<void> {
  return (async () => {
    try {
      for (;;) {
        await new Promise((r) => setTimeout(r, ms));
        await conn.write(bytes);
      }
    } catch { /* closed */ }
  })();
}

Deno.test("web port: a request trickled in a header at a time is closed at the request deadline", async () => {
  await withWeb({ firstByteMs: 5_000, idleMs: 5_000, requestMs: 500 }, async (web) => {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: web.port });
    await conn.write(new TextEncoder().encode("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n"));
    const writing = trickle(conn, new TextEncoder().encode("X-Slow: 1\r\n"), 100);
    const ms = await closedAfter(conn);
    await writing;
    assertEquals(ms < 5_000, true, `${ms} ms`);
  });
});

/** A client's WebSocket frame (masked with a zero key, as RFC 6455 allows), payload under 126 bytes. */
function clientFrame(opcode: number, payload: Uint8Array): Uint8Array {
  return new Uint8Array([0x80 | opcode, 0x80 | payload.length, 0, 0, 0, 0, ...payload]);
}

/** Opens a WebSocket on the web port by hand (as the page's origin); the raw connection. */
async function rawWebSocket(web: WebListener): Promise<Deno.Conn> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: web.port });
  const host = `127.0.0.1:${web.port}`;
  await conn.write(
    new TextEncoder().encode(
      `GET /ferry HTTP/1.1\r\nHost: ${host}\r\nOrigin: http://${host}\r\n` +
        "Upgrade: websocket\r\nConnection: Upgrade\r\n" +
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    ),
  );
  const buf = new Uint8Array(512);
  const n = await conn.read(buf);
  assertMatch(new TextDecoder().decode(buf.subarray(0, n ?? 0)), /^HTTP\/1.1 101 /);
  return conn;
}

Deno.test("web port: a WebSocket message too large is cut before the server takes it in", async () => {
  await withWeb({}, async (web) => {
    const conn = await rawWebSocket(web);
    // One binary message of 48 MiB (under Deno's own 64 MiB), sent as it would be, in pieces.
    const size = 48 * 1024 * 1024;
    const head = new Uint8Array([0x82, 0x80 | 127, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    new DataView(head.buffer).setUint32(6, size);
    let sent = 0;
    try {
      await conn.write(head);
      const piece = new Uint8Array(1024 * 1024);
      while (sent < size) sent += await conn.write(piece);
    } catch { /* cut */ }
    conn.close();
    assertEquals(sent < size / 2, true, `${sent} of ${size} bytes went in`);
  });
});

Deno.test("web port: a WebSocket whose session ended is closed though its peer never answers the close", async () => {
  await withWeb({ idleMs: 10_000, closeMs: 500 }, async (web) => {
    const conn = await rawWebSocket(web);
    // Not a ferry preamble: the session ends at once, and the server closes the WebSocket. This
    // peer never answers that close: the connection ends soon all the same, not when idle.
    await conn.write(clientFrame(0x2, new TextEncoder().encode("NOT FERRY AT ALL")));
    const ms = await closedAfter(conn);
    assertEquals(ms < 5_000, true, `${ms} ms`);
  });
});

/**
 * The local ports of this machine's established IPv4 TCP connections from 127.0.0.1 to `port`
 * (Linux; a closed one still in TIME_WAIT, such as a readiness probe's, is not counted).
 */
async function loopbackPortsTo(port: number): Promise<number[]> {
  // Deno reads /proc only with every permission; cat reads it with --allow-run.
  const { stdout } = await new Deno.Command("cat", { args: ["/proc/net/tcp"] }).output();
  const table = new TextDecoder().decode(stdout);
  const found: number[] = [];
  for (const line of table.split("\n").slice(1)) {
    const [, local, remote, state] = line.trim().split(/\s+/);
    if (local === undefined || remote === undefined || state !== "01") continue; // ESTABLISHED
    const [localIp, localPort] = local.split(":");
    const [, remotePort] = remote.split(":");
    if (localIp === "0100007F" && parseInt(remotePort!, 16) === port) {
      found.push(parseInt(localPort!, 16));
    }
  }
  return found;
}

Deno.test({
  name:
    "web port: a local connection from another loopback address with the gate's port is refused",
  ignore: Deno.build.os !== "linux",
  fn: async () => {
    await withWeb({}, async (web) => {
      // A connection through the gate, held open: the gate's own connection to the HTTP server.
      const held = await Deno.connect({ hostname: "127.0.0.1", port: web.port });
      await held.write(new TextEncoder().encode("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n"));
      let ports: number[] = [];
      for (let i = 0; i < 50 && ports.length === 0; i++) {
        await new Promise((r) => setTimeout(r, 20));
        ports = await loopbackPortsTo(web.http.addr.port);
      }
      assertEquals(ports.length, 1);
      // Another local user, from 127.0.0.2 and that port, straight to the HTTP server.
      const reply = await new Promise<string>((resolve, reject) => {
        const socket = net.connect({
          host: "127.0.0.1",
          port: web.http.addr.port,
          localAddress: "127.0.0.2",
          localPort: ports[0]!,
        });
        let text = "";
        socket.on("data", (d) => text += d.toString("latin1"));
        socket.on("error", reject);
        socket.on("close", () => resolve(text));
        socket.write("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
      });
      held.close();
      assertMatch(reply.split("\r\n")[0]!, /^HTTP\/1.1 403 /);
    });
  },
});
