/** The write buffers a session lends to its incoming files (src/server/incoming_file.ts). */
import { assertEquals, assertStrictEquals } from "@std/assert";
import { WriteBuffers } from "../src/server/incoming_file.ts";
import { MAX_FRAME_PAYLOAD } from "../src/protocol/limits.ts";

Deno.test("WriteBuffers.claim() lends the same pair of frame-sized buffers to every file", async () => {
  const buffers = new WriteBuffers();
  const first = await buffers.claim();
  const second = await buffers.claim();
  assertStrictEquals(first[0], second[0]);
  assertStrictEquals(first[1], second[1]);
  assertEquals(first.map((b) => b.length), [MAX_FRAME_PAYLOAD, MAX_FRAME_PAYLOAD]);
});

Deno.test("WriteBuffers.claim() waits for the last write from the pair, even a failed one", async () => {
  const buffers = new WriteBuffers();
  await buffers.claim();
  for (const outcome of ["resolve", "reject"] as const) {
    let settle!: () => void;
    const writing = new Promise<void>((resolve, reject) => {
      settle = outcome === "resolve" ? resolve : () => reject(new Error("disk full"));
    });
    writing.catch(() => {});
    buffers.track(writing);
    let claimed = false;
    const next = buffers.claim().then(() => claimed = true);
    await new Promise((r) => setTimeout(r, 20));
    assertEquals(claimed, false, `claimed while the write was in flight (${outcome})`);
    settle();
    await next;
    assertEquals(claimed, true);
  }
});
