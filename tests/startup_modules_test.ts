/**
 * What each command evaluates when it starts (main.ts imports a subcommand's
 * modules only when it runs). Read from `deno info --json main.ts`: the modules
 * a file reaches through static imports are those evaluated as soon as it is
 * loaded; a dynamic `import()` is followed only when its code runs. Type-only
 * imports are not evaluated. And the sender's xxh128 comes without Node's
 * CommonJS loader.
 */
import { assert, assertEquals } from "@std/assert";
import { fileURLToPath } from "node:url";

const ROOT = new URL("../", import.meta.url);

interface InfoDependency {
  code?: { specifier: string };
  isDynamic?: boolean;
}
interface Info {
  modules: { specifier: string; dependencies?: InfoDependency[] }[];
  redirects: Record<string, string>;
}

const info: Info = await (async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", "main.ts"],
    cwd: fileURLToPath(ROOT),
    stdout: "piped",
    stderr: "inherit",
  }).output();
  assert(out.success, "deno info main.ts failed");
  return JSON.parse(new TextDecoder().decode(out.stdout));
})();

/** A module's name: its path in the repository, or its npm:/node: specifier. */
function named(specifier: string): string {
  return specifier.startsWith(ROOT.href) ? specifier.slice(ROOT.href.length) : specifier;
}

/** Every module `from` (a path in the repository) reaches, through static imports only or all. */
function reached(from: string, { dynamic }: { dynamic: boolean }): Set<string> {
  const modules = new Map(info.modules.map((m) => [m.specifier, m]));
  const seen = new Set<string>();
  const stack = [new URL(from, ROOT).href];
  for (let next = stack.pop(); next !== undefined; next = stack.pop()) {
    const specifier = info.redirects[next] ?? next;
    if (seen.has(specifier)) continue;
    seen.add(specifier);
    for (const dep of modules.get(specifier)?.dependencies ?? []) {
      if (dep.code !== undefined && (dynamic || !dep.isDynamic)) stack.push(dep.code.specifier);
    }
  }
  return new Set([...seen].map(named));
}

/** The names in `modules` that match any of `patterns`. */
function matching(modules: Set<string>, patterns: RegExp[]): string[] {
  return [...modules].filter((name) => patterns.some((p) => p.test(name))).sort();
}

/** What only the receiver needs: the server, its web page and QR code, discovery's answers. */
const RECEIVER = [
  /^src\/subcommands\/serve\.ts$/,
  /^src\/server\//,
  /^src\/discovery\/responder\.ts$/,
  /^src\/cli\/web_banner\.ts$/,
  /@paulmillr\/qr/,
];
const WORD_LIST = [/@scure\/bip39/];

Deno.test("--version and help evaluate no subcommand, no npm package and no node: module", () => {
  const modules = reached("main.ts", { dynamic: false });
  assertEquals(
    matching(modules, [/^src\/subcommands\/(serve|send)\.ts$/, /^src\/(server|client)\//]),
    [],
  );
  assertEquals(matching(modules, [/^npm:/, /^node:/]), []);
});

Deno.test("send evaluates none of the receiver's modules, no word list, and no discovery until it looks", () => {
  const modules = reached("src/subcommands/send.ts", { dynamic: false });
  assert(modules.has("src/client/send_session.ts"));
  assertEquals(matching(modules, RECEIVER), []);
  assertEquals(matching(modules, WORD_LIST), []);
  assertEquals(matching(modules, [/^src\/discovery\/finder\.ts$/, /^node:dgram$/]), []);
  // A node: module starts part of Deno's Node compatibility layer: node:crypto loads on first use
  // (src/node_crypto.ts), node:path only on Windows (src/client/source_path.ts).
  assertEquals(matching(modules, [/^node:/]), []);
});

Deno.test("send and serve load @noble/curves' ristretto255 only where libsodium is missing", () => {
  // Its modules take about 12 ms to load and evaluate; libsodium's build needs none of them.
  const NOBLE_GROUP = [/@noble\/curves@[^/]+\/ed25519\.js$/, /ristretto255_noble\.ts$/];
  for (const command of ["send", "serve"]) {
    const modules = reached(`src/subcommands/${command}.ts`, { dynamic: false });
    assert(modules.has("src/transport/channel.ts"), command);
    assertEquals(matching(modules, NOBLE_GROUP), [], command);
  }
  // Still in main.ts's graph (a dynamic import), so a compiled binary carries the fallback.
  assertEquals(
    matching(reached("main.ts", { dynamic: true }), NOBLE_GROUP).length,
    NOBLE_GROUP.length,
  );
});

Deno.test("send loads no npm package, and @noble/hashes only where OpenSSL's hashes are missing", () => {
  // The first npm module a process imports starts Deno's npm loader (a few ms of a send's start);
  // ferry's byte helpers and OpenSSL's short hashes need none (src/protocol/bytes.ts).
  const modules = reached("src/subcommands/send.ts", { dynamic: false });
  assert(modules.has("src/transport/short_hashes.ts"));
  assertEquals(matching(modules, [/^npm:/, /short_hashes_noble\.ts$/]), []);
  // Still in main.ts's graph (a dynamic import), so a compiled binary carries the fallback.
  assert(reached("main.ts", { dynamic: true }).has("src/transport/short_hashes_noble.ts"));
});

Deno.test("a send's static imports call Deno's global timers only where --json asks for them", async () => {
  // Deno's setTimeout and setInterval are Node's, compiled on first use (several ms of a send's
  // start); what every send runs uses src/transport/timer.ts instead.
  const allowed: Record<string, string> = {
    "src/cli/output.ts": "--json lines held back, with --json only",
    "src/transport/byte_stream.ts": "closeGracefully, which only the receiver calls",
    "src/transport/timer.ts": "the fallback where AbortSignal.timeout is missing (older browsers)",
  };
  const calling: string[] = [];
  for (const name of reached("src/subcommands/send.ts", { dynamic: false })) {
    if (!name.startsWith("src/")) continue;
    const text = await Deno.readTextFile(new URL(name, ROOT));
    const code = text.replace(/\/\*[\s\S]*?\*\//g, "").replace(/\/\/.*$/gm, "");
    if (/\b(setTimeout|setInterval)\s*\(/.test(code)) calling.push(name);
  }
  assertEquals(calling.filter((name) => !(name in allowed)), []);
});

Deno.test("serve evaluates the web page and the QR code only with --web", () => {
  const modules = reached("src/subcommands/serve.ts", { dynamic: false });
  assert(modules.has("src/server/server.ts"));
  assertEquals(
    matching(modules, [/^src\/server\/web_(page|listener)\.ts$/, /web_banner\.ts$/, /qr/]),
    [],
  );
  assertEquals(matching(modules, [/^src\/client\//]), []);
});

Deno.test("every module a command loads later is in main.ts's graph (deno compile includes it)", () => {
  const modules = reached("main.ts", { dynamic: true });
  for (
    const name of [
      "src/subcommands/serve.ts",
      "src/subcommands/send.ts",
      "src/server/native_fs.ts",
      "src/native/native_read.ts",
      "src/server/web_page.ts",
      "src/cli/web_banner.ts",
      "src/discovery/finder.ts",
      "src/transport/short_hashes_noble.ts",
    ]
  ) {
    assert(modules.has(name), `${name} is not reached from main.ts`);
  }
});

Deno.test("xxh128 comes from hash-wasm's ES module build, not its CommonJS main file", () => {
  // The CommonJS file would start Deno's Node module loader in every sender.
  const modules = reached("main.ts", { dynamic: true });
  const hashWasm = matching(modules, [/^npm:\/?hash-wasm@/]);
  assert(hashWasm.length > 0, "no hash-wasm in main.ts's graph");
  assertEquals(hashWasm.filter((name) => !name.endsWith("/dist/index.esm.js")), []);
});
