import { assert, assertEquals, assertRejects } from "@std/assert";
import { join } from "node:path";
import { after, every, liveTimers, sleep } from "../src/transport/timer.ts";
import { Watchdog } from "../src/transport/watchdog.ts";
import { sendInProcess, startServer } from "./_in_process.ts";
import { tempDir } from "./_temp_dir.ts";

Deno.test("after() runs its callback once, when due, unless cancelled", async () => {
  const ran: string[] = [];
  const start = performance.now();
  const before = liveTimers();
  after(30, () => ran.push("due"));
  after(10, () => ran.push("cancelled")).cancel();
  after(Number.NaN, () => ran.push("not a number: at once"));
  assertEquals(liveTimers(), before + 2);
  await sleep(60);
  assertEquals(ran, ["not a number: at once", "due"]);
  assert(performance.now() - start >= 30);
  assertEquals(liveTimers(), before);
});

Deno.test("every() runs its callback again and again until cancelled, also from inside", async () => {
  const before = liveTimers();
  let outside = 0;
  const ticking = every(10, () => outside++);
  let inside = 0;
  const self: { timer: ReturnType<typeof every> | null } = { timer: null };
  self.timer = every(10, () => {
    if (++inside === 3) self.timer!.cancel();
  });
  await sleep(150);
  ticking.cancel();
  const stopped = outside;
  await sleep(60);
  assert(stopped >= 3, `ran ${stopped} times`);
  assertEquals(outside, stopped, "none after cancel");
  assertEquals(inside, 3, "cancelled from inside after its third run");
  assertEquals(liveTimers(), before);
});

Deno.test("Watchdog fires once after its time without a touch, and never while held or stopped", async () => {
  let fired = 0;
  const dog = new Watchdog(200, () => fired++);
  for (let i = 0; i < 6; i++) {
    await sleep(50);
    dog.touch();
  }
  assertEquals(fired, 0, "touched in time");
  const release = dog.hold();
  await sleep(400);
  assertEquals(fired, 0, "held");
  release();
  await sleep(500);
  assertEquals([fired, dog.expired], [1, true]);
  await sleep(200);
  assertEquals(fired, 1, "once");
  let stoppedFired = 0;
  const stopped = new Watchdog(20, () => stoppedFired++);
  stopped.stop();
  await sleep(60);
  assertEquals(stoppedFired, 0);
});

Deno.test("a send and the server's session leave no timer behind, done or refused", async () => {
  await using tmp = await tempDir("ferry-timers-");
  const inbox = join(tmp.path, "inbox");
  await Deno.mkdir(inbox);
  const file = join(tmp.path, "a.txt");
  await Deno.writeTextFile(file, "hello");
  const before = liveTimers();
  const server = await startServer(inbox);
  try {
    assertEquals((await sendInProcess(server.port, [file])).files, 1);
    await assertRejects(() => sendInProcess(server.port, [file], { code: "wrong-code-words" }));
  } finally {
    await server.close();
  }
  assertEquals(liveTimers(), before);
});
