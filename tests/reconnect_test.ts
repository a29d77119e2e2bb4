/**
 * The sender's reconnect policy alone (src/client/reconnect.ts), on a fake
 * clock: which failures get another connection, and how long it waits.
 */
import { assertEquals, assertRejects } from "@std/assert";
import { ConnectFailed, ConnectionLost, FerryError } from "../src/errors.ts";
import {
  FIRST_RETRY_DELAY_MS,
  MAX_RETRY_DELAY_MS,
  withReconnects,
  worthRetrying,
} from "../src/client/reconnect.ts";

/** A clock that records each wait and returns at once. */
function fakeClock() {
  const waits: number[] = [];
  return { waits, sleep: (ms: number) => (waits.push(ms), Promise.resolve()) };
}

/** A session that fails with `failures[attempt - 1]`, and succeeds after them. */
function failing(failures: Error[]) {
  const attempts: number[] = [];
  const session = (attempt: number) => {
    attempts.push(attempt);
    const failure = failures[attempt - 1];
    return failure ? Promise.reject(failure) : Promise.resolve(`done at ${attempt}`);
  };
  return { attempts, session };
}

const lost = () => new ConnectionLost("connection-lost", "the connection to h:1 was lost");
const refused = () => new ConnectFailed("connect-refused", "h:1 refused the connection");

Deno.test("worthRetrying: a lost session always, a failed connection only after the first", () => {
  assertEquals(worthRetrying(lost(), 1), true);
  assertEquals(worthRetrying(new ConnectionLost("refused", "busy"), 1), true);
  assertEquals(worthRetrying(new ConnectionLost("timeout", "silent"), 3), true);
  assertEquals(worthRetrying(refused(), 1), false);
  assertEquals(worthRetrying(refused(), 2), true);
  assertEquals(worthRetrying(new FerryError("wrong-code", "wrong code"), 2), false);
  assertEquals(worthRetrying(new FerryError("protocol", "not ferry"), 1), false);
  assertEquals(worthRetrying(new Error("a bug"), 2), false);
});

Deno.test("withReconnects waits 1 s, doubling up to 30 s, and tells each retry", async () => {
  const clock = fakeClock();
  const { attempts, session } = failing(Array.from({ length: 7 }, lost));
  const told: [number, number, string][] = [];
  const result = await withReconnects({
    retries: 10,
    sleep: clock.sleep,
    onRetry: (attempt, delay, reason) => told.push([attempt, delay, reason]),
  }, session);
  assertEquals(result, "done at 8");
  assertEquals(attempts, [1, 2, 3, 4, 5, 6, 7, 8]);
  assertEquals(FIRST_RETRY_DELAY_MS, 1000);
  assertEquals(clock.waits, [1000, 2000, 4000, 8000, 16_000, 30_000, 30_000]);
  assertEquals(Math.max(...clock.waits), MAX_RETRY_DELAY_MS);
  assertEquals(told.map(([attempt]) => attempt), [1, 2, 3, 4, 5, 6, 7]);
  assertEquals(told.map(([, delay]) => delay), clock.waits);
  assertEquals(told[0]?.[2], "the connection to h:1 was lost");
});

Deno.test("withReconnects starts from the first delay given", async () => {
  const clock = fakeClock();
  const { session } = failing([lost(), lost(), lost()]);
  await withReconnects({ retries: 3, firstDelayMs: 10, sleep: clock.sleep, onRetry() {} }, session);
  assertEquals(clock.waits, [10, 20, 40]);
});

Deno.test("withReconnects gives up after `retries` reconnections, with the last failure", async () => {
  const clock = fakeClock();
  const last = refused();
  const { attempts, session } = failing([lost(), lost(), last]);
  const err = await assertRejects(
    () => withReconnects({ retries: 2, sleep: clock.sleep, onRetry() {} }, session),
    ConnectFailed,
  );
  assertEquals(err, last);
  assertEquals(attempts, [1, 2, 3]);
  assertEquals(clock.waits.length, 2);
});

Deno.test("withReconnects reports a first failed connection, and any other failure, at once", async () => {
  for (const failure of [refused(), new FerryError("wrong-code", "wrong code"), new Error("bug")]) {
    const clock = fakeClock();
    const retried: number[] = [];
    const { attempts, session } = failing([failure]);
    const err = await assertRejects(() =>
      withReconnects({ retries: 5, sleep: clock.sleep, onRetry: (a) => retried.push(a) }, session)
    );
    assertEquals(err, failure);
    assertEquals(attempts, [1]);
    assertEquals(clock.waits, []);
    assertEquals(retried, []);
  }
});

Deno.test("withReconnects with no retries never waits", async () => {
  const clock = fakeClock();
  const { attempts, session } = failing([lost()]);
  await assertRejects(
    () => withReconnects({ retries: 0, sleep: clock.sleep, onRetry() {} }, session),
    ConnectionLost,
  );
  assertEquals(attempts, [1]);
  assertEquals(clock.waits, []);
});
