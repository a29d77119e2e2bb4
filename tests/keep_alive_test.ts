/** NOOP frames (feature sync): at most one per interval, however often the work ticks. */
import { assertEquals } from "@std/assert";
import { FrameType } from "../src/protocol/frame.ts";
import { KeepAlive } from "../src/transport/keep_alive.ts";

function writer() {
  const sent: string[] = [];
  return {
    sent,
    frame(type: number, payload: Uint8Array) {
      sent.push(`${type}:${payload.length}`);
      return Promise.resolve();
    },
    flush() {
      sent.push("flush");
      return Promise.resolve();
    },
  };
}

Deno.test("keep-alive: an empty NOOP, flushed, once the interval has passed; none before", async () => {
  const w = writer();
  const slow = new KeepAlive(w, 60_000);
  for (let i = 0; i < 100; i++) await slow.tick();
  assertEquals(w.sent, [], "nothing within the interval");
  const eager = new KeepAlive(w, 0);
  await eager.tick();
  await eager.tick();
  assertEquals(w.sent, [`${FrameType.NOOP}:0`, "flush", `${FrameType.NOOP}:0`, "flush"]);
});
