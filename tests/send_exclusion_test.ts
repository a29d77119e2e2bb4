/**
 * What `ferry send` leaves out: what `--exclude` matches (glob_test.ts has the
 * matcher), and a receiving folder's staging area, which is never sent. The
 * `--json` stream is how these tests see what went out.
 */
import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { join } from "node:path";
import { parseNdjson, SEND_TYPES } from "./_ndjson.ts";
import { runCli, snapshot, spawnServe, tempDir } from "./_harness.ts";

Deno.test("ferry send --exclude leaves out what matches: it neither arrives nor is announced", async () => {
  await using baseDir = await tempDir();
  const base = baseDir.path;
  const src = join(base, "proj");
  const inbox = join(base, "inbox");
  for (const dir of ["src", "node_modules/pkg", "build/out", "docs"]) {
    await Deno.mkdir(join(src, dir), { recursive: true });
  }
  for (
    const file of [
      "src/main.c",
      "src/main.o",
      "src/tmp.swp",
      "node_modules/pkg/index.js",
      "build/out/app",
      "docs/guide.md",
      "docs/draft.md",
      "keep.txt",
    ]
  ) {
    await Deno.writeTextFile(join(src, file), file);
  }
  const serve = await spawnServe(inbox);
  try {
    const sent = await runCli([
      "send",
      src,
      "--to",
      `127.0.0.1:${serve.port}`,
      "--json",
      "--exclude",
      "*.o",
      "-x",
      "node_modules",
      "--exclude",
      "build/**",
      "--exclude=docs/draft.md",
      "--exclude",
      "*.sw[op]",
    ]);
    assertEquals(sent.code, 0, sent.stdout);
    const objects = parseNdjson(sent.stdout, SEND_TYPES);
    const announced = objects.filter((o) => o.type === "file-start").map((o) => o.path).sort();
    assertEquals(announced, ["proj/docs/guide.md", "proj/keep.txt", "proj/src/main.c"]);
    assertEquals(objects.at(-1)!.files, 3);
    assertEquals(objects.at(-1)!.skipped, 0);
    assertEquals(await Object.keys(await snapshot(inbox)).sort(), [
      "proj",
      "proj/docs",
      "proj/docs/guide.md",
      "proj/keep.txt",
      "proj/src",
      "proj/src/main.c",
    ]);
    const bad = await runCli(["send", src, "--to", "127.0.0.1", "--exclude", "[oops"]);
    assertEquals(bad.code, 2);
    assertStringIncludes(bad.stderr, "ferry: --exclude '[oops': an unclosed '['");
  } finally {
    await serve.stop();
  }
});

Deno.test("ferry send never sends a receiving folder's staging area (.ferry with tmp or partial)", async () => {
  await using baseDir = await tempDir();
  const base = baseDir.path;
  const first = join(base, "first");
  const second = join(base, "second");
  const serveFirst = await spawnServe(first);
  const serveSecond = await spawnServe(second);
  try {
    // Something arrives in the first inbox, and its staging area holds leftovers.
    await Deno.writeTextFile(join(base, "doc.txt"), "document");
    const sent = await runCli([
      "send",
      join(base, "doc.txt"),
      "--to",
      `127.0.0.1:${serveFirst.port}`,
    ]);
    assertEquals(sent.code, 0, sent.stderr);
    await Deno.writeTextFile(join(first, ".ferry/tmp/leftover.tmp"), "half a file");
    await Deno.mkdir(join(first, "sub/.ferry/partial"), { recursive: true });
    await Deno.writeTextFile(join(first, "sub/.ferry/partial/p"), "partial");
    // A folder merely named .ferry (no tmp, no partial) is ordinary data.
    await Deno.mkdir(join(first, "notes/.ferry"), { recursive: true });
    await Deno.writeTextFile(join(first, "notes/.ferry/config"), "mine");
    assert((await snapshot(first, { includeStaging: true }))[".ferry/tmp/leftover.tmp"]);

    // Now send that whole inbox on to the second server.
    const relay = await runCli(["send", first, "--to", `127.0.0.1:${serveSecond.port}`, "--json"]);
    assertEquals(relay.code, 0, relay.stdout);
    const objects = parseNdjson(relay.stdout, SEND_TYPES);
    const announced = objects.filter((o) => o.type === "file-start").map((o) => o.path).sort();
    assertEquals(announced, ["first/doc.txt", "first/notes/.ferry/config"]);
    assertEquals(objects.some((o) => o.type === "skipped"), false, "never listed either");
    assertEquals(Object.keys(await snapshot(join(second, "first"))).sort(), [
      "doc.txt",
      "notes",
      "notes/.ferry",
      "notes/.ferry/config",
      "sub",
    ]);

    // Naming the staging area itself: skipped, with the reason, and nothing sent.
    const direct = await runCli([
      "send",
      join(first, ".ferry"),
      join(first, ".ferry/tmp/leftover.tmp"),
      "--to",
      `127.0.0.1:${serveSecond.port}`,
    ]);
    assertEquals(direct.code, 0, direct.stderr);
    assertStringIncludes(direct.stderr, "/.ferry: ferry's staging folder, never sent");
    assertStringIncludes(direct.stderr, "leftover.tmp: ferry's staging folder, never sent");
    assertStringIncludes(direct.stdout, "ferry: sent 0 files");
  } finally {
    await serveFirst.stop();
    await serveSecond.stop();
  }
});
