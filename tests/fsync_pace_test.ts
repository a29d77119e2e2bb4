import { assert, assertEquals, assertRejects } from "@std/assert";
import { join } from "node:path";
import {
  FsyncPace,
  fsyncPaced,
  PROBE_EVERY,
  SLOW_FSYNC_MS,
  SLOW_STRIKES,
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
  const inline = drive(pace, SLOW_STRIKES + 3 * PROBE_EVERY, SLOW);
  assert(inline.slice(0, SLOW_STRIKES).every((x) => x));
  const after = inline.slice(SLOW_STRIKES);
  assertEquals(after.filter((x) => x).length, 3, "one probe per PROBE_EVERY files");
  assertEquals(after.indexOf(true), PROBE_EVERY - 1);
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
});

Deno.test("fsyncPaced() syncs in place or not, and reports a failing fsync as a rejection", async () => {
  const dir = await tempDir();
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
  await Deno.remove(dir, { recursive: true });
});
