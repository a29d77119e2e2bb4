import { assert, assertEquals, assertRejects } from "@std/assert";
import { join } from "node:path";
import {
  FsyncPace,
  fsyncPaced,
  MAX_PROBE_EVERY,
  PROBE_EVERY,
  SLOW_FSYNC_MS,
  SLOW_STRIKES,
  STALL_FSYNC_MS,
} from "../src/server/fsync_pace.ts";
import { tempDir } from "./_harness.ts";

const FAST = SLOW_FSYNC_MS / 10;
const SLOW = SLOW_FSYNC_MS * 10;

/** Drives `pace` like a session: asks, and records a time for every in-place fsync. */
function drive(pace: FsyncPace, files: number, ms: number): boolean[] {
  const inline: boolean[] = [];
  for (let i = 0; i < files; i++) {
    const here = pace.inline();
    inline.push(here);
    if (here) pace.record(ms);
  }
  return inline;
}

Deno.test("FsyncPace keeps fast fsyncs in place", () => {
  const pace = new FsyncPace();
  assert(drive(pace, 10_000, FAST).every((x) => x));
});

Deno.test("FsyncPace moves fsyncs to the thread pool after a run of slow ones, and probes", () => {
  const pace = new FsyncPace();
  const inline = drive(pace, SLOW_STRIKES + PROBE_EVERY * 7, SLOW);
  assert(inline.slice(0, SLOW_STRIKES).every((x) => x));
  const after = inline.slice(SLOW_STRIKES);
  // Probes after PROBE_EVERY files, then 2× and 4× as many, as each probe is slow too.
  const probes = after.flatMap((x, i) => x ? [i + 1] : []);
  assertEquals(probes, [PROBE_EVERY, PROBE_EVERY * 3, PROBE_EVERY * 7]);
});

Deno.test("FsyncPace probes at least once every MAX_PROBE_EVERY files", () => {
  const pace = new FsyncPace();
  drive(pace, SLOW_STRIKES + MAX_PROBE_EVERY * 8, SLOW);
  const inline = drive(pace, MAX_PROBE_EVERY * 2, SLOW);
  assertEquals(inline.filter((x) => x).length, 2);
});

Deno.test("FsyncPace moves fsyncs to the thread pool at once after one that stalled", () => {
  const pace = new FsyncPace();
  drive(pace, 100, FAST);
  assert(pace.inline());
  pace.record(STALL_FSYNC_MS * 2);
  assertEquals(pace.inline(), false);
});

Deno.test("FsyncPace ignores a slow fsync now and then among fast ones", () => {
  const pace = new FsyncPace();
  for (let i = 0; i < 1000; i++) {
    assert(pace.inline());
    pace.record(i % 3 === 0 ? SLOW : FAST);
  }
  assert(pace.inline());
});

Deno.test("FsyncPace comes back in place after a fast probe", () => {
  const pace = new FsyncPace();
  drive(pace, SLOW_STRIKES, SLOW);
  assertEquals(pace.inline(), false);
  drive(pace, PROBE_EVERY, FAST); // the probe among them is fast
  assert(drive(pace, 100, FAST).every((x) => x));
  // Probing starts again at PROBE_EVERY after the next move to the thread pool.
  const inline = drive(pace, SLOW_STRIKES + PROBE_EVERY, SLOW);
  assertEquals(inline.slice(SLOW_STRIKES).indexOf(true), PROBE_EVERY - 1);
});

Deno.test("fsyncPaced() syncs in place or not, and reports a failing fsync as a rejection", async () => {
  await using tmp = await tempDir();
  const dir = tmp.path;
  const file = await Deno.open(join(dir, "f"), { write: true, create: true });
  await file.write(new Uint8Array(100));
  const fast = new FsyncPace();
  await fsyncPaced(file, fast);
  const slow = new FsyncPace();
  drive(slow, SLOW_STRIKES, SLOW);
  await fsyncPaced(file, slow); // on the thread pool
  file.close();
  await assertRejects(() => fsyncPaced(file, fast)); // a closed file: no throw, a rejection
  await assertRejects(() => fsyncPaced(file, slow));
});
