import { assert, assertEquals } from "@std/assert";
import { after, sleep } from "../src/transport/timer.ts";
import { Watchdog } from "../src/transport/watchdog.ts";

Deno.test("after() runs its callback once, when due, unless cancelled", async () => {
  const ran: string[] = [];
  const start = performance.now();
  after(30, () => ran.push("due"));
  after(10, () => ran.push("cancelled")).cancel();
  await sleep(60);
  assertEquals(ran, ["due"]);
  assert(performance.now() - start >= 30);
});

Deno.test("Watchdog fires once after its time without a touch, and never while held or stopped", async () => {
  let fired = 0;
  const dog = new Watchdog(40, () => fired++);
  for (let i = 0; i < 4; i++) {
    await sleep(20);
    dog.touch();
  }
  assertEquals(fired, 0, "touched in time");
  const release = dog.hold();
  await sleep(80);
  assertEquals(fired, 0, "held");
  release();
  await sleep(100);
  assertEquals([fired, dog.expired], [1, true]);
  await sleep(60);
  assertEquals(fired, 1, "once");
  let stoppedFired = 0;
  const stopped = new Watchdog(20, () => stoppedFired++);
  stopped.stop();
  await sleep(60);
  assertEquals(stoppedFired, 0);
});
