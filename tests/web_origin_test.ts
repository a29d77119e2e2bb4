/**
 * Which WebSocket requests `serve --web` takes as its own page's
 * (src/server/web_origin.ts): Host and Origin must agree, and Host must name
 * this machine without DNS (an IP, localhost, the machine's name), so that a
 * site that points its own name at this machine (DNS rebinding) is refused.
 */
import { assert, assertEquals } from "@std/assert";
import { fromOwnPage, isOwnHost, localNames } from "../src/server/web_origin.ts";

const names = localNames("Box");

Deno.test("web origin: the page opened by an address, localhost or the machine's name is its own", () => {
  for (
    const host of [
      "192.168.1.20:4456",
      "192.168.1.20",
      "[fd00::1]:4456",
      "[::1]:8080",
      "localhost:4456",
      "box:4456",
      "box.local:4456",
    ]
  ) {
    assert(fromOwnPage(host, `http://${host}`, names), host);
  }
  assertEquals(localNames(null), ["localhost"]);
  assertEquals(localNames("box.lan."), ["localhost", "box.lan"]);
});

Deno.test("web origin: rebinding names, a mismatched, missing or null Origin are refused", () => {
  for (
    const host of [
      "evil.example:4456",
      "192.168.1.20.nip.io:4456",
      "box.evil.example:4456",
      "localhost.evil.example",
      "1.2.3:4456",
      "[not-ip]:4456",
      "[::1]x:4456",
      "192.168.1.20:4456:1",
    ]
  ) {
    assertEquals(fromOwnPage(host, `http://${host}`, names), false, host);
  }
  assertEquals(fromOwnPage("192.168.1.20:4456", "http://evil.example", names), false);
  assertEquals(fromOwnPage("192.168.1.20:4456", "https://192.168.1.20:4456", names), false);
  assertEquals(fromOwnPage("192.168.1.20:4456", null, names), false);
  assertEquals(fromOwnPage("192.168.1.20:4456", "null", names), false);
  assertEquals(fromOwnPage(null, "http://192.168.1.20:4456", names), false);
  assertEquals(isOwnHost("evil.example:4456", names), false);
  assertEquals(isOwnHost(null, names), false);
  assert(isOwnHost("192.168.1.20:4456", names));
});
