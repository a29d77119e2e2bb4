import { assert, assertEquals, assertGreaterOrEqual, assertMatch } from "@std/assert";
import { normalizeCode } from "../src/transport/code.ts";
import { CODE_BITS, generateCode } from "../src/transport/generated_code.ts";
import { CodeGuard } from "../src/server/code_guard.ts";

Deno.test("generateCode() makes a number and three words, with at least 40 bits", () => {
  assertGreaterOrEqual(CODE_BITS, 40);
  const seen = new Set<string>();
  for (let i = 0; i < 200; i++) {
    const code = generateCode();
    assertMatch(code, /^\d{1,4}-[a-z]+-[a-z]+-[a-z]+$/);
    assertEquals(normalizeCode(code), code);
    seen.add(code);
  }
  assertEquals(seen.size, 200);
});

Deno.test("normalizeCode() folds case, spaces, underscores and hyphens; refuses empty and long", () => {
  assertEquals(normalizeCode("  4821 Crane_LOTUS--oyster "), "4821-crane-lotus-oyster");
  assertEquals(normalizeCode("-a-"), "a");
  assertEquals(normalizeCode(""), null);
  assertEquals(normalizeCode(" - _ "), null);
  assertEquals(normalizeCode("x".repeat(129)), null);
  assertEquals(normalizeCode("x".repeat(128)), "x".repeat(128));
});

function guardAt() {
  let now = 1_000_000;
  const guard = new CodeGuard(
    { slowAfter: 3, lockAfter: 5, windowMs: 60_000, lockMs: 600_000, maxDelayMs: 4000 },
    () => now,
  );
  return { guard, advance: (ms: number) => now += ms };
}

Deno.test("CodeGuard slows an address down after repeated failures, doubling up to a cap", () => {
  const { guard } = guardAt();
  const delays = [];
  for (let i = 0; i < 4; i++) {
    delays.push(guard.delayFor("10.0.0.9"));
    guard.fail("10.0.0.9");
  }
  assertEquals(delays, [0, 0, 0, 1000]);
  assertEquals(guard.delayFor("10.0.0.9"), 2000);
  assertEquals(guard.delayFor("10.0.0.10"), 0, "other addresses are not slowed");
});

Deno.test("CodeGuard locks an address out for lockMs after lockAfter failures, then forgets", () => {
  const { guard, advance } = guardAt();
  for (let i = 0; i < 4; i++) assertEquals(guard.fail("a").locked, false);
  assertEquals(guard.fail("a"), { failures: 5, locked: true });
  assertEquals(guard.lockedFor("a"), 600_000);
  assertEquals(guard.lockedFor("b"), 0);
  advance(600_001);
  assertEquals(guard.lockedFor("a"), 0);
  assertEquals(guard.delayFor("a"), 0);
});

Deno.test("CodeGuard counts only failures inside its window", () => {
  const { guard, advance } = guardAt();
  for (let i = 0; i < 4; i++) {
    guard.fail("a");
    advance(20_000);
  }
  // 4 failures over 80 s: only those within the last 60 s count.
  assert(guard.delayFor("a") <= 1000);
  assertEquals(guard.fail("a").locked, false);
});
