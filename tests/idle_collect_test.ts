/**
 * A server collects its garbage once it falls idle (src/server/idle_collect.ts),
 * never while a session runs; and serve's V8 flags expose the collection.
 */
import { assert, assertEquals } from "@std/assert";
import { join } from "node:path";
import { exposedGc, IdleCollector } from "../src/server/idle_collect.ts";
import { V8_FLAGS } from "../src/cli/v8_flags.ts";
import { sendInProcess, startServer } from "./_in_process.ts";
import { tempDir } from "./_harness.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

Deno.test("IdleCollector collects once after the delay, and not when a session started first", async () => {
  let collected = 0;
  const idle = new IdleCollector(() => collected++, 20);
  idle.idle();
  idle.idle(); // already due: one collection, not two
  await sleep(60);
  assertEquals(collected, 1);
  idle.idle();
  idle.cancel(); // a session started before it was due
  await sleep(60);
  assertEquals(collected, 1);
  idle.idle();
  await sleep(60);
  assertEquals(collected, 2);
});

Deno.test("IdleCollector does nothing where V8 exposes no collection", async () => {
  const idle = new IdleCollector(null, 1);
  idle.idle();
  await sleep(10);
  idle.cancel();
});

Deno.test("exposedGc() is V8's gc where --expose-gc gave it, else null", () => {
  const gc = (globalThis as { gc?: unknown }).gc;
  assertEquals(exposedGc() === null, typeof gc !== "function");
  // serve runs with it (and so does every command but send).
  assert(V8_FLAGS.split(/[=,]/).includes("--expose-gc"), V8_FLAGS);
});

Deno.test("a server collects when its last session has ended, and not during one", async () => {
  await using tmp = await tempDir("ferry-idle-");
  const dir = join(tmp.path, "inbox");
  await Deno.mkdir(dir);
  const file = join(tmp.path, "a.txt");
  await Deno.writeTextFile(file, "hello");
  const collections: number[] = [];
  let sessionsSeen = 0;
  const server = await startServer(dir, {
    idleCollector: new IdleCollector(() => collections.push(sessionsSeen), 300),
    onEvent: (e) => {
      if (e.type === "session-start") sessionsSeen++;
    },
  });
  try {
    await sendInProcess(server.port, [file]);
    await sleep(450);
    // One collection, after the session (none while it ran).
    assertEquals(collections, [1]);
    // Another session before the collection due after the next is (a connection that says
    // nothing is one too): it waits until that one has ended too.
    await sendInProcess(server.port, [file]);
    await sleep(50);
    const quiet = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
    await sleep(450);
    assertEquals(collections, [1]);
    quiet.close();
    await sleep(450);
    assertEquals(collections, [1, 3]);
  } finally {
    await server.close();
  }
});
