/**
 * Text that came from a peer is never printed raw, on either side: the
 * receiver's log shows only the code of an ERROR a sender sent before the
 * key exchange, and a sender that refuses an open receiver is logged as
 * such.
 */
import { assertFalse, assertStringIncludes } from "@std/assert";
import { join } from "node:path";
import { encodeFrame, FrameType } from "../src/protocol/frame.ts";
import { Channel, encodePreamble, PREAMBLE_BYTES } from "../src/protocol/preamble.ts";
import { FrameReader } from "../src/transport/frame_io.ts";
import { runCli, spawnServe, tempDir, TEST_CODE, waitFor } from "./_harness.ts";
import { shippedPermissions } from "./_permissions.ts";

const HOSTILE = "\x1b]0;owned\x07\x1b[2J\x1b[32mall files received\x1b[0m\u202e\x9b2J";

Deno.test("serve logs only the code of a sender's ERROR before the key exchange", async () => {
  await using baseDir = await tempDir();
  const base = baseDir.path;
  const serve = await spawnServe(join(base, "in"), ["--no-discovery"]);
  try {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: serve.port });
    const open = crypto.getRandomValues(new Uint8Array(16));
    await conn.write(Uint8Array.from([
      ...encodePreamble({ version: 1, channel: Channel.cpace }),
      ...encodeFrame(FrameType.CHANNEL_OPEN, open),
    ]));
    const reader = new FrameReader(conn);
    await reader.readRaw(PREAMBLE_BYTES);
    await reader.next(); // the receiver's CHANNEL_OPEN
    const error = JSON.stringify({ code: "bye\x1b[2J", message: HOSTILE });
    await conn.write(encodeFrame(FrameType.ERROR, new TextEncoder().encode(error)));
    await reader.next().catch(() => null);
    conn.close();
    await waitFor(
      "serve's line on the sender's ERROR",
      () => serve.output().includes("stopped before the key exchange"),
    );
  } finally {
    const { stdout, stderr } = await serve.stop();
    const out = stdout + stderr;
    assertStringIncludes(out, "the sender stopped before the key exchange (unknown)");
    for (const bad of ["\x1b", "\x07", "\x9b", "\u202e", "owned", "all files received"]) {
      assertFalse(out.includes(bad), `${JSON.stringify(bad)} reached the log: ${out}`);
    }
  }
});

Deno.test("serve --open logs a sender that has a code and refused it", async () => {
  await using baseDir = await tempDir();
  const base = baseDir.path;
  await Deno.writeTextFile(join(base, "a.txt"), "x");
  const serve = await spawnServe(join(base, "in"), ["--open", "--no-discovery"]);
  try {
    const sent = await runCli(["send", join(base, "a.txt"), "--to", `127.0.0.1:${serve.port}`], {
      permissions: shippedPermissions("send"),
      env: { FERRY_CODE: TEST_CODE },
    });
    assertStringIncludes(sent.stderr, "asks for no code");
    await waitFor(
      "serve's line naming code-expected",
      () => serve.output().includes("code-expected"),
    );
  } finally {
    const { stdout, stderr } = await serve.stop();
    assertStringIncludes(stdout + stderr, "sends nothing to an open receiver (code-expected)");
  }
});
