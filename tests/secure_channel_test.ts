/**
 * The secure channel end to end: codes, wrong codes and lockout, tampered
 * records, and what a LAN observer can see.
 */
import { fastSuites } from "../src/transport/aead.ts";
import {
  assert,
  assertEquals,
  assertGreaterOrEqual,
  assertRejects,
  assertStringIncludes,
} from "@std/assert";
import { join } from "node:path";
import { FerryError } from "../src/errors.ts";
import { FaultProxy } from "./fault_proxy.ts";
import {
  randomBytes,
  readTurnAway,
  runCli,
  sendInProcess,
  snapshot,
  spawnServe,
  startServer,
  tempDir,
  type TestServer,
  waitFor,
} from "./_harness.ts";

/** Waits until `count` sessions have ended. */
async function ended(server: TestServer, count: number): Promise<void> {
  await waitFor(
    `${count} sessions to end`,
    () => server.events.filter((e) => e.type === "session-end").length >= count,
  );
}

Deno.test("a wrong code fails fast with 'wrong code' on both sides and nothing is written", async () => {
  await using baseDir = await tempDir();
  const base = baseDir.path;
  const inbox = join(base, "inbox");
  await Deno.writeTextFile(join(base, "a.txt"), "secret");
  const serve = await spawnServe(inbox);
  try {
    const started = Date.now();
    const sent = await runCli(["send", join(base, "a.txt"), "--to", `127.0.0.1:${serve.port}`], {
      env: { FERRY_CODE: "9999-wrong-code-here" },
    });
    assertEquals(sent.code, 1);
    // The code is not echoed back.
    assertEquals(
      sent.stderr.trim(),
      `ferry: wrong code: 127.0.0.1:${serve.port} did not accept it`,
    );
    assert(Date.now() - started < 5000, "fails fast");
    assertEquals(Object.keys(await snapshot(inbox)), []);
  } finally {
    const stopped = await serve.stop();
    assertStringIncludes(stopped.stderr, "wrong code from 127.0.0.1");
  }
});

Deno.test("a sender without a code is told the receiver needs one", async () => {
  await using baseDir = await tempDir();
  const base = baseDir.path;
  await Deno.writeTextFile(join(base, "a.txt"), "x");
  const server = await startServer(join(base, "inbox"));
  try {
    const err = await assertRejects(
      () => sendInProcess(server.port, [join(base, "a.txt")], { code: null }),
      FerryError,
    );
    assertEquals(err.message, `127.0.0.1:${server.port} needs its code`);
    assertEquals(err.code, "code-required");
    assertStringIncludes(err.hint ?? "", "FERRY_CODE");
  } finally {
    await server.close();
  }
});

Deno.test("an open receiver takes senders without a code, and a sender with a code refuses it", async () => {
  await using baseDir = await tempDir();
  const base = baseDir.path;
  await Deno.writeTextFile(join(base, "a.txt"), "open");
  const server = await startServer(join(base, "inbox"), { code: null });
  try {
    assertEquals(
      (await sendInProcess(server.port, [join(base, "a.txt")], { code: null })).files,
      1,
    );
    // A sender that has a code sends nothing to a receiver that proves none.
    const err = await assertRejects(
      () => sendInProcess(server.port, [join(base, "a.txt")]),
      FerryError,
    );
    assertEquals(err.code, "receiver-open");
    assertEquals(Object.keys(await snapshot(join(base, "inbox"))).sort(), ["a.txt"]);
  } finally {
    await server.close();
  }
});

Deno.test("repeated wrong codes from one address are slowed down, then locked out even for the right code", async () => {
  await using baseDir = await tempDir();
  const base = baseDir.path;
  await Deno.writeTextFile(join(base, "a.txt"), "x");
  const server = await startServer(join(base, "inbox"), {
    guardPolicy: { slowAfter: 2, lockAfter: 4, windowMs: 60_000, lockMs: 60_000, maxDelayMs: 300 },
  });
  try {
    const took: number[] = [];
    for (let i = 0; i < 4; i++) {
      const started = performance.now();
      const err = await assertRejects(
        () => sendInProcess(server.port, [join(base, "a.txt")], { code: `guess-${i}` }),
        FerryError,
      );
      took.push(performance.now() - started);
      assertStringIncludes(err.message, "wrong code");
    }
    assert(took[0]! < 250 && took[1]! < 250, `no delay for the first guesses: ${took}`);
    assertGreaterOrEqual(took[2], 280, `the third guess waits: ${took}`);
    await ended(server, 4);
    const wrong = server.events.filter((e) => e.type === "wrong-code");
    assertEquals(wrong.map((e) => e.type === "wrong-code" && e.locked), [
      false,
      false,
      false,
      true,
    ]);
    const err = await assertRejects(
      () => sendInProcess(server.port, [join(base, "a.txt")]),
      FerryError,
    );
    // The sender explains the unauthenticated ERROR by its code; the receiver says how long.
    assertStringIncludes(
      err.message,
      "too many wrong codes came from this address; it refuses it until its lockout ends",
    );
    assertStringIncludes(err.message, "(locked-out)");
    assertEquals(await readTurnAway(server.port), {
      code: "locked-out",
      message: "too many wrong codes from 127.0.0.1; try again in 1 min",
    });
    assertEquals(Object.keys(await snapshot(join(base, "inbox"))), []);
  } finally {
    await server.close();
  }
});

for (const tamper of ["flip", "drop", "duplicate", "reorder"] as const) {
  const done =
    { flip: "flipped", drop: "dropped", duplicate: "duplicated", reorder: "reordered" }[tamper];
  Deno.test(`a ${done} record aborts the session and nothing unverified is stored`, async () => {
    await using baseDir = await tempDir();
    const base = baseDir.path;
    const src = join(base, "src");
    await Deno.mkdir(src);
    // Large enough for several data records, so a dropped or reordered one is followed by another.
    for (let i = 0; i < 3; i++) {
      await Deno.writeFile(join(src, `f${i}.bin`), randomBytes(1_500_000));
    }
    const inbox = join(base, "inbox");
    const server = await startServer(inbox);
    // Record 0 carries HELLO, record 1 the first ANNOUNCE, then data.
    const index = tamper === "flip" || tamper === "duplicate" ? 1 : 2;
    const proxy = new FaultProxy(
      server.port,
      (n) => n === 1 ? { tamperRecord: { tamper, index } } : {},
    );
    try {
      await assertRejects(() => sendInProcess(proxy.port, [src]));
      await ended(server, 1);
      const end = server.events.find((e) => e.type === "session-end");
      if (end?.type !== "session-end") throw new Error("no session-end event");
      assertStringIncludes(end.error ?? "", "a record failed to authenticate");
      // Folders are made when announced; no file content was stored.
      const stored = Object.entries(await snapshot(inbox)).filter(([, e]) => e.kind === "file");
      assertEquals(stored, []);
      assertEquals([...Deno.readDirSync(join(inbox, ".ferry/tmp"))], []);
      // The same transfer, untouched, goes through.
      assertEquals((await sendInProcess(server.port, [src])).files, 3);
      assertEquals(await snapshot(join(inbox, "src")), await snapshot(src));
    } finally {
      await proxy.close();
      await server.close();
    }
  });
}

Deno.test("the bytes on the wire never contain a file's content or name", async () => {
  await using baseDir = await tempDir();
  const base = baseDir.path;
  const src = join(base, "src");
  await Deno.mkdir(src);
  const name = "marker-name-7f3a9c.txt";
  const content = new TextEncoder().encode("FERRY-CONTENT-MARKER-5e1b2d\n".repeat(50_000));
  await Deno.writeFile(join(src, name), content);
  const find = (chunks: Uint8Array[], needle: string) => {
    const all = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
    let at = 0;
    for (const c of chunks) {
      all.set(c, at);
      at += c.length;
    }
    return new TextDecoder("latin1").decode(all).includes(needle);
  };
  for (const plaintext of [false, true]) {
    const server = await startServer(join(base, `inbox-${plaintext}`), { plaintext });
    const proxy = new FaultProxy(server.port, {}, { capture: true });
    try {
      assertEquals((await sendInProcess(proxy.port, [join(src, name)], { plaintext })).files, 1);
      const wire = [...proxy.captured.up, ...proxy.captured.down];
      // On the plain channel (the control) the markers are there to be found.
      assertEquals(find(wire, "FERRY-CONTENT-MARKER-5e1b2d"), plaintext);
      assertEquals(find(wire, name), plaintext);
      assertEquals(find(wire, "marker-name"), plaintext);
    } finally {
      await proxy.close();
      await server.close();
    }
  }
});

Deno.test("--plaintext works only when both sides ask for it, and serve needs --open for it", async () => {
  await using baseDir = await tempDir();
  const base = baseDir.path;
  await Deno.writeTextFile(join(base, "a.txt"), "plain");
  const usage = await runCli(["serve", join(base, "x"), "--plaintext"]);
  assertEquals(usage.code, 2);
  assertEquals(
    usage.stderr.split("\n")[0],
    "ferry: --plaintext needs --open: a plain channel has no code",
  );
  const open = await spawnServe(join(base, "open"), ["--open", "--plaintext"]);
  const strict = await spawnServe(join(base, "strict"));
  try {
    const ok = await runCli([
      "send",
      join(base, "a.txt"),
      "--to",
      `127.0.0.1:${open.port}`,
      "--plaintext",
    ], { env: { FERRY_CODE: "" } });
    assertEquals(ok.code, 0, ok.stderr);
    assertEquals(await Deno.readTextFile(join(base, "open/a.txt")), "plain");
    const refused = await runCli([
      "send",
      join(base, "a.txt"),
      "--to",
      `127.0.0.1:${strict.port}`,
      "--plaintext",
    ], { env: { FERRY_CODE: "" } });
    assertEquals(refused.code, 1);
    assertStringIncludes(refused.stderr, "requires the encrypted channel");
  } finally {
    const stopped = await open.stop();
    assertStringIncludes(
      stopped.stderr,
      "--plaintext: senders may also use an unencrypted channel",
    );
    await strict.stop();
  }
});

/** The `cipher` of `send --json`'s connected object. */
function connectedCipher(stdout: string): unknown {
  const connected = stdout.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l))
    .find((o) => o.type === "connected");
  return connected?.cipher;
}

Deno.test("a sender on the node:crypto cipher engine and a receiver on OpenSSL's agree on ChaCha20-Poly1305 and exchange a tree byte for byte", async () => {
  // Without --allow-ffi ferry cannot load libcrypto and falls back to node:crypto.
  // Denied on purpose (a missing permission would stop ferry at start).
  const noFfi = [
    "--allow-net",
    "--allow-read",
    "--allow-write",
    "--allow-sys",
    "--allow-env",
    "--deny-ffi",
  ];
  await using probeDir = await tempDir();
  const probeFile = join(probeDir.path, "engine.ts");
  await Deno.writeTextFile(
    probeFile,
    `import { defaultAead, fastSuites } from ${
      JSON.stringify(new URL("../src/transport/aead.ts", import.meta.url).href)
    };\nconsole.log(defaultAead("chacha20-poly1305").engine, fastSuites().join(","));\n`,
  );
  const probe = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--quiet", ...noFfi, probeFile],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  // node:crypto's AES-GCM is slow, so a side without OpenSSL offers only ChaCha20-Poly1305.
  assertEquals(new TextDecoder().decode(probe.stdout).trim(), "node:crypto chacha20-poly1305");

  await using srcDir = await tempDir();
  const src = srcDir.path;
  await using inboxDir = await tempDir();
  const inbox = inboxDir.path;
  await Deno.mkdir(join(src, "tree", "sub"), { recursive: true });
  await Deno.writeFile(join(src, "tree", "big.bin"), randomBytes(3 * 1024 * 1024 + 17));
  await Deno.writeFile(join(src, "tree", "sub", "small.txt"), new TextEncoder().encode("hello"));
  const serve = await spawnServe(inbox); // --allow-all: OpenSSL where the system has it
  try {
    const sent = await runCli(
      ["send", join(src, "tree"), "--to", `127.0.0.1:${serve.port}`, "--json"],
      { permissions: noFfi },
    );
    assertEquals(sent.code, 0, sent.stderr);
    assertEquals(connectedCipher(sent.stdout), "chacha20-poly1305");
    assertEquals(await snapshot(join(inbox, "tree")), await snapshot(join(src, "tree")));
  } finally {
    await serve.stop();
  }
});

Deno.test({
  name: "two sides with OpenSSL agree on AES-256-GCM and exchange a tree byte for byte",
  ignore: !fastSuites().includes("aes-256-gcm"), // no OpenSSL 3 libcrypto at a known path here
  async fn() {
    await using srcDir = await tempDir();
    const src = srcDir.path;
    await using inboxDir = await tempDir();
    const inbox = inboxDir.path;
    await Deno.mkdir(join(src, "tree", "sub"), { recursive: true });
    await Deno.writeFile(join(src, "tree", "big.bin"), randomBytes(5 * 1024 * 1024 + 3));
    await Deno.writeFile(join(src, "tree", "sub", "small.txt"), new TextEncoder().encode("hi"));
    const serve = await spawnServe(inbox);
    try {
      const sent = await runCli([
        "send",
        join(src, "tree"),
        "--to",
        `127.0.0.1:${serve.port}`,
        "--json",
      ]);
      assertEquals(sent.code, 0, sent.stderr);
      assertEquals(connectedCipher(sent.stdout), "aes-256-gcm");
      assertEquals(await snapshot(join(inbox, "tree")), await snapshot(join(src, "tree")));
    } finally {
      await serve.stop();
    }
  },
});
