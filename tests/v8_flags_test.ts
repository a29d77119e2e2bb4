/**
 * ferry runs with the same V8 flags (src/cli/v8_flags.ts) however it is
 * started: the deno.json tasks, the installed command, the compiled
 * binaries, and the benchmark; `send` with its own.
 */
import { assert, assertEquals } from "@std/assert";
import { fileURLToPath } from "node:url";
import { compileArgs } from "../scripts/compile.ts";
import { denoArgs } from "../scripts/bench/peers.ts";
import { layout, wrapperScript } from "../scripts/install.ts";
import { SEND_V8_FLAGS, V8_FLAGS, v8FlagsFor } from "../src/cli/v8_flags.ts";

Deno.test("v8FlagsFor() gives send its own flags, and every other command serve's", () => {
  assertEquals(v8FlagsFor("send"), SEND_V8_FLAGS);
  for (const command of ["serve", "help", "--version", undefined]) {
    assertEquals(v8FlagsFor(command), V8_FLAGS);
  }
  // Both keep the heap small; serve may collect when idle and calls TurboFan in late, send runs
  // without TurboFan.
  assertEquals(
    V8_FLAGS,
    "--v8-flags=--optimize-for-size,--expose-gc,--invocation-count-for-turbofan=30000",
  );
  assertEquals(SEND_V8_FLAGS, "--v8-flags=--optimize-for-size,--no-turbofan");
});

Deno.test("deno.json's serve and send tasks run main.ts with their command's V8 flags", async () => {
  const config = JSON.parse(await Deno.readTextFile(new URL("../deno.json", import.meta.url)));
  for (const task of ["serve", "send"]) {
    const words = (config.tasks[task] as string).split(/\s+/);
    const flag = words.indexOf(v8FlagsFor(task));
    assert(flag > 0 && flag < words.indexOf("main.ts"), `${task}: ${config.tasks[task]}`);
    assertEquals(words.filter((w) => w.startsWith("--v8-flags")), [v8FlagsFor(task)], task);
    assertEquals(words.at(-1), task);
  }
});

Deno.test("the installed ferry runs each command with its V8 flags", async () => {
  const script = wrapperScript(layout("/opt/ferry-test"), "https://example.test/npm/");
  // The script with a stand-in for Deno that prints the flag it was given.
  const stub = script.replace('exec "$lib/deno"', 'printf "%s\\n" "$v8"; : ');
  for (const command of ["send", "serve", "--version"]) {
    const out = await new Deno.Command("/bin/sh", {
      args: ["-c", stub, "ferry", command, "x"],
      stdout: "piped",
    }).output();
    assertEquals(new TextDecoder().decode(out.stdout), `${v8FlagsFor(command)}\n`, command);
  }
});

Deno.test("compileArgs() bakes serve's V8 flags into the binary, before the entry point", () => {
  const args = compileArgs("x86_64-unknown-linux-gnu", "/tmp/ferry");
  const flag = args.indexOf(V8_FLAGS);
  assert(flag > 0 && flag < args.length - 1, args.join(" "));
  assertEquals(args.filter((a) => a.startsWith("--v8-flags")), [V8_FLAGS]);
  assert(args[args.length - 1]!.endsWith("main.ts"));
});

Deno.test("the benchmark runs ferry with its command's V8 flags, before main.ts", () => {
  for (const command of ["serve", "send"]) {
    const args = denoArgs(command, "DIR");
    const flag = args.indexOf(v8FlagsFor(command));
    const main = args.findIndex((a) => a.endsWith("main.ts"));
    assert(flag > 0 && flag < main, args.join(" "));
    assertEquals(args.slice(main + 1), [command, "DIR"]);
  }
});

Deno.test("V8 accepts both sets of flags: ferry --version runs with them, silently", async () => {
  for (const flags of [V8_FLAGS, SEND_V8_FLAGS]) {
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--quiet",
        flags,
        fileURLToPath(new URL("../main.ts", import.meta.url)),
        "--version",
      ],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).output();
    assertEquals(new TextDecoder().decode(out.stderr), "", flags);
    assertEquals(out.code, 0);
    assert(new TextDecoder().decode(out.stdout).startsWith("ferry "));
  }
});
