/**
 * `ferry serve` listens on IPv6 and IPv4 by default, where the system allows
 * it, and shows an IPv4 sender as its IPv4 address (not ::ffff:a.b.c.d).
 */
import { assertEquals, assertStringIncludes } from "@std/assert";
import { join } from "node:path";
import { listenAll, unmapIpv4 } from "../src/transport/tcp.ts";
import { freePort, runCli, spawnCli, tempDir, waitFor } from "./_harness.ts";

/** Whether this machine has an IPv6 loopback to connect to. */
function hasIpv6Loopback(): boolean {
  try {
    const probe = Deno.listen({ hostname: "::1", port: 0 });
    probe.close();
    return true;
  } catch {
    return false;
  }
}
const IPV6 = hasIpv6Loopback();

Deno.test("unmapIpv4() shows an IPv4-mapped address as IPv4, anything else as it is", () => {
  assertEquals(unmapIpv4("::ffff:127.0.0.1"), "127.0.0.1");
  assertEquals(unmapIpv4("::FFFF:192.168.1.20"), "192.168.1.20");
  assertEquals(unmapIpv4("::1"), "::1");
  assertEquals(unmapIpv4("fd00::ffff:1.2.3.4"), "fd00::ffff:1.2.3.4");
  assertEquals(unmapIpv4("10.0.0.1"), "10.0.0.1");
});

Deno.test("listenAll() takes IPv4 and IPv6 connections on one port", async () => {
  const listeners = listenAll(0);
  const port = listeners[0]!.addr.port;
  try {
    for (const hostname of IPV6 ? ["127.0.0.1", "::1"] : ["127.0.0.1"]) {
      const accepted = Promise.any(listeners.map((l) => l.accept()));
      const conn = await Deno.connect({ hostname, port });
      (await accepted).close();
      conn.close();
    }
  } finally {
    for (const listener of listeners) listener.close();
  }
});

Deno.test("ferry serve with no --host takes senders over IPv4 and IPv6 and logs IPv4 as IPv4", async () => {
  await using baseDir = await tempDir();
  const base = baseDir.path;
  await Deno.writeTextFile(join(base, "a.txt"), "both families");
  const port = freePort();
  // Not spawnServe: that one listens on 127.0.0.1 only.
  const serve = spawnCli(["serve", join(base, "in"), "--port", String(port), "--no-discovery"]);
  const out = () => serve.output();
  try {
    await waitFor("serve's banner", () => out().includes("listening on port"), 15_000);
    const targets = IPV6 ? [`127.0.0.1:${port}`, `[::1]:${port}`] : [`127.0.0.1:${port}`];
    for (const to of targets) {
      const sent = await runCli(["send", join(base, "a.txt"), "--to", to]);
      assertEquals(sent.code, 0, `${to}: ${sent.stderr}`);
    }
    await waitFor(
      "a line per file received",
      () => out().split("received").length - 1 >= targets.length,
      10_000,
    );
    assertStringIncludes(out(), "from 127.0.0.1:");
    assertEquals(out().includes("::ffff:"), false, out());
  } finally {
    serve.child.kill("SIGTERM");
    await serve.done();
  }
});
