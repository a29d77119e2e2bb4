/**
 * Adversarial tests of the receiver, names and paths: hostile names
 * (traversal, absolute, reserved, control characters, too long) and symbolic
 * links inside DIR.
 *
 * The arena every test runs in, and what it checks afterwards: _arena.ts.
 */
import { assert, assertEquals, assertMatch } from "@std/assert";
import { join } from "node:path";
import { randomBytes } from "./_harness.ts";
import {
  announce,
  type Arena,
  assertNamesRefused,
  dirEntry,
  encoder,
  file,
  finish,
  inArena,
  readAcks,
  SECRET,
  sendFile,
} from "./_arena.ts";

// ---------------------------------------------------------------------------
// 1, 2. Hostile names
// ---------------------------------------------------------------------------

const HOSTILE_NAMES: [group: string, names: string[]][] = [
  ["'..' traversal names", [
    "../x",
    "a/../../x",
    "..",
    "a/..",
    "../outside/secret.txt",
    "../outside/x",
  ]],
  ["'.' components", ["./a", "a/./b", ".", "a/."]],
  ["absolute paths", ["/etc/x", "/tmp/x", "/", "//x"]],
  ["Windows drive names", ["C:/x", "c:x", "C:\\x", "z:", "C:"]],
  ["UNC paths", ["\\\\server\\share\\x", "//server/share/x", "\\\\?\\C:\\x"]],
  ["backslash traversal", ["a\\..\\..\\x", "..\\x", "a\\b"]],
  ["empty components", ["", "a//b", "a/", "a/b/"]],
  ["Windows reserved names", ["CON", "nul.txt", "a/COM1.log", "x.", "y ", "aux .txt", "lpt9"]],
  ["control characters", [
    "a\u0000b",
    "a\nb",
    "\u001b[2J",
    "a\rb",
    "bell\u0007",
    "del\u007f",
    "c1\u0085",
  ]],
  ["overlong names", [
    "a".repeat(256),
    "é".repeat(128), // 256 UTF-8 bytes in 128 characters
    `${"a".repeat(200)}/`.repeat(20) + "x".repeat(100), // 4120 bytes
    "a/".repeat(128) + "x", // 129 levels
  ]],
  ["the staging folder", [".ferry/x", ".ferry/tmp/x", ".FERRY/x", ".ferry", ".Ferry/tmp"]],
  ["malformed Unicode", ["lone\ud800surrogate", "\udc00"]],
];

for (const [group, names] of HOSTILE_NAMES) {
  Deno.test(`server refuses ${group} per entry and writes nothing outside DIR`, async () => {
    await inArena((arena) => assertNamesRefused(arena, names));
  });
}

Deno.test("server refuses hostile names announced as directories", async () => {
  await inArena(async (arena) => {
    const client = await arena.open();
    const names = ["../up", "/abs", "C:", ".ferry", "a/../..", "CON", "\u001b"];
    const decisions = await announce(client, 0, [
      ...names.map((name, i) => dirEntry(i + 1, name)),
      dirEntry(99, "fine"),
    ]);
    assertEquals(decisions.map((d) => d.action), [...names.map(() => "refuse"), "accept"]);
    await finish(client);
    return ["fine"];
  });
});

// PROTOCOL.md §7.1 (rules 13, 14): a file's parent directories are created when
// it is announced and stay, even when the full name then proves too long for
// the file system. Only the file itself is refused.
Deno.test("server refuses a path too long for its file system, and the session goes on", async () => {
  const parts = Array.from({ length: 16 }, (_, i) => String(i % 10).repeat(255)); // 4095 bytes
  const parents = parts.slice(0, -1).map((_, i) => parts.slice(0, i + 1).join("/"));
  await inArena((arena) => assertNamesRefused(arena, [parts.join("/")], parents));
});

Deno.test("server refuses, with a reason, a renamed copy whose name would grow too long", async () => {
  await inArena(async (arena) => {
    const client = await arena.open();
    const name = "a".repeat(251) + ".txt"; // 255 bytes; "a… (1).txt" would be 259
    const first = randomBytes(10);
    const decisions = await announce(client, 0, [
      file(1, name, 10),
      file(2, name, 10),
      file(3, "after.txt", 10),
    ]);
    assertEquals(decisions.map((d) => d.action), ["accept", "accept", "accept"]);
    await sendFile(client, 1, first);
    assertEquals(await readAcks(client, 1), [{ id: 1, ok: true, name }]);
    await sendFile(client, 2, randomBytes(10));
    const ack = (await readAcks(client, 1))[0]!;
    assertEquals([ack.id, ack.ok], [2, false]);
    assertMatch(ack.reason ?? "", /too long/);
    await sendFile(client, 3, randomBytes(10));
    assertEquals(await readAcks(client, 1), [{ id: 3, ok: true, name: "after.txt" }]);
    await finish(client);
    assertEquals(await Deno.readFile(join(arena.dir, name)), first);
    return [name, "after.txt"];
  });
});

// ---------------------------------------------------------------------------
// 8. Symbolic links inside DIR
// ---------------------------------------------------------------------------

/** DIR/link → BASE/outside, DIR/f.txt → BASE/outside/secret.txt, DIR/dangling → nowhere. */
async function plantLinks({ dir, outside }: { dir: string; outside: string }): Promise<void> {
  await Deno.symlink(outside, join(dir, "link"));
  await Deno.symlink(join(outside, "secret.txt"), join(dir, "f.txt"));
  await Deno.symlink(join(outside, "not-yet"), join(dir, "dangling"));
  await Deno.symlink("../outside", join(dir, "relative"));
  await Deno.mkdir(join(dir, "real"));
  await Deno.symlink(outside, join(dir, "real", "deeper"));
}

const LINKS = ["dangling", "f.txt", "link", "real", "real/deeper", "relative"];

async function assertLinksUntouched(arena: Arena): Promise<void> {
  assertEquals(await Deno.readLink(join(arena.dir, "link")), arena.outside);
  assertEquals(await Deno.readLink(join(arena.dir, "f.txt")), join(arena.outside, "secret.txt"));
  assertEquals(await Deno.readLink(join(arena.dir, "dangling")), join(arena.outside, "not-yet"));
  assertEquals(await Deno.readFile(join(arena.outside, "secret.txt")), SECRET);
}

Deno.test("server refuses names that go through a symbolic link in DIR", async () => {
  await inArena(async (arena) => {
    const names = [
      "link/x.txt",
      "link/sub/y.txt",
      "dangling/x.txt",
      "relative/x.txt",
      "real/deeper/x.txt",
      "f.txt/x",
    ];
    const kept = await assertNamesRefused(arena, names, LINKS);
    await assertLinksUntouched(arena);
    return kept;
  }, { prepare: plantLinks });
});

Deno.test("server refuses directories that are symbolic links in DIR", async () => {
  await inArena(async (arena) => {
    const client = await arena.open();
    const names = ["link", "dangling", "relative/new", "real/deeper"];
    const decisions = await announce(client, 0, names.map((n, i) => dirEntry(i + 1, n)));
    assertEquals(decisions.map((d) => d.action), names.map(() => "refuse"));
    await finish(client);
    await assertLinksUntouched(arena);
    return LINKS;
  }, { prepare: plantLinks });
});

Deno.test("server never writes through a symbolic link named like the file (rename policy)", async () => {
  await inArena(async (arena) => {
    const client = await arena.open();
    const names = ["f.txt", "link", "dangling"];
    const data = names.map(() => randomBytes(64));
    const decisions = await announce(client, 0, names.map((n, i) => file(i + 1, n, 64)));
    assertEquals(decisions.map((d) => d.action), ["accept", "accept", "accept"]);
    for (const [i] of names.entries()) await sendFile(client, i + 1, data[i]!);
    const acks = await readAcks(client, names.length);
    assertEquals(acks.map((a) => a.name), ["f (1).txt", "link (1)", "dangling (1)"]);
    await finish(client);
    await assertLinksUntouched(arena);
    assertEquals(await Deno.readFile(join(arena.dir, "f (1).txt")), data[0]);
    assertEquals(await Deno.readFile(join(arena.dir, "link (1)")), data[1]);
    assertEquals(await Deno.readFile(join(arena.dir, "dangling (1)")), data[2]);
    return [...LINKS, "f (1).txt", "link (1)", "dangling (1)"];
  }, { prepare: plantLinks });
});

Deno.test("server replaces a symbolic link, not its target, with the overwrite policy", async () => {
  await inArena(async (arena) => {
    const client = await arena.open();
    const data = randomBytes(64);
    assertEquals((await announce(client, 0, [file(1, "f.txt", 64)]))[0]!.action, "accept");
    await sendFile(client, 1, data);
    assertEquals(await readAcks(client, 1), [{ id: 1, ok: true, name: "f.txt" }]);
    await finish(client);
    assert((await Deno.lstat(join(arena.dir, "f.txt"))).isFile, "the link itself was replaced");
    assertEquals(await Deno.readFile(join(arena.dir, "f.txt")), data);
    assertEquals(await Deno.readFile(join(arena.outside, "secret.txt")), SECRET);
    return LINKS;
  }, { prepare: plantLinks, server: { onConflict: "overwrite" } });
});

Deno.test("server refuses to overwrite a symbolic link to a directory with a directory in the way", async () => {
  await inArena(async (arena) => {
    const client = await arena.open();
    const decisions = await announce(client, 0, [file(1, "real", 3), file(2, "link", 3)]);
    assertEquals(decisions[0]!.action, "refuse", "a directory is in the way");
    assertEquals(decisions[1]!.action, "accept", "a link is replaced, not followed");
    await sendFile(client, 2, encoder.encode("new"));
    assertEquals(await readAcks(client, 1), [{ id: 2, ok: true, name: "link" }]);
    await finish(client);
    assert((await Deno.lstat(join(arena.dir, "link"))).isFile);
    assertEquals(await Deno.readFile(join(arena.outside, "secret.txt")), SECRET);
    return LINKS;
  }, { prepare: plantLinks, server: { onConflict: "overwrite" } });
});

Deno.test("server replaces a hard link to a file outside DIR, not the file, with the overwrite policy", async () => {
  await inArena(async (arena) => {
    const client = await arena.open();
    const data = randomBytes(64);
    assertEquals((await announce(client, 0, [file(1, "hard.txt", 64)]))[0]!.action, "accept");
    await sendFile(client, 1, data);
    assertEquals(await readAcks(client, 1), [{ id: 1, ok: true, name: "hard.txt" }]);
    await finish(client);
    assertEquals(await Deno.readFile(join(arena.dir, "hard.txt")), data);
    assertEquals(await Deno.readFile(join(arena.outside, "secret.txt")), SECRET);
    return ["hard.txt"];
  }, {
    prepare: ({ dir, outside }) => Deno.link(join(outside, "secret.txt"), join(dir, "hard.txt")),
    server: { onConflict: "overwrite" },
  });
});
