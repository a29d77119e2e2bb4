/**
 * ferry runs with the same V8 flags (src/cli/v8_flags.ts) however it is
 * started: the deno.json tasks, the compiled binaries, and the benchmark.
 */
import { assert, assertEquals } from "@std/assert";
import { fileURLToPath } from "node:url";
import { compileArgs } from "../scripts/compile.ts";
import { denoArgs } from "../scripts/bench/peers.ts";
import { V8_FLAGS } from "../src/cli/v8_flags.ts";

Deno.test("deno.json's serve and send tasks run main.ts with V8_FLAGS", async () => {
  const config = JSON.parse(await Deno.readTextFile(new URL("../deno.json", import.meta.url)));
  for (const task of ["serve", "send"]) {
    const words = (config.tasks[task] as string).split(/\s+/);
    const flag = words.indexOf(V8_FLAGS);
    assert(flag > 0 && flag < words.indexOf("main.ts"), `${task}: ${config.tasks[task]}`);
    assertEquals(words.filter((w) => w.startsWith("--v8-flags")), [V8_FLAGS], task);
  }
});

Deno.test("compileArgs() bakes V8_FLAGS into the binary, before the entry point", () => {
  const args = compileArgs("x86_64-unknown-linux-gnu", "/tmp/ferry");
  const flag = args.indexOf(V8_FLAGS);
  assert(flag > 0 && flag < args.length - 1, args.join(" "));
  assert(args[args.length - 1]!.endsWith("main.ts"));
});

Deno.test("the benchmark runs ferry with V8_FLAGS, before main.ts", () => {
  const args = denoArgs("serve", "DIR");
  const flag = args.indexOf(V8_FLAGS);
  const main = args.findIndex((a) => a.endsWith("main.ts"));
  assert(flag > 0 && flag < main, args.join(" "));
  assertEquals(args.slice(main + 1), ["serve", "DIR"]);
});

Deno.test("V8 accepts V8_FLAGS: ferry --version runs with them, silently", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--quiet",
      V8_FLAGS,
      fileURLToPath(new URL("../main.ts", import.meta.url)),
      "--version",
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  assertEquals(new TextDecoder().decode(out.stderr), "");
  assertEquals(out.code, 0);
  assert(new TextDecoder().decode(out.stdout).startsWith("ferry "));
});
