/**
 * First use as printed: the tasks run the CLI under the shipped permission
 * set with no prompt, from the user's own folder, and a permission the code
 * needs but the set lacks stops ferry at start instead of quietly turning a
 * feature off.
 */
import { assert, assertEquals, assertLess, assertStringIncludes } from "@std/assert";
import { join } from "node:path";
import { PERMISSION_SET, permissionFlags } from "../src/cli/permission_set.ts";
import { freePort, runCli, spawnServe, tempDir, TEST_CODE, waitFor } from "./_harness.ts";
import { assertRan, mount, umount } from "./_mounts.ts";

const CONFIG = new URL("../deno.json", import.meta.url).pathname;

Deno.test("serve and send stop at start, with one line, when a permission of the set is missing", async () => {
  await using baseDir = await tempDir();
  const base = baseDir.path;
  const withoutStatfs = permissionFlags({
    ...PERMISSION_SET,
    sys: PERMISSION_SET.sys.filter((kind) => kind !== "statfs"),
  });
  const result = await runCli(["serve", join(base, "in"), "--port", String(freePort()), "--json"], {
    permissions: ["--no-prompt", ...withoutStatfs],
  });
  assertEquals(result.code, 1, result.stderr);
  const error = JSON.parse(result.stdout.trim());
  assertEquals(error.code, "permission");
  assertEquals(error.message, "started without permission for sys statfs");
  assertStringIncludes(error.hint, "-P=ferry");
  // The whole set, denied ffi on purpose: ferry runs (without the C library).
  const denied = await runCli(["send", "--help"], {
    permissions: ["--no-prompt", "--deny-ffi", ...permissionFlags({ ...PERMISSION_SET, ffi: [] })],
  });
  assertEquals(denied.code, 0, denied.stderr);
});

/**
 * `deno task -q TASK ARGS...` of this repository, started from `cwd` (the user's folder), as a
 * person starts it from a shell: without the INIT_CWD that npx or npm set for this test run
 * (deno task keeps an INIT_CWD it inherits, as npm does).
 */
function task(cwd: string, name: string, args: string[], env: Record<string, string> = {}) {
  const inherited = Deno.env.toObject();
  delete inherited.INIT_CWD;
  return new Deno.Command(Deno.execPath(), {
    args: ["task", "-q", "--config", CONFIG, name, ...args],
    cwd,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    clearEnv: true,
    env: { ...inherited, NO_COLOR: "1", ...env },
  });
}

Deno.test("deno task serve and send take paths from the user's folder, with nothing on stderr", async () => {
  await using homeDir = await tempDir();
  const home = homeDir.path;
  const there = join(home, "receiver");
  const here = join(home, "sender");
  await Deno.mkdir(there);
  await Deno.mkdir(join(here, "docs"), { recursive: true });
  await Deno.writeTextFile(join(here, "docs", "note.txt"), "from the user's folder");
  const port = freePort();
  const serve = task(there, "serve", ["inbox", "--port", String(port), "--host", "127.0.0.1"], {
    FERRY_CODE: TEST_CODE,
  }).spawn();
  let out = "";
  const reading = (async () => {
    for await (const chunk of serve.stdout.pipeThrough(new TextDecoderStream())) out += chunk;
  })();
  try {
    await waitFor("serve's banner", () => out.includes("listening on port"), 20_000);
    // The task runs in the repository; DIR is still the user's ./inbox.
    assertStringIncludes(out, `receiving into ${await Deno.realPath(there)}/inbox`);
    assertStringIncludes(out, `task -q send PATH... --to 127.0.0.1:${port}`);
    const sent = await task(join(here, "docs"), "send", ["note.txt", "--to", `127.0.0.1:${port}`], {
      FERRY_CODE: TEST_CODE,
    }).output();
    const stderr = new TextDecoder().decode(sent.stderr);
    assertEquals(sent.code, 0, stderr);
    assertEquals(stderr, "", "no task echo, no prompt, no warning");
    assertEquals(
      await Deno.readTextFile(join(there, "inbox", "note.txt")),
      "from the user's folder",
    );
    const missing = await task(join(here, "docs"), "send", [
      "nope.txt",
      "--to",
      `127.0.0.1:${port}`,
    ])
      .output();
    assertEquals(missing.code, 1);
    assertStringIncludes(new TextDecoder().decode(missing.stderr), join(here, "docs", "nope.txt"));
  } finally {
    serve.kill("SIGTERM");
    await serve.status;
    await reading;
  }
});

function canMount(): string | null {
  if (Deno.build.os !== "linux") return "needs Linux tmpfs mounts";
  if (Deno.uid() !== 0) return "needs root to mount a small tmpfs";
  return null;
}
const noMount = canMount();

Deno.test({
  name: "serve under the shipped permissions refuses a file larger than its free space up front",
  ignore: noMount !== null,
  async fn() {
    await using baseDir = await tempDir();
    const base = baseDir.path;
    await using inboxDir = await tempDir("ferry-tmpfs-");
    const inbox = inboxDir.path;
    assertRan(await mount(["-t", "tmpfs", "-o", "size=20m", "tmpfs", inbox]));
    const big = join(base, "big.bin");
    const file = await Deno.open(big, { write: true, create: true });
    await file.truncate(256 * 1024 * 1024); // sparse: quick to make
    file.close();
    const serve = await spawnServe(inbox, ["--no-discovery"]);
    try {
      const started = performance.now();
      const sent = await runCli(["send", big, "--to", `127.0.0.1:${serve.port}`]);
      assertEquals(sent.code, 1, sent.stderr);
      assertStringIncludes(sent.stderr, "not enough free space on the receiver");
      assertLess(
        performance.now() - started,
        10_000,
        "refused up front, not after filling the disk",
      );
      assert(!sent.stderr.includes("disk is full"), sent.stderr);
    } finally {
      await serve.stop();
      await umount(inbox);
    }
  },
});
