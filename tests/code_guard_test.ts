/**
 * The wrong-code guard on its own: pending guesses, crediting back,
 * releasing, the concurrency bound, the table's bound (which never forgets a
 * lock), address groups, and the global budget. tests/guess_budget_test.ts
 * checks the same promises against a running server.
 */
import { assert, assertEquals, assertThrows } from "@std/assert";
import { ProtocolError } from "../src/protocol/errors.ts";
import { addressGroup } from "../src/server/address_group.ts";
import { CodeGuard, DEFAULT_GUARD, type GuardPolicy } from "../src/server/code_guard.ts";

function guardAt(policy: Partial<GuardPolicy> = {}) {
  let now = 1_000_000;
  const guard = new CodeGuard(
    {
      slowAfter: 3,
      lockAfter: 5,
      windowMs: 60_000,
      lockMs: 600_000,
      maxDelayMs: 4000,
      maxConcurrent: 100,
      ...policy,
    },
    () => now,
  );
  return { guard, advance: (ms: number) => now += ms };
}

function refusal(fn: () => unknown): string {
  return assertThrows(fn, ProtocolError).code;
}

Deno.test("CodeGuard counts a guess as pending from reserve(): slow-down and lockout apply at once", () => {
  const { guard } = guardAt();
  const delays = [];
  for (let i = 0; i < 5; i++) delays.push(guard.admit("10.0.0.9").reserve());
  // Nothing has failed yet: the pending guesses alone slow the group down and spend its budget.
  assertEquals(delays, [0, 0, 0, 1000, 2000]);
  assertEquals(guard.delayFor("10.0.0.9"), 4000);
  assertEquals(refusal(() => guard.admit("10.0.0.9")), "locked-out");
  assertEquals(guard.lockedFor("10.0.0.9"), 0, "not locked yet: the pending guesses decide");
  assertEquals(guard.delayFor("10.0.0.10"), 0, "other addresses are not slowed");
});

Deno.test("CodeGuard refuses the reservation itself when the budget went meanwhile", () => {
  const { guard } = guardAt();
  const late = guard.admit("10.0.0.9");
  for (let i = 0; i < 5; i++) guard.admit("10.0.0.9").reserve();
  assertEquals(refusal(() => late.reserve()), "locked-out");
});

Deno.test("CodeGuard credits a confirmed guess back", () => {
  const { guard } = guardAt();
  const attempts = Array.from({ length: 5 }, () => guard.admit("10.0.0.9"));
  for (const a of attempts) a.reserve();
  attempts[0]!.confirm();
  attempts[0]!.release();
  attempts[1]!.confirm();
  attempts[1]!.release();
  assertEquals(guard.delayFor("10.0.0.9"), 1000, "3 guesses left pending");
  assertEquals(guard.admit("10.0.0.9").reserve(), 1000);
  for (const a of attempts.slice(2)) assertEquals(a.fail().locked, false);
  assertEquals(guard.delayFor("10.0.0.9"), 2000, "3 failures and 1 pending");
});

Deno.test("CodeGuard forgets a pending guess that is released (the receiver stopped), without counting it", () => {
  const { guard } = guardAt();
  for (let i = 0; i < 20; i++) {
    const attempt = guard.admit("10.0.0.9");
    assertEquals(attempt.reserve(), 0);
    attempt.release();
    attempt.release(); // idempotent
  }
  assertEquals(guard.delayFor("10.0.0.9"), 0);
  assertEquals(guard.lockedFor("10.0.0.9"), 0);
});

Deno.test("CodeGuard locks the group when its pending guesses fail, for lockMs", () => {
  const { guard, advance } = guardAt();
  const attempts = Array.from({ length: 5 }, () => guard.admit("10.0.0.9"));
  for (const a of attempts) a.reserve();
  const results = attempts.map((a) => {
    const result = a.fail();
    a.release();
    return result.locked;
  });
  assertEquals(results, [false, false, false, false, true]);
  const err = assertThrows(() => guard.admit("10.0.0.9"), ProtocolError);
  assertEquals(err.code, "locked-out");
  assertEquals(err.message, "too many wrong codes from 10.0.0.9; try again in 10 min");
  advance(600_001);
  assertEquals(guard.admit("10.0.0.9").reserve(), 0, "the lock ended and cleared the failures");
});

Deno.test("CodeGuard runs at most maxConcurrent key exchanges per group at once", () => {
  const { guard } = guardAt({ maxConcurrent: 2 });
  const first = guard.admit("10.0.0.9");
  guard.admit("10.0.0.9");
  const err = assertThrows(() => guard.admit("10.0.0.9"), ProtocolError);
  assertEquals(err.code, "busy");
  assertEquals(
    err.message,
    "2 key exchanges from 10.0.0.9 are under way, the most at once; try again shortly",
  );
  guard.admit("10.0.0.10"); // another group
  first.release();
  guard.admit("10.0.0.9");
  assertEquals(DEFAULT_GUARD.maxConcurrent, 2);
});

Deno.test("CodeGuard keeps a lock while 10,000 other addresses come and go; the oldest unlocked go first", () => {
  const { guard } = guardAt({ maxAddresses: DEFAULT_GUARD.maxAddresses });
  for (let i = 0; i < 5; i++) guard.fail("10.0.0.1");
  guard.fail("10.200.0.1");
  for (let i = 0; i < 10_500; i++) guard.fail(`10.1.${i >> 8}.${i & 255}`);
  assert(guard.lockedFor("10.0.0.1") > 0, "the locked address is remembered");
  // The oldest unlocked entries were forgotten: their failures start again at 1.
  assertEquals(guard.fail("10.200.0.1").failures, 1);
  assertEquals(guard.fail("10.1.0.0").failures, 1);
  // The newest are still counted.
  assertEquals(guard.fail("10.1.41.3").failures, 2);
});

Deno.test("CodeGuard refuses new addresses rather than forget a lock when the table is full", () => {
  const { guard, advance } = guardAt({ maxAddresses: 3 });
  for (const host of ["10.0.0.1", "10.0.0.2", "10.0.0.3"]) {
    for (let i = 0; i < 5; i++) guard.fail(host);
  }
  assertEquals(refusal(() => guard.admit("10.0.0.4")), "busy");
  for (const host of ["10.0.0.1", "10.0.0.2", "10.0.0.3"]) assert(guard.lockedFor(host) > 0);
  // A group in its key exchange is kept too.
  advance(600_001);
  const a = guard.admit("10.0.0.1");
  const b = guard.admit("10.0.0.2");
  const c = guard.admit("10.0.0.3");
  assertEquals(refusal(() => guard.admit("10.0.0.4")), "busy");
  a.release();
  guard.admit("10.0.0.4").release();
  b.release();
  c.release();
});

Deno.test("addressGroup() groups IPv6 by /64 and reads IPv4-mapped addresses as IPv4", () => {
  assertEquals(addressGroup("192.168.1.20"), "192.168.1.20");
  assertEquals(addressGroup("::ffff:192.168.1.20"), "192.168.1.20");
  assertEquals(addressGroup("::FFFF:c0a8:114"), "192.168.1.20");
  assertEquals(addressGroup("0:0:0:0:0:ffff:192.168.1.20"), "192.168.1.20");
  assertEquals(addressGroup("2001:db8:1:2::1"), "2001:db8:1:2::/64");
  assertEquals(addressGroup("2001:0DB8:0001:0002:ffff:1:2:3"), "2001:db8:1:2::/64");
  assertEquals(addressGroup("2001:db8::1"), "2001:db8:0:0::/64");
  assertEquals(addressGroup("2001:db8:0:0:1::"), "2001:db8:0:0::/64");
  assertEquals(addressGroup("::1"), "0:0:0:0::/64");
  assertEquals(addressGroup("::"), "0:0:0:0::/64");
  assertEquals(addressGroup("[fe80::1%eth0]"), "fe80:0:0:0::/64");
  assertEquals(addressGroup("fe80::aa:bb%2"), "fe80:0:0:0::/64");
  // Not addresses: each spelling is its own group.
  for (const odd of ["1:2:3", "1::2::3", "1.2.3.4::", "1:2:3:4:5:6:7:8::", "256.0.0.1", "host"]) {
    assertEquals(addressGroup(odd), odd);
  }
});

Deno.test("CodeGuard counts a /64 as one address, and an IPv4-mapped address as its IPv4 one", () => {
  const { guard } = guardAt();
  const hosts = [
    "2001:db8:1:2::1",
    "2001:db8:1:2::2",
    "2001:db8:1:2:ffff::9",
    "2001:db8:1:2:1:2:3:4",
  ];
  for (const host of hosts) guard.fail(host);
  assertEquals(guard.fail("2001:db8:1:2:aaaa::").locked, true);
  assert(guard.lockedFor("2001:db8:1:2::77") > 0);
  assertEquals(guard.lockedFor("2001:db8:1:3::1"), 0, "the next /64 is another group");
  const err = assertThrows(() => guard.admit("2001:db8:1:2::5"), ProtocolError);
  assertEquals(err.message, "too many wrong codes from 2001:db8:1:2::/64; try again in 10 min");
  for (let i = 0; i < 5; i++) guard.fail(i % 2 === 0 ? "::ffff:10.0.0.7" : "10.0.0.7");
  assert(guard.lockedFor("10.0.0.7") > 0);
  assert(guard.lockedFor("::ffff:10.0.0.7") > 0);
});

Deno.test("CodeGuard slows every key share once the failures of all groups pass the global budget, and says so once", () => {
  const { guard, advance } = guardAt({ globalSlowAfter: 4, globalDelayMs: 700 });
  const fail = (host: string) => {
    const attempt = guard.admit(host);
    attempt.reserve();
    const result = attempt.fail();
    attempt.release();
    return result.globalSlowdown;
  };
  const started = [];
  for (let i = 0; i < 4; i++) started.push(fail(`10.0.${i}.1`));
  assertEquals(guard.delayFor("10.9.9.9"), 0, "4 failures: within the budget");
  started.push(fail("10.0.4.1"), fail("10.0.5.1"));
  assertEquals(started, [false, false, false, false, true, false], "reported once");
  assert(guard.globalSlowdown);
  assertEquals(guard.delayFor("10.9.9.9"), 700, "an address that never failed waits too");
  assertEquals(guard.admit("10.9.9.9").reserve(), 700);
  advance(60_001);
  assertEquals(guard.delayFor("10.9.9.9"), 0, "the failures left the window");
  for (let i = 0; i < 4; i++) fail(`10.1.${i}.1`);
  assertEquals(fail("10.1.9.1"), true, "a new episode, a window later, is reported again");
});
