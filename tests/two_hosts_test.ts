/**
 * Two hosts on one machine: `ferry serve` and `ferry send` in two network namespaces joined by
 * a veth pair, so the transfer crosses a real (virtual) link between real addresses, with the
 * default port and the default listening address, as on a LAN.
 *
 * Needs root and iproute2; otherwise the test is skipped with the reason printed. The addresses
 * (198.18.0.1 and 198.18.0.2, from the 198.18.0.0/15 benchmarking range) exist only inside the
 * two namespaces this test makes, which it always removes; nothing is added to the machine's own
 * network namespace.
 */
import { assertEquals, assertMatch, assertStringIncludes } from "@std/assert";
import { join } from "node:path";
import {
  contents,
  MAIN,
  randomBytes,
  snapshot,
  tempDir,
  TEST_CODE,
  writeTree,
} from "./_harness.ts";
import { SHIPPED_PERMISSIONS } from "./_permissions.ts";

const NS_A = `ferry-a-${Deno.pid}`;
const NS_B = `ferry-b-${Deno.pid}`;
const ADDR_A = "198.18.0.1";
const ADDR_B = "198.18.0.2";
const DEFAULT_PORT = 4455;

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

async function run(command: string, args: string[], timeoutMs = 60_000): Promise<Result> {
  const out = await new Deno.Command(command, {
    args,
    env: { NO_COLOR: "1", FERRY_CODE: TEST_CODE },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(timeoutMs),
  }).output();
  const decoder = new TextDecoder();
  return { code: out.code, stdout: decoder.decode(out.stdout), stderr: decoder.decode(out.stderr) };
}

/** The `ip` command, wherever it is (sbin may be missing from PATH), or why it can't be used. */
async function findIp(): Promise<{ ip: string } | { reason: string }> {
  for (const candidate of ["ip", "/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"]) {
    try {
      if ((await run(candidate, ["-V"], 10_000)).code === 0) return { ip: candidate };
    } catch { /* not there */ }
  }
  return { reason: "iproute2 ('ip') is not installed" };
}

async function probe(): Promise<{ ip: string } | { reason: string }> {
  if (Deno.build.os !== "linux") return { reason: "network namespaces need Linux" };
  if (Deno.uid() !== 0) return { reason: "not root (network namespaces need root)" };
  const found = await findIp();
  if (!("ip" in found)) return found;
  const name = `ferry-probe-${Deno.pid}`;
  const added = await run(found.ip, ["netns", "add", name], 10_000);
  if (added.code !== 0) {
    return { reason: `'ip netns add' failed: ${added.stderr.trim() || `exit ${added.code}`}` };
  }
  await run(found.ip, ["netns", "del", name], 10_000);
  return found;
}

const probed = await probe();
const IP = "ip" in probed ? probed.ip : "";
if (!("ip" in probed)) console.log(`two_hosts_test: skipped: ${probed.reason}`);

async function ip(...args: string[]): Promise<void> {
  const out = await run(IP, args, 10_000);
  if (out.code !== 0) throw new Error(`ip ${args.join(" ")}: ${out.stderr.trim()}`);
}

Deno.test({
  name:
    `two hosts (namespaces, veth, ${ADDR_A} ← ${ADDR_B}): serve on the default port, send a tree`,
  ignore: IP === "",
  async fn() {
    await using baseDir = await tempDir();
    const base = baseDir.path;
    const src = join(base, "tree");
    const inbox = join(base, "inbox");
    const smalls = Array.from(
      { length: 20 },
      (_, i) => [`docs/2024/small-${i}.bin`, randomBytes(i * 97)],
    );
    await writeTree(src, {
      "docs/2024/q1/big.bin": randomBytes(3 * 1024 * 1024 + 17),
      "docs/readme — ünïcødé.txt": "grüße\n",
      ...Object.fromEntries(smalls),
      "empty": { dir: true },
      "zero.bin": new Uint8Array(0),
    });
    // The namespaces have no route out: have every module in the cache before entering them.
    const cached = await run(Deno.execPath(), ["cache", "--quiet", MAIN]);
    assertEquals(cached.code, 0, cached.stderr);

    const created: string[] = [];
    let serve: Deno.ChildProcess | null = null;
    let pumping: Promise<unknown> = Promise.resolve();
    let output = "";
    try {
      for (const ns of [NS_A, NS_B]) {
        await ip("netns", "add", ns);
        created.push(ns);
      }
      // Both ends are made inside the namespaces: nothing appears in the machine's own.
      await ip(
        "-n",
        NS_A,
        "link",
        "add",
        "veth0",
        "type",
        "veth",
        "peer",
        "name",
        "veth0",
        "netns",
        NS_B,
      );
      await ip("-n", NS_A, "addr", "add", `${ADDR_A}/24`, "dev", "veth0");
      await ip("-n", NS_B, "addr", "add", `${ADDR_B}/24`, "dev", "veth0");
      for (const ns of [NS_A, NS_B]) {
        await ip("-n", ns, "link", "set", "lo", "up");
        await ip("-n", ns, "link", "set", "veth0", "up");
      }

      // Host A: `ferry serve DIR`, default port, default listening address (0.0.0.0).
      serve = new Deno.Command(IP, {
        args: ["netns", "exec", NS_A, Deno.execPath(), "run", "--quiet", "--cached-only"]
          .concat([...SHIPPED_PERMISSIONS, MAIN, "serve", inbox]),
        env: { NO_COLOR: "1", FERRY_CODE: TEST_CODE },
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const decoder = new TextDecoder();
      const pump = async (stream: ReadableStream<Uint8Array>) => {
        for await (const chunk of stream) output += decoder.decode(chunk, { stream: true });
      };
      pumping = Promise.all([pump(serve.stdout), pump(serve.stderr)]);
      const deadline = Date.now() + 20_000;
      while (!output.includes("listening on port")) {
        if (Date.now() > deadline) throw new Error(`serve did not start:\n${output}`);
        await new Promise((r) => setTimeout(r, 25));
      }
      await new Promise((r) => setTimeout(r, 100)); // the rest of the banner
      assertStringIncludes(output, `listening on port ${DEFAULT_PORT}`);
      // The banner offers the address of host A, and with the default port no ":port".
      assertMatch(
        output,
        new RegExp(
          `^\\s*deno run -P=ferry main\\.ts send PATH\\.\\.\\. --to ${
            ADDR_A.replaceAll(".", "\\.")
          }$`,
          "m",
        ),
      );

      /** `ferry send ARGS...` on host B. */
      const sendFromB = (args: string[]) =>
        run(
          IP,
          ["netns", "exec", NS_B, Deno.execPath(), "run", "--quiet", "--cached-only"]
            .concat([...SHIPPED_PERMISSIONS, MAIN, "send", ...args]),
        );

      // Host B: `ferry send PATH --to 198.18.0.1`.
      const sent = await sendFromB([src, "--to", ADDR_A]);
      assertEquals(sent.code, 0, sent.stdout + sent.stderr);
      assertEquals(contents(await snapshot(join(inbox, "tree"))), contents(await snapshot(src)));

      // Host B again, without --to: discovery (UDP broadcast on the link) finds host A.
      const note = join(base, "found-by-discovery.txt");
      await Deno.writeTextFile(note, "found");
      const found = await sendFromB([note]);
      assertEquals(found.code, 0, found.stdout + found.stderr);
      assertStringIncludes(found.stdout, `at ${ADDR_A}`);
      assertEquals(await Deno.readTextFile(join(inbox, "found-by-discovery.txt")), "found");

      const child = serve;
      serve = null;
      child.kill("SIGTERM");
      assertEquals((await child.status).code, 0, output);
      await pumping;
      // The server saw the sender at host B's address: the data crossed the veth link.
      assertStringIncludes(output, ADDR_B);
    } finally {
      if (serve !== null) {
        try {
          serve.kill("SIGKILL");
        } catch { /* already gone */ }
        await serve.status;
      }
      await pumping.catch(() => {});
      for (const ns of created) {
        await run(IP, ["netns", "del", ns], 10_000).catch(() => {});
      }
    }
  },
});
