/**
 * The code as people give it: never needed on a command line, shown once by
 * the receiver and never echoed when it came from the environment, refused
 * when a chosen one is easy to guess, and compared after Unicode
 * normalization and case folding on both sides.
 */
import { assert, assertEquals, assertGreater, assertLess, assertStringIncludes } from "@std/assert";
import { join } from "node:path";
import {
  estimateGuesses,
  REFUSE_BELOW_GUESSES,
  WARN_BELOW_GUESSES,
} from "../src/cli/code_strength.ts";
import { normalizeCode } from "../src/transport/code.ts";
import { generateCode } from "../src/transport/generated_code.ts";
import { listTree, runCli, spawnServe, startServer, tempDir } from "./_harness.ts";
import { sendInProcess } from "./_harness.ts";

Deno.test("normalizeCode() folds case fully and normalizes Unicode (NFKC), final sigma included", () => {
  const same = [
    ["σοφος-λογος-4821", "ΣΟΦΟΣ-ΛΟΓΟΣ-4821", "σοφοσ-λογοσ-4821", "Σοφος_Λογος 4821"],
    ["straße-4821-crane", "STRASSE-4821-CRANE", "strasse-4821-crane"],
    ["ﬁle-４８２１", "file-4821", "ＦＩＬＥ-4821"],
    ["caf\u00e9-4821", "cafe\u0301-4821", "CAF\u00c9-4821"],
  ];
  for (const group of same) {
    const forms = new Set(group.map(normalizeCode));
    assertEquals(forms.size, 1, `${group.join(" / ")} → ${[...forms].join(" / ")}`);
  }
  assertEquals(normalizeCode("ΣΟΦΟΣ"), "σοφοσ");
  const code = generateCode();
  assertEquals(normalizeCode(code.toUpperCase()), code);
});

Deno.test("estimateGuesses() counts generated codes exactly and sees through easy chosen ones", () => {
  assertGreater(estimateGuesses(generateCode()), 2 ** 46);
  for (const easy of ["123456", "password", "qwerty", "abc", "aaaaaaaa", "2024", "zebra"]) {
    assertLess(estimateGuesses(normalizeCode(easy)!), REFUSE_BELOW_GUESSES, easy);
  }
  assertLess(estimateGuesses("my-long-secret"), WARN_BELOW_GUESSES);
  assertGreater(estimateGuesses("correct-horse-battery-staple-9"), WARN_BELOW_GUESSES);
});

Deno.test("a code that differs only by case and Unicode form works end to end (Greek final sigma)", async () => {
  await using baseDir = await tempDir();
  const base = baseDir.path;
  await Deno.writeTextFile(join(base, "a.txt"), "sigma");
  const server = await startServer(join(base, "in"), {
    code: normalizeCode("ΣΟΦΟΣ-λόγος-4821-crane")!,
  });
  try {
    const result = await sendInProcess(server.port, [join(base, "a.txt")], {
      code: normalizeCode("σοφοσ-ΛΌΓΟΣ-4821-CRANE"),
    });
    assertEquals(result.files, 1);
    assertEquals(await listTree(join(base, "in")), ["a.txt"]);
  } finally {
    await server.close();
  }
});

Deno.test("serve shows a generated code once, in no command line", async () => {
  await using baseDir = await tempDir();
  const base = baseDir.path;
  const serve = await spawnServe(join(base, "in"), ["--no-discovery"], {
    env: { FERRY_CODE: "" },
  });
  const { stdout } = await serve.stop("SIGINT");
  const code = stdout.match(/the code: (\S+)/)?.[1];
  if (code === undefined) throw new Error(`no code in the banner:\n${stdout}`);
  assertEquals(normalizeCode(code), code);
  assertEquals(stdout.split(code).length - 1, 1, `shown once:\n${stdout}`);
  const commands = stdout.split("\n").filter((l) => l.includes(" send PATH... --to "));
  assertEquals(commands.length, 1, stdout);
  for (const line of commands) {
    assert(!line.includes(code), line);
  }
});

Deno.test("serve never echoes a code from FERRY_CODE, in the banner or its JSON", async () => {
  await using baseDir = await tempDir();
  const base = baseDir.path;
  const secret = "7305-orbit-lunar-violin";
  const plain = await spawnServe(join(base, "a"), ["--no-discovery"], {
    env: { FERRY_CODE: secret },
  });
  const text = await plain.stop("SIGINT");
  assert(!text.stdout.includes(secret) && !text.stderr.includes(secret), text.stdout);
  const json = await spawnServe(
    join(base, "b"),
    ["--no-discovery", "--json"],
    { ready: (out) => out.includes('"type":"start"'), env: { FERRY_CODE: secret } },
  );
  const out = await json.stop("SIGINT");
  assert(!out.stdout.includes(secret), out.stdout);
  const start = JSON.parse(out.stdout.split("\n")[0]!);
  assertEquals([start.code, start.codeRequired], [null, true]);
});

Deno.test("serve refuses a chosen code that is easy to guess, and warns about a weak one", async () => {
  await using baseDir = await tempDir();
  const base = baseDir.path;
  for (
    const [how, env, args] of [
      ["FERRY_CODE", { FERRY_CODE: "123456" }, []],
      ["--code", { FERRY_CODE: "" }, ["--code", "password"]],
    ] as const
  ) {
    const result = await runCli(["serve", join(base, "in"), "--port", "0", ...args], { env });
    assertEquals(result.code, 2, `${how}: ${result.stderr}`);
    assertStringIncludes(result.stderr, "too easy to guess");
    assertStringIncludes(result.stderr, "guesses would find it");
  }
  const weak = await spawnServe(join(base, "in"), ["--no-discovery"], {
    env: { FERRY_CODE: "my-long-secret" },
  });
  const stopped = await weak.stop("SIGINT");
  assertStringIncludes(stopped.stderr, "the code is weak");
});
