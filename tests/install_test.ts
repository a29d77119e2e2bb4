/**
 * `deno task install` as a new user meets it: the installed `ferry` (in a
 * prefix whose name needs quoting) runs with no Deno on the PATH, from its own
 * copy of Deno and its own cache, without asking any registry; the serve
 * banner prints `ferry send ...`, and that command, typed as printed from
 * another folder, delivers the file byte for byte, with the code from
 * FERRY_CODE (no terminal) or typed at the prompt (a terminal, in tmux).
 * `deno task uninstall` then removes everything install made, and only that.
 *
 * The install copies a ~100 MB Deno, so it runs once, when this file loads;
 * the tests reuse it and the last one removes it.
 */
import {
  assert,
  assertEquals,
  assertMatch,
  assertNotEquals,
  assertStringIncludes,
} from "@std/assert";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { isOurWrapper, layout, MARKER, shQuote, wrapperScript } from "../scripts/install.ts";
import { freePort } from "./_net.ts";
import { waitFor } from "./_wait.ts";
import { NO_TMUX, Terminal } from "./_terminal.ts";
import { VERSION } from "../src/version.ts";

const CONFIG = new URL("../deno.json", import.meta.url).pathname;
const BASE = await Deno.realPath(await Deno.makeTempDir({ prefix: "ferry-install-test-" }));
/** A space and a quote: the command and the printed lines must quote it. */
const PREFIX = join(BASE, "my tools' prefix");
const PATHS = layout(PREFIX);
/** Something of the user's already in PREFIX/bin, which install and uninstall leave alone. */
const OTHER_TOOL = join(PREFIX, "bin", "other-tool");
const OTHER_TEXT = "#!/bin/sh\necho other\n";

function decode(bytes: Uint8Array): string {
  return new TextDecoder().decode(bytes);
}

/** `deno task -q TASK ARGS...` of this repository with this test's Deno, as the README runs it. */
async function task(name: string, args: string[], env: Record<string, string> = {}) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["task", "-q", "--config", CONFIG, name, ...args],
    cwd: BASE,
    env: { NO_COLOR: "1", PATH: "/usr/bin:/bin", ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: out.code, stdout: decode(out.stdout), stderr: decode(out.stderr) };
}

await Deno.mkdir(join(PREFIX, "bin"), { recursive: true });
await Deno.writeTextFile(OTHER_TOOL, OTHER_TEXT);
const INSTALL = await task("install", ["--prefix", PREFIX]);
globalThis.addEventListener("unload", () => {
  try {
    Deno.removeSync(BASE, { recursive: true });
  } catch { /* removed by the last test */ }
});

/**
 * The environment of a new user's shell: the installed command and the system's on the PATH,
 * no Deno, an empty home; and every way Deno could reach a registry pointing nowhere (the
 * command pins the registry its cache was filled from, and runs --cached-only).
 */
const USER_ENV: Record<string, string> = {
  PATH: `${PATHS.bin}:/usr/bin:/bin`,
  HOME: join(BASE, "home"),
  NPM_CONFIG_REGISTRY: "http://127.0.0.1:9/",
  HTTP_PROXY: "http://127.0.0.1:9",
  HTTPS_PROXY: "http://127.0.0.1:9",
  ALL_PROXY: "http://127.0.0.1:9",
  DENO_DIR: join(BASE, "empty-deno-dir"),
  DENO_NO_UPDATE_CHECK: "1",
  NO_COLOR: "1",
};

/** Fresh folders for one test: the receiver's and the sender's (with a file to send). */
async function folders(name: string, bytes: Uint8Array) {
  const root = await Deno.makeTempDir({ dir: BASE, prefix: "case-" });
  const receiver = join(root, "receiver");
  const sender = join(root, "sender");
  await Deno.mkdir(receiver);
  await Deno.mkdir(sender);
  await Deno.writeFile(join(sender, name), bytes);
  // The user's folder may hold a project of its own: the command must not pick any of it up.
  await Deno.writeTextFile(join(sender, "deno.json"), "{ not json");
  await Deno.writeTextFile(join(sender, "package.json"), '{"dependencies":{"left-pad":"1"}}');
  await Deno.writeTextFile(join(sender, ".npmrc"), "registry=http://127.0.0.1:9/\n");
  return { root, receiver, sender };
}

/**
 * `PREFIX/bin/ferry serve inbox --port P --host 127.0.0.1 --no-discovery` started in
 * `receiver`, with no FERRY_CODE: it makes a code. Returns once the banner is out, with the send
 * command it printed and the code it showed.
 */
async function serveInstalled(receiver: string) {
  const port = freePort();
  const child = new Deno.Command(PATHS.command, {
    args: ["serve", "inbox", "--port", String(port), "--host", "127.0.0.1", "--no-discovery"],
    cwd: receiver,
    clearEnv: true,
    env: USER_ENV,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let stdout = "";
  let stderr = "";
  const reading = Promise.all([
    (async () => {
      for await (const s of child.stdout.pipeThrough(new TextDecoderStream())) stdout += s;
    })(),
    (async () => {
      for await (const s of child.stderr.pipeThrough(new TextDecoderStream())) stderr += s;
    })(),
  ]);
  const stop = async () => {
    try {
      child.kill("SIGTERM");
    } catch { /* exited */ }
    const status = await child.status;
    await reading;
    return { code: status.code, stdout, stderr };
  };
  try {
    await waitFor(
      () => `serve's banner; it printed:\n${stdout}\n${stderr}`,
      () => stdout.includes("press Ctrl+C to stop"),
      30_000,
    );
  } catch (err) {
    await stop();
    throw err;
  }
  assertStringIncludes(stdout, `ferry: receiving into ${receiver}/inbox`);
  const commands = stdout.split("\n").filter((l) => l.includes(" PATH... --to "))
    .map((l) => l.trim());
  assertEquals(commands, [`ferry send PATH... --to 127.0.0.1:${port}`], stdout);
  const code = /^the code: (\S+)/m.exec(stdout)?.[1];
  if (code === undefined) throw new Error(`no code in the banner:\n${stdout}`);
  return { port, command: commands[0]!, code, stop }; // commands is asserted to be one line
}

/** Nothing Deno says when it fetches, warns or fails. */
function assertNoDenoNoise(stderr: string): void {
  for (const word of ["Download", "Warning", "warning:", "error:", "npm"]) {
    assert(!stderr.includes(word), `'${word}' on stderr:\n${stderr}`);
  }
}

function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

Deno.test("deno task install says where it installed, the version, the PATH and how to remove it", async () => {
  assertEquals(INSTALL.code, 0, `${INSTALL.stdout}\n${INSTALL.stderr}`);
  assertEquals(INSTALL.stderr, "");
  const out = INSTALL.stdout;
  assertStringIncludes(
    out,
    `installed ferry ${VERSION} (Deno ${Deno.version.deno}) in ${PREFIX}\n`,
  );
  assertStringIncludes(out, `  command: ${PATHS.command}\n`);
  assertStringIncludes(out, `${PATHS.bin} is not on your PATH; add it (once) with:\n`);
  assertStringIncludes(out, `export PATH="${PATHS.bin.replaceAll("'", `'\\''`)}:$PATH"`);
  assertMatch(out, /^remove it with: (npx -y deno@[\d.]+ |deno )task uninstall --prefix /m);
  assertStringIncludes(out, `task uninstall --prefix ${shQuote(PREFIX)}\n`);

  // The command: the private Deno and cache, the shipped permission set, never the network.
  const wrapper = await Deno.readTextFile(PATHS.command);
  assert(isOurWrapper(wrapper, PATHS.lib), wrapper);
  for (
    const part of ["--cached-only", "--no-prompt", "-P=ferry", "FERRY_LAUNCHER=installed"]
  ) assertStringIncludes(wrapper, part);
  assertEquals((await Deno.stat(PATHS.command)).mode! & 0o111, 0o111);
  // Its own copy of Deno, not a link into npx's cache.
  const copy = await Deno.lstat(PATHS.deno);
  const running = await Deno.stat(Deno.execPath());
  assert(copy.isFile);
  assertEquals(copy.size, running.size);
  assertNotEquals(copy.ino, running.ino);
  const marker = JSON.parse(await Deno.readTextFile(PATHS.marker));
  assertEquals(marker.ferry, VERSION);
  assertEquals(marker.created, [join(PREFIX, "lib")], "bin was there already");
  assertEquals(await Deno.readTextFile(OTHER_TOOL), OTHER_TEXT);
});

Deno.test("the installed ferry runs with no Deno on the PATH and no registry", async () => {
  assertEquals(INSTALL.code, 0, "the install failed");
  const out = await new Deno.Command("/bin/sh", {
    args: ["-c", "ferry --version"],
    cwd: BASE,
    clearEnv: true,
    env: USER_ENV,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  assertEquals(decode(out.stderr), "");
  assertEquals(decode(out.stdout), `ferry ${VERSION}\n`);
  assertEquals(out.code, 0);
});

Deno.test("the send command the installed serve prints works as typed, the code from FERRY_CODE", async () => {
  assertEquals(INSTALL.code, 0, "the install failed");
  const bytes = crypto.getRandomValues(new Uint8Array(65536));
  const { root, receiver, sender } = await folders("photo.bin", bytes);
  const serve = await serveInstalled(receiver);
  try {
    // Verbatim, but for PATH...: a relative path, from the sender's own folder.
    const typed = serve.command.replace("PATH...", "photo.bin");
    const sent = await new Deno.Command("/bin/sh", {
      args: ["-c", typed],
      cwd: sender,
      clearEnv: true,
      env: { ...USER_ENV, FERRY_CODE: serve.code },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = decode(sent.stderr);
    assertEquals(sent.code, 0, `${typed}:\n${decode(sent.stdout)}\n${stderr}`);
    assertNoDenoNoise(stderr);
    const arrived = await Deno.readFile(join(receiver, "inbox", "photo.bin"));
    assertEquals(sha256(arrived), sha256(bytes));
  } finally {
    const stopped = await serve.stop();
    assertEquals(stopped.code, 0, stopped.stderr);
    assertNoDenoNoise(stopped.stderr);
    await Deno.remove(root, { recursive: true });
  }
});

/**
 * Runs `command` in `term` with /bin/sh in `cwd`, in `env` only (and the terminal's TERM).
 */
async function startShell(
  term: Terminal,
  command: string,
  cwd: string,
  env: Record<string, string>,
): Promise<void> {
  const assignments = Object.entries(env).map(([k, v]) => `${k}=${shQuote(v)}`);
  await term.start(
    [
      `cd ${shQuote(cwd)} &&`,
      'env -i TERM="$TERM"',
      ...assignments,
      "/bin/sh -c",
      shQuote(command),
    ].join(" "),
  );
}

Deno.test({
  name: "on a terminal, the printed send command asks for the code, typed without echo",
  ignore: NO_TMUX, // the terminal part needs tmux; the test above covers the rest
  async fn() {
    assertEquals(INSTALL.code, 0, "the install failed");
    const bytes = new TextEncoder().encode("typed on a terminal\n".repeat(1000));
    const { root, receiver, sender } = await folders("notes.txt", bytes);
    const serve = await serveInstalled(receiver);
    const term = new Terminal();
    try {
      const typed = serve.command.replace("PATH...", "notes.txt");
      await startShell(term, typed, sender, USER_ENV);
      await term.watch((s) => s.includes("needs its code") || /^EXIT=/m.test(s));
      await term.keys("-l", serve.code);
      await term.keys("Enter");
      const screen = (await term.watch((s) => /^EXIT=\d+$/m.test(s))).at(-1)!;
      assertMatch(screen, /^EXIT=0$/m, screen);
      assertMatch(screen, /^ferry: sent 1 file \(.+\) to 127\.0\.0\.1:\d+ in [\d.]+ s$/m);
      assert(!screen.includes(serve.code), `the code was echoed:\n${screen}`);
      assertNoDenoNoise(screen);
      const arrived = await Deno.readFile(join(receiver, "inbox", "notes.txt"));
      assertEquals(sha256(arrived), sha256(bytes));
    } finally {
      await term.close();
      const stopped = await serve.stop();
      assertEquals(stopped.code, 0, stopped.stderr);
      await Deno.remove(root, { recursive: true });
    }
  },
});

Deno.test("install refuses to replace a ferry it did not write, and uninstall a folder without its marker", async () => {
  const prefix = join(BASE, "someone else's");
  await Deno.mkdir(join(prefix, "bin"), { recursive: true });
  await Deno.writeTextFile(join(prefix, "bin", "ferry"), "#!/bin/sh\necho standalone\n");
  const refused = await task("install", ["--prefix", prefix]);
  assertEquals(refused.code, 1, refused.stdout);
  assertStringIncludes(refused.stderr, "was not written by this installer");
  assertEquals(
    await Deno.readTextFile(join(prefix, "bin", "ferry")),
    "#!/bin/sh\necho standalone\n",
  );
  assertEquals((await Array.fromAsync(Deno.readDir(prefix))).map((e) => e.name), ["bin"]);

  await Deno.mkdir(join(prefix, "lib", "ferry"), { recursive: true });
  await Deno.writeTextFile(join(prefix, "lib", "ferry", "deno"), "not ours");
  const kept = await task("uninstall", ["--prefix", prefix]);
  assertEquals(kept.code, 1, kept.stdout);
  assertStringIncludes(kept.stderr, `has no ${MARKER}`);
  assertEquals(await Deno.readTextFile(join(prefix, "lib", "ferry", "deno")), "not ours");
  assertEquals(
    await Deno.readTextFile(join(prefix, "bin", "ferry")),
    "#!/bin/sh\necho standalone\n",
  );
  await Deno.remove(prefix, { recursive: true });
});

Deno.test("wrapperScript() quotes any prefix for sh", async () => {
  const lib = join(BASE, `odd $HOME \`x\` "q" 'a'\\ b`, "lib", "ferry");
  const script = wrapperScript(layout(join(lib, "..", "..")), "https://example.test/npm/");
  assert(isOurWrapper(script, lib));
  // Everything but the exec, then what the exec would be given.
  const body = script.split("\n").filter((l) => !l.startsWith("exec ")).join("\n");
  const out = await new Deno.Command("/bin/sh", {
    args: ["-c", `${body}\nprintf '%s\\n' "$lib" "$DENO_DIR" "$NPM_CONFIG_REGISTRY"`],
    stdout: "piped",
  }).output();
  assertEquals(decode(out.stdout), `${lib}\n${lib}/cache\nhttps://example.test/npm/\n`);
});

// Last: it removes the install the tests above used.
Deno.test("deno task uninstall removes what install made, and nothing else", async () => {
  assertEquals(INSTALL.code, 0, "the install failed");
  const removed = await task("uninstall", ["--prefix", PREFIX]);
  assertEquals(removed.code, 0, removed.stderr);
  assertEquals(removed.stdout, `removed ferry ${VERSION} from ${PREFIX}\n`);
  // The prefix holds only what was there before: bin/other-tool, untouched.
  const left: string[] = [];
  const walk = async (dir: string, rel: string) => {
    for await (const entry of Deno.readDir(dir)) {
      left.push(`${rel}${entry.name}`);
      if (entry.isDirectory) await walk(join(dir, entry.name), `${rel}${entry.name}/`);
    }
  };
  await walk(PREFIX, "");
  assertEquals(left.sort(), ["bin", "bin/other-tool"]);
  assertEquals(await Deno.readTextFile(OTHER_TOOL), OTHER_TEXT);
  const again = await task("uninstall", ["--prefix", PREFIX]);
  assertEquals(again.code, 0, again.stderr);
  assertStringIncludes(again.stdout, "nothing to remove");
  await Deno.remove(BASE, { recursive: true });
});
