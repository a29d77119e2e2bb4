/**
 * `serve --web` without a browser: the page's own sender (src/web/web_send.ts,
 * the code the page runs) drives the WebSocket path of a real `ferry serve
 * --web`, started through the CLI with the shipped permission set. Files
 * arrive verified; a wrong code is refused and counted in the same budget as
 * a TCP sender's; a cut connection resumes; the HTTP side serves the page and
 * the WebSocket only, and bounds what a peer may send.
 */
import {
  assert,
  assertEquals,
  assertGreater,
  assertMatch,
  assertRejects,
  assertStringIncludes,
} from "@std/assert";
import encodeQR from "@paulmillr/qr";
import { join } from "node:path";
import { TEST_CODE } from "./_in_process.ts";
import {
  freePort,
  randomBytes,
  runCli,
  spawnServe,
  tempDir,
  waitFor,
  writeTree,
} from "./_harness.ts";
import { FaultProxy } from "./fault_proxy.ts";
import { type PickedFile, webSend, type WebSendOptions } from "../src/web/web_send.ts";
import type { SendEvent } from "../src/client/send_types.ts";
import { FerryError } from "../src/errors.ts";

const ready = (out: string) => out.includes("press Ctrl+C to stop");

async function serveWeb(dir: string, extra: string[] = [], env: Record<string, string> = {}) {
  const webPort = freePort();
  const serve = await spawnServe(
    dir,
    ["--web", "--web-port", String(webPort), "--no-discovery", ...extra],
    { ready, env },
  );
  return { serve, webPort, [Symbol.asyncDispose]: () => serve.stop().then(() => {}) };
}

/** webSend as the page runs it, with the Origin header a browser sends for the page. */
function sendOptions(
  webPort: number,
  files: PickedFile[],
  extra: Partial<WebSendOptions> = {},
): WebSendOptions {
  const origin = `http://127.0.0.1:${webPort}`;
  return {
    url: `ws://127.0.0.1:${webPort}/ferry`,
    code: TEST_CODE,
    files,
    retries: 0,
    idleTimeoutMs: 20_000,
    connectTimeoutMs: 5_000,
    software: "ferry-web-test",
    onEvent: () => {},
    socket: (url) => new WebSocket(url, { headers: { origin } }),
    ...extra,
  };
}

async function picked(dir: string, paths: string[]): Promise<PickedFile[]> {
  return await Promise.all(paths.map(async (path) => {
    const bytes = await Deno.readFile(join(dir, path));
    const info = await Deno.stat(join(dir, path));
    return {
      path,
      file: new File([bytes], path.split("/").pop()!, { lastModified: info.mtime!.getTime() }),
    };
  }));
}

async function sameFiles(from: string, to: string, paths: string[]): Promise<void> {
  for (const path of paths) {
    const a = await Deno.readFile(join(from, path));
    const b = await Deno.readFile(join(to, path));
    assert(a.length === b.length && a.every((x, i) => x === b[i]), `${path} differs`);
  }
}

Deno.test("serve --web: the page's sender delivers a file and a folder over the WebSocket, verified", async () => {
  await using base = await tempDir();
  const src = join(base.path, "src");
  const inbox = join(base.path, "inbox");
  const tree: Record<string, Uint8Array> = { "big.bin": randomBytes(3 * 1024 * 1024 + 7) };
  for (let i = 0; i < 30; i++) tree[`album/${i}.txt`] = randomBytes(i * 100);
  await writeTree(src, tree);
  const paths = Object.keys(tree);
  await using web = await serveWeb(inbox);
  // FERRY_CODE's code is never echoed: neither in the banner nor in the QR code's address.
  assert(!web.serve.stdout().includes(TEST_CODE));
  assertMatch(web.serve.stdout(), new RegExp(`http://127\\.0\\.0\\.1:${web.webPort}/\\n`));
  assertMatch(web.serve.stdout(), /the page asks for the code/);
  assertStringIncludes(
    web.serve.stdout(),
    encodeQR(`http://127.0.0.1:${web.webPort}/`, "ascii").trimEnd(),
  );
  const events: SendEvent[] = [];
  const result = await webSend(
    sendOptions(web.webPort, await picked(src, paths), { onEvent: (e) => events.push(e) }),
  );
  assertEquals(result.files, paths.length);
  assertEquals(result.failed, 0);
  await sameFiles(src, inbox, paths);
  const connected = events.find((e) => e.type === "connected");
  assertEquals(connected?.type === "connected" && connected.digest, "sha256");
  await waitFor("the session's line", () => web.serve.output().includes(`${paths.length} files`));
});

Deno.test("serve --web: a wrong code from the page is refused and counted with TCP senders' guesses", async () => {
  await using base = await tempDir();
  await writeTree(join(base.path, "src"), { "a.txt": "hello" });
  await using web = await serveWeb(join(base.path, "inbox"));
  const files = await picked(join(base.path, "src"), ["a.txt"]);
  const err = await assertRejects(() =>
    webSend(sendOptions(web.webPort, files, { code: "0000-wrong-guess-here" }))
  );
  assert(err instanceof FerryError && err.code === "wrong-code", String(err));
  await waitFor(
    "the first wrong code",
    () => web.serve.output().includes("wrong code from 127.0.0.1 (1 of"),
  );
  // The next guess, over TCP, is the address's second.
  const tcp = await runCli([
    "send",
    join(base.path, "src", "a.txt"),
    "--to",
    `127.0.0.1:${web.serve.port}`,
  ], {
    env: { FERRY_CODE: "1111-another-wrong-one" },
  });
  assertEquals(tcp.code, 1);
  await waitFor(
    "the second wrong code",
    () => web.serve.output().includes("wrong code from 127.0.0.1 (2 of"),
  );
  assertEquals(await Deno.stat(join(base.path, "inbox", "a.txt")).catch(() => null), null);
});

Deno.test("serve --web: an upload cut mid-file resumes where it stopped", async () => {
  await using base = await tempDir();
  const src = join(base.path, "src");
  const inbox = join(base.path, "inbox");
  await writeTree(src, { "big.bin": randomBytes(12 * 1024 * 1024) });
  await using web = await serveWeb(inbox);
  // The first connection is cut after 6 MB went up; the ones after it pass.
  const proxy = new FaultProxy(web.webPort, (n) => n === 1 ? { cutAfter: 6 * 1024 * 1024 } : {});
  const events: SendEvent[] = [];
  const result = await webSend({
    ...sendOptions(web.webPort, await picked(src, ["big.bin"]), {
      onEvent: (e) => events.push(e),
      retries: 3,
      retryDelayMs: 100,
    }),
    url: `ws://127.0.0.1:${proxy.port}/ferry`,
    socket: (url) => new WebSocket(url, { headers: { origin: `http://127.0.0.1:${proxy.port}` } }),
  });
  await proxy.close();
  assert(events.some((e) => e.type === "retry"), "the connection was never cut");
  assertEquals(result.files, 1);
  assertGreater(result.resumedBytes, 1024 * 1024);
  await sameFiles(src, inbox, ["big.bin"]);
});

Deno.test("serve --web: only GET of the page and the WebSocket; other origins and oversized messages are refused", async () => {
  await using base = await tempDir();
  await using web = await serveWeb(join(base.path, "inbox"));
  const root = `http://127.0.0.1:${web.webPort}`;
  const page = await fetch(`${root}/`);
  assertEquals(page.status, 200);
  assertMatch(page.headers.get("content-security-policy")!, /default-src 'none'/);
  assertMatch(await page.text(), /<title>ferry: send files<\/title>/);
  for (
    const [method, path, status] of [
      ["POST", "/", 405],
      ["PUT", "/ferry", 405],
      ["GET", "/index.html", 404],
      ["GET", "/?x=1", 404],
      ["GET", "/ferry", 426],
    ] as const
  ) {
    const res = await fetch(`${root}${path}`, { method, body: method === "GET" ? null : "x" });
    await res.body?.cancel();
    assertEquals(res.status, status, `${method} ${path}`);
  }
  // Another site's script in a browser on this network: refused before any handshake.
  const foreign = new WebSocket(`ws://127.0.0.1:${web.webPort}/ferry`, {
    headers: { origin: "http://evil.example" },
  });
  const refused = await new Promise<boolean>((resolve) => {
    foreign.onopen = () => resolve(false);
    foreign.onerror = () => resolve(true);
  });
  assert(refused, "a WebSocket from another origin was accepted");
  // A message over the limit ends the connection.
  const ws = new WebSocket(`ws://127.0.0.1:${web.webPort}/ferry`, { headers: { origin: root } });
  await new Promise((resolve) => ws.onopen = resolve);
  const closed = new Promise((resolve) => ws.onclose = resolve);
  ws.send(new Uint8Array(1024 * 1024 + 1));
  await closed;
  assertEquals(web.serve.output().includes("session failed unexpectedly"), false);
});

/** The status line of a WebSocket upgrade to /ferry sent by hand, with these Host and Origin. */
async function upgradeStatus(port: number, host: string, origin: string | null): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    const lines = [
      "GET /ferry HTTP/1.1",
      `Host: ${host}`,
      ...(origin === null ? [] : [`Origin: ${origin}`]),
      "Upgrade: websocket",
      "Connection: Upgrade",
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
      "Sec-WebSocket-Version: 13",
    ];
    await conn.write(new TextEncoder().encode(`${lines.join("\r\n")}\r\n\r\n`));
    const buf = new Uint8Array(512);
    const n = await conn.read(buf);
    return new TextDecoder().decode(buf.subarray(0, n ?? 0)).split("\r\n")[0]!;
  } finally {
    conn.close();
  }
}

Deno.test("serve --web: a WebSocket from a site whose own name points here (DNS rebinding) is refused", async () => {
  await using base = await tempDir();
  await using web = await serveWeb(join(base.path, "inbox"));
  const port = web.webPort;
  // The page opened by this machine's address: Host and Origin agree, and the name is an IP.
  assertMatch(await upgradeStatus(port, `127.0.0.1:${port}`, `http://127.0.0.1:${port}`), / 101 /);
  assertMatch(await upgradeStatus(port, `localhost:${port}`, `http://localhost:${port}`), / 101 /);
  // A site that rebinds its own name to this machine sends matching Host and Origin, its name.
  for (const name of ["evil.example", "192.168.1.20.nip.io", "rebind.127.0.0.1.example"]) {
    const host = `${name}:${port}`;
    assertMatch(await upgradeStatus(port, host, `http://${host}`), / 403 /, name);
  }
  // Under such a name the page itself is not served either: a plain line says where to open it.
  const page = await Deno.connect({ hostname: "127.0.0.1", port });
  await page.write(
    new TextEncoder().encode(`GET / HTTP/1.1\r\nHost: evil.example:${port}\r\n\r\n`),
  );
  const buf = new Uint8Array(1024);
  const n = await page.read(buf);
  page.close();
  assertMatch(
    new TextDecoder().decode(buf.subarray(0, n ?? 0)),
    /^HTTP\/1.1 421 [^]*receiver's address/,
  );
  // No Origin, or the opaque origin "null" (a sandboxed frame, a file:// page): refused too.
  assertMatch(await upgradeStatus(port, `127.0.0.1:${port}`, null), / 403 /);
  assertMatch(await upgradeStatus(port, `127.0.0.1:${port}`, "null"), / 403 /);
  assertEquals(web.serve.output().includes("wrong code"), false);
});

Deno.test("serve --web: the committed page is what src/web/ builds", async () => {
  const { code, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["task", "--quiet", "build:web", "--check"],
    cwd: new URL("..", import.meta.url).pathname,
    stdout: "null",
    stderr: "piped",
  }).output();
  assertEquals(code, 0, new TextDecoder().decode(stderr));
});

Deno.test("serve --web --open: the page sends without a code; --json names the web port", async () => {
  await using base = await tempDir();
  const src = join(base.path, "src");
  await writeTree(src, { "a.txt": "open door" });
  const webPort = freePort();
  const serve = await spawnServe(
    join(base.path, "inbox"),
    ["--open", "--web", "--web-port", String(webPort), "--no-discovery", "--json"],
    { ready: (out) => out.includes('"type":"start"') },
  );
  try {
    const start = JSON.parse(serve.stdout().split("\n").find((l) => l.includes('"start"'))!);
    assertEquals(start.webPort, webPort);
    const result = await webSend(
      sendOptions(webPort, await picked(src, ["a.txt"]), { code: null }),
    );
    assertEquals(result.files, 1);
    await sameFiles(src, join(base.path, "inbox"), ["a.txt"]);
    // A page given a code refuses a receiver that claims to be open (PROTOCOL.md §4.1), as the
    // command-line sender does: whoever answers could claim it.
    await writeTree(src, { "b.txt": "not for an open door" });
    const files = await picked(src, ["b.txt"]);
    const err = await assertRejects(() =>
      webSend(sendOptions(webPort, files, { code: TEST_CODE }))
    );
    assert(err instanceof FerryError, String(err));
    assertMatch(err.message, /no code/);
    assertEquals(await Deno.stat(join(base.path, "inbox", "b.txt")).catch(() => null), null);
  } finally {
    await serve.stop();
  }
});

Deno.test("serve: --web-port without --web, and --web with --plaintext, are usage errors", async () => {
  await using base = await tempDir();
  const dir = join(base.path, "inbox");
  for (
    const args of [
      ["serve", dir, "--web-port", "5000"],
      ["serve", dir, "--web", "--open", "--plaintext"],
      ["serve", dir, "--web", "--web-port", "99999"],
    ]
  ) {
    const result = await runCli(args);
    assertEquals(result.code, 2, `${args.join(" ")}: ${result.stderr}`);
    assertEquals(result.stderr.trim().split("\n").length <= 2, true, result.stderr);
  }
  // A web port in use: one line that names --web-port.
  const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const result = await runCli([
      "serve",
      dir,
      "--host",
      "127.0.0.1",
      "--port",
      String(freePort()),
      "--web",
      "--web-port",
      String(taken.addr.port),
      "--no-discovery",
    ]);
    assertEquals(result.code, 1, result.stderr);
    assertMatch(result.stderr, /already in use.*--web-port/);
  } finally {
    taken.close();
  }
});

Deno.test("serve --web --ask: the page waits for the person's answer past its own idle timeout", async () => {
  await using base = await tempDir();
  const src = join(base.path, "src");
  await writeTree(src, { "a.txt": "hello" });
  const webPort = freePort();
  const serve = await spawnServe(
    join(base.path, "inbox"),
    ["--web", "--web-port", String(webPort), "--no-discovery", "--ask", "--json"],
    { stdin: "piped", ready: (out) => out.includes('"type":"start"') },
  );
  const writer = serve.child.stdin.getWriter();
  try {
    const events: SendEvent[] = [];
    const sending = webSend(
      sendOptions(webPort, await picked(src, ["a.txt"]), {
        idleTimeoutMs: 1000,
        onEvent: (e) => events.push(e),
      }),
    );
    await waitFor("the question", () => serve.stdout().includes('"type":"ask"'));
    // Past the page's own 1 s idle timeout, and past the 3 s after which it says it waits.
    await new Promise((r) => setTimeout(r, 3500));
    await writer.write(
      new TextEncoder().encode(`${JSON.stringify({ session: 1, accept: true })}\n`),
    );
    const result = await sending;
    assertEquals(result.files, 1);
    assertEquals(await Deno.readTextFile(join(base.path, "inbox", "a.txt")), "hello");
    assert(
      events.some((e) => e.type === "warning" && e.message.includes("to accept")),
      "the page says why nothing moves",
    );
  } finally {
    await writer.close().catch(() => {});
    await serve.stop();
  }
});
