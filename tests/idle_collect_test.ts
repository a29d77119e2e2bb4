/**
 * A server collects its garbage once it falls idle (src/server/idle_collect.ts),
 * never while a session runs, and only after a session that proved the code;
 * and serve's V8 flags expose the collection.
 */
import { assert, assertEquals } from "@std/assert";
import { join } from "node:path";
import { exposedGc, IdleCollector } from "../src/server/idle_collect.ts";
import { V8_FLAGS } from "../src/cli/v8_flags.ts";
import { sendInProcess, startServer } from "./_in_process.ts";
import { tempDir } from "./_harness.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

Deno.test("IdleCollector collects what is owed once, after the delay, and not when a session started first", async () => {
  let collected = 0;
  const idle = new IdleCollector(() => collected++, 20);
  idle.idle(); // nothing owed yet
  await sleep(60);
  assertEquals(collected, 0);
  idle.owe();
  idle.idle();
  idle.idle(); // already due: one collection, not two
  await sleep(60);
  assertEquals(collected, 1);
  idle.idle(); // collected: nothing owed
  await sleep(60);
  assertEquals(collected, 1);
  idle.owe();
  idle.idle();
  idle.cancel(); // a session started before it was due: still owed
  await sleep(60);
  assertEquals(collected, 1);
  idle.idle();
  await sleep(60);
  assertEquals(collected, 2);
  idle.owe();
  idle.idle();
  idle.stop(); // the server stops: never again
  idle.idle();
  await sleep(60);
  assertEquals(collected, 2);
});

Deno.test("IdleCollector does nothing where V8 exposes no collection", async () => {
  const idle = new IdleCollector(null, 1);
  idle.owe();
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

Deno.test("a server collects when its last session has ended, not during one, and not for strangers", async () => {
  await using tmp = await tempDir("ferry-idle-");
  const dir = join(tmp.path, "inbox");
  await Deno.mkdir(dir);
  const file = join(tmp.path, "a.txt");
  await Deno.writeTextFile(file, "hello");
  /** The sessions started when each collection ran. */
  const collections: number[] = [];
  let sessionsSeen = 0;
  let collected = () => {};
  /** Resolves once there are `n` collections (or fails after a generous wait). */
  const collectionsReach = async (n: number) => {
    const deadline = Date.now() + 10_000;
    while (collections.length < n && Date.now() < deadline) {
      await new Promise<void>((r) => {
        collected = r;
        setTimeout(r, 100);
      });
    }
    assertEquals(collections.length, n, String(collections));
  };
  const server = await startServer(dir, {
    idleCollector: new IdleCollector(() => {
      collections.push(sessionsSeen);
      collected();
    }, 300),
    onEvent: (e) => {
      if (e.type === "session-start") sessionsSeen++;
    },
  });
  const openQuiet = () => Deno.connect({ hostname: "127.0.0.1", port: server.port });
  try {
    await sendInProcess(server.port, [file]);
    await collectionsReach(1);
    // One collection, after the session (none while it ran).
    assertEquals(collections, [1]);
    // Another session before the collection due after the next is (a connection that says
    // nothing is one too): it waits until that one has ended too.
    await sendInProcess(server.port, [file]);
    await sleep(50);
    const quiet = await openQuiet();
    await sleep(450);
    assertEquals(collections, [1]);
    quiet.close();
    await collectionsReach(2);
    assertEquals(collections, [1, 3]);
    // Connections that never prove the code owe nothing: no collection after them.
    for (let i = 0; i < 3; i++) (await openQuiet()).close();
    await sleep(700);
    assertEquals(collections, [1, 3]);
  } finally {
    await server.close();
  }
});
