/**
 * Progress as people see it: the numbers and the line (unit tests), then
 * `ferry send` in a real terminal (tmux): the progress line renders, ends
 * cleanly before the summary and on errors; plain lines without a
 * terminal's redraws under NO_COLOR; and the numbered prompt when several
 * servers answer discovery.
 */
import { assert, assertEquals, assertMatch, assertStringIncludes } from "@std/assert";
import { join } from "node:path";
import {
  charWidth,
  displayWidth,
  etaSeconds,
  fit,
  formatDuration,
  formatRate,
  LiveArea,
  progressLine,
  RateMeter,
  shortenLeft,
} from "../src/cli/progress.ts";
import { defined } from "./_expect.ts";
import { FaultProxy } from "./fault_proxy.ts";
import {
  denoArgs,
  freeUdpPort,
  memoryTempDir,
  spawnServe,
  startServer,
  TEST_CODE,
} from "./_harness.ts";
import { NO_TMUX, shQuote, Terminal } from "./_terminal.ts";

Deno.test("formatDuration() and formatRate() read like a clock and a speed", () => {
  assertEquals(formatDuration(0), "0:00");
  assertEquals(formatDuration(7.4), "0:07");
  assertEquals(formatDuration(750), "12:30");
  assertEquals(formatDuration(3723), "1:02:03");
  assertEquals(formatRate(null), "- B/s");
  assertEquals(formatRate(25_000_000), "25.0 MB/s");
});

Deno.test("RateMeter.rate() follows the recent bytes, not resumed ones or the distant past", () => {
  let now = 0;
  const meter = new RateMeter(5000, () => now);
  assertEquals(meter.rate(), null);
  meter.sample(0);
  now = 100;
  assertEquals(meter.rate(), null, "too early to tell");
  // 10 MB/s for 10 s...
  for (let t = 100; t <= 10_000; t += 100) {
    now = t;
    meter.sample(t * 10_000);
  }
  assertEquals(Math.round(meter.rate()! / 1e6), 10);
  // ...then 1 MB/s: after the window, only the recent rate counts.
  const base = 10_000 * 10_000;
  for (let t = 10_100; t <= 20_000; t += 100) {
    now = t;
    meter.sample(base + (t - 10_000) * 1_000);
  }
  assertEquals(Math.round(meter.rate()! / 1e6), 1);
});

Deno.test("RateMeter.reset() starts over: a pause (reconnecting) is not in the rate", () => {
  let now = 0;
  const meter = new RateMeter(5000, () => now);
  // 10 MB/s for 2 s, then 3 s with nothing moving (the connection dropped)...
  for (let t = 0; t <= 2000; t += 100) {
    now = t;
    meter.sample(t * 10_000);
  }
  now = 5000;
  const total = 2000 * 10_000;
  meter.reset(total);
  assertEquals(meter.rate(), null, "nothing to tell yet after a reset");
  // ...then 4 MB/s on the new connection: from its first bytes, the rate is 4 MB/s.
  for (let t = 5000; t <= 5400; t += 100) {
    now = t;
    meter.sample(total + (t - 5000) * 4_000);
  }
  assertEquals(Math.round(meter.rate()! / 1e6), 4);
  for (let t = 5500; t <= 7000; t += 100) {
    now = t;
    meter.sample(total + (t - 5000) * 4_000);
  }
  assertEquals(Math.round(meter.rate()! / 1e6), 4);
});

Deno.test("progressLine() shows bytes and files out of the totals, the rate, the ETA and the file", () => {
  const state = {
    done: 12_500_000,
    totalBytes: 200_000_000,
    files: 3,
    totalFiles: 120,
    rate: 25_000_000,
    current: "photos/2024/img_0001.jpg",
  };
  assertEquals(etaSeconds(state), 7.5);
  assertEquals(
    progressLine(state, 120),
    "12.5 MB / 200 MB (6%)  files 3/120  25.0 MB/s  ETA 0:08  photos/2024/img_0001.jpg",
  );
  assertEquals(
    progressLine({ ...state, totalBytes: null, totalFiles: null, rate: null, current: null }, 120),
    "12.5 MB / ?  files 3/?  - B/s",
  );
  // Too narrow: the file name gives way from the left, and the line never exceeds the width.
  const narrow = progressLine(state, 70);
  assertEquals(narrow, "12.5 MB / 200 MB (6%)  files 3/120  25.0 MB/s  ETA 0:08  …img_0001.jpg");
  for (let width = 10; width < 100; width++) {
    assert(displayWidth(progressLine(state, width)) <= width, `width ${width}`);
  }
});

Deno.test("fit() and shortenLeft() count wide characters as two columns", () => {
  assertEquals(charWidth("日".codePointAt(0)!), 2);
  assertEquals(charWidth("a".codePointAt(0)!), 1);
  assertEquals(charWidth(0x301), 0);
  assertEquals(displayWidth("日本語.txt"), 10);
  assertEquals(fit("abcdef", 4), "abc…");
  assertEquals(fit("日本語", 4), "日…");
  assertEquals(shortenLeft("a/b/日本語.txt", 9), "…本語.txt");
  assertEquals(shortenLeft("a/b/日本語.txt", 8), "…語.txt");
  assertEquals(shortenLeft("short", 9), "short");
});

Deno.test("LiveArea.update() redraws its lines in place and print() writes above them", () => {
  const out: [string, string][] = [];
  const area = new LiveArea((stream, text) => out.push([stream, text]), () => 20);
  area.update(["one", "two"]);
  area.update(["three"]);
  area.print("stderr", "a message");
  area.update(["a line much longer than twenty columns"]);
  area.clear();
  area.clear();
  assertEquals(out, [
    ["stdout", "one\ntwo"],
    ["stdout", "\r\x1b[1A\x1b[Jthree"],
    ["stdout", "\r\x1b[J"],
    ["stderr", "a message\n"],
    ["stdout", "three"],
    ["stdout", "\r\x1b[Ja line much longer…"],
    ["stdout", "\r\x1b[J"],
  ]);
});

/**
 * Runs `ferry ARGS...` (the shipped permissions) in `term`, with FERRY_CODE (and `env`) set and
 * NO_COLOR unset, after `delay` seconds.
 */
async function startFerry(
  term: Terminal,
  args: string[],
  env: Record<string, string> = {},
  delay = 0,
): Promise<void> {
  const assignments = Object.entries({ FERRY_CODE: TEST_CODE, ...env })
    .map(([k, v]) => `${k}=${shQuote(v)}`);
  await term.start(
    [
      delay > 0 ? `sleep ${delay};` : "",
      "env -u NO_COLOR",
      ...assignments,
      shQuote(Deno.execPath()),
      ...denoArgs(args).map(shQuote),
    ].join(" "),
  );
}

/** A folder with a 256 MB file (sparse: quick to make, read as zeros) and three small ones. */
async function bigTree(base: string): Promise<string> {
  const src = join(base, "src");
  await Deno.mkdir(src);
  for (const name of ["a.txt", "b.txt", "c.txt"]) await Deno.writeTextFile(join(src, name), name);
  const file = await Deno.open(join(src, "big.bin"), { write: true, create: true });
  await file.truncate(256 * 1024 * 1024);
  file.close();
  return src;
}

const PROGRESS =
  /^\d+(\.\d+)? [kMGT]?B \/ (\d+(\.\d+)? [kMGT]?B|\?)( \(\d+%\))? {2}files \d+\/(\d+|\?) {2}/m;
const EXITED = /^EXIT=\d+$/m;

Deno.test({
  name: "ferry send on a terminal shows a progress line and ends it cleanly before the summary",
  ignore: NO_TMUX,
  async fn() {
    await using baseDir = await memoryTempDir("ferry-tty-");
    const base = baseDir.path;
    const src = await bigTree(base);
    const serve = await spawnServe(join(base, "inbox"), ["--no-discovery"]);
    const term = new Terminal();
    try {
      await startFerry(term, ["send", src, "--to", `127.0.0.1:${serve.port}`]);
      const screens = await term.watch((s) => EXITED.test(s));
      const progress = screens.filter((s) => PROGRESS.test(s));
      assert(progress.length > 0, `no progress line was seen in:\n${screens.join("\n---\n")}`);
      // Once the count is in, the line has the totals, the files n of N, a rate and the file.
      const full = screens.map((s) =>
        /^(\d+(\.\d+)? [kMG]?B) \/ 268 MB \(\d+%\) {2}files \d\/4 {2}\d+(\.\d+)? [kMG]?B\/s {2}(ETA \d+:\d\d {2})?src\/big\.bin$/m
          .exec(s)
      ).filter((m) => m !== null);
      assert(full.length > 0, `no complete progress line in:\n${progress.join("\n---\n")}`);
      const final = await term.screen();
      const lines = final.split("\n").filter((l) => l !== "");
      assertMatch(
        lines.at(-2)!,
        /^ferry: sent 4 files \(268 MB\) to 127\.0\.0\.1:\d+ in [\d.]+ s$/,
      );
      assertEquals(lines.at(-1), "EXIT=0");
      assert(!PROGRESS.test(final) && !final.includes("B/s"), `leftover progress:\n${final}`);
      // On a terminal, the files that kept their names get no line each: the progress line showed them.
      assert(!final.includes("sent src/a.txt"), final);
    } finally {
      await term.close();
      await serve.stop();
    }
  },
});

Deno.test({
  name: "ferry send on a terminal ends the progress line cleanly when the transfer fails",
  ignore: NO_TMUX,
  async fn() {
    await using baseDir = await memoryTempDir("ferry-tty-");
    const base = baseDir.path;
    const src = await bigTree(base);
    const serve = await spawnServe(join(base, "inbox"), ["--no-discovery"]);
    const term = new Terminal();
    try {
      await startFerry(term, ["send", src, "--to", `127.0.0.1:${serve.port}`, "--retries", "0"]);
      await term.watch((s) => PROGRESS.test(s) || EXITED.test(s));
      await serve.stop(); // the receiver goes away mid-transfer
      await term.watch((s) => EXITED.test(s));
      const final = await term.screen();
      const lines = final.split("\n").filter((l) => l !== "");
      assertEquals(lines.at(-1), "EXIT=1");
      assertMatch(lines.at(-2)!, /^ferry: .*(shutting down|lost|closed)/);
      assert(!PROGRESS.test(final) && !final.includes("B/s"), `leftover progress:\n${final}`);
    } finally {
      await term.close();
      await serve.stop();
    }
  },
});

Deno.test({
  name: "ferry send on a terminal with NO_COLOR prints plain lines, never redraws",
  ignore: NO_TMUX,
  async fn() {
    await using baseDir = await memoryTempDir("ferry-tty-");
    const base = baseDir.path;
    const src = join(base, "src");
    await Deno.mkdir(src);
    for (const name of ["a.txt", "b.txt"]) await Deno.writeTextFile(join(src, name), name);
    const serve = await spawnServe(join(base, "inbox"), ["--no-discovery"]);
    const term = new Terminal();
    const raw = join(base, "raw.out");
    try {
      // Starts a second later, so that the raw output is recorded from its first byte.
      await startFerry(
        term,
        ["send", src, "--to", `127.0.0.1:${serve.port}`],
        { NO_COLOR: "1" },
        1,
      );
      await term.tmux("pipe-pane", "-t", "t", `cat >> ${shQuote(raw)}`);
      await term.watch((s) => EXITED.test(s));
      const final = await term.screen();
      assertStringIncludes(final, "sent src/a.txt (5 B)");
      assertStringIncludes(final, "sent src/b.txt (5 B)");
      assertMatch(final, /^ferry: sent 2 files \(10 B\) to 127\.0\.0\.1:\d+ in [\d.]+ s$/m);
      assert(!PROGRESS.test(final), final);
      const bytes = await Deno.readTextFile(raw);
      assertStringIncludes(bytes, "sent src/a.txt");
      assert(!bytes.includes("\x1b[J") && !bytes.includes("B/s"), "no redraw was written");
    } finally {
      await term.close();
      await serve.stop();
    }
  },
});

Deno.test({
  name: "ferry send on a terminal asks which server when several answer, and sends to that one",
  ignore: NO_TMUX,
  async fn() {
    await using baseDir = await memoryTempDir("ferry-tty-");
    const base = baseDir.path;
    await Deno.writeTextFile(join(base, "a.txt"), "for the second");
    const [udp1, udp2] = [await freeUdpPort(), await freeUdpPort()];
    const first = await spawnServe(join(base, "one"), ["--discovery-port", String(udp1)]);
    const second = await spawnServe(join(base, "two"), ["--discovery-port", String(udp2)]);
    const term = new Terminal();
    try {
      await startFerry(term, ["send", join(base, "a.txt")], {
        FERRY_DISCOVERY_ADDRESS: `127.0.0.1:${udp1},127.0.0.1:${udp2}`,
      });
      // watch() returns the screens it saw, at least the last.
      const prompt = (await term.watch((s) => /Number \(1-2/.test(s) || EXITED.test(s))).at(-1)!;
      assertStringIncludes(prompt, "ferry: 2 ferry servers answered; send to which one?");
      const choice = new RegExp(`^  (\\d)\\) .*--to 127\\.0\\.0\\.1:${second.port}$`, "m").exec(
        prompt,
      );
      assert(choice, prompt);
      await term.keys(choice![1]!, "Enter");
      await term.watch((s) => EXITED.test(s));
      const final = await term.screen();
      assertStringIncludes(final, "EXIT=0");
      assertStringIncludes(final, `to 127.0.0.1:${second.port} in`);
      assertEquals(await Deno.readTextFile(join(base, "two", "a.txt")), "for the second");
      assertEquals(
        await Deno.stat(join(base, "one", "a.txt")).then(() => true, () => false),
        false,
      );
    } finally {
      await term.close();
      await first.stop();
      await second.stop();
    }
  },
});

Deno.test({
  name: "ferry send on a terminal asks for the code a receiver needs, without echoing it",
  ignore: NO_TMUX,
  async fn() {
    await using baseDir = await memoryTempDir("ferry-tty-");
    const base = baseDir.path;
    await Deno.writeTextFile(join(base, "a.txt"), "asked for the code");
    const serve = await spawnServe(join(base, "in"), ["--no-discovery"]);
    const term = new Terminal();
    try {
      await startFerry(term, ["send", join(base, "a.txt"), "--to", `127.0.0.1:${serve.port}`], {
        FERRY_CODE: "",
      });
      const [prompt] = (await term.watch((s) => /needs its code.*:\s*$/m.test(s) || EXITED.test(s)))
        .slice(-1);
      assertStringIncludes(prompt, `127.0.0.1:${serve.port} needs its code`);
      await term.keys("-l", TEST_CODE.toUpperCase());
      await term.keys("Enter");
      await term.watch((s) => EXITED.test(s));
      const final = await term.screen();
      assertStringIncludes(final, "EXIT=0");
      assert(!final.toLowerCase().includes(TEST_CODE), `the code was echoed:\n${final}`);
      assertEquals(await Deno.readTextFile(join(base, "in", "a.txt")), "asked for the code");
    } finally {
      await term.close();
      await serve.stop();
    }
  },
});

/** A folder in a fast temp dir with one file of `bytes` zeros (sparse). */
async function oneBigFile(base: string, bytes: number): Promise<string> {
  const path = join(base, "big.bin");
  const file = await Deno.open(path, { write: true, create: true });
  await file.truncate(bytes);
  file.close();
  return path;
}

const UNITS: Record<string, number> = { B: 1, kB: 1e3, MB: 1e6, GB: 1e9, TB: 1e12 };

/** `n` `unit`s in bytes ("1.5", "MB": 1.5e6). */
function bytesOf(n: string | undefined, unit: string | undefined): number {
  return Number(n) * defined(UNITS[unit ?? ""], `a unit of UNITS, not ${unit}`);
}

/** The bytes done and the total of the progress line on `screen`, if there is one. */
function doneOfTotal(screen: string): [number, number] | null {
  const m = /^([\d.]+) ([kMGT]?B) \/ ([\d.]+) ([kMGT]?B)/m.exec(screen);
  return m && [bytesOf(m[1], m[2]), bytesOf(m[3], m[4])];
}

Deno.test({
  name: "ferry send on a terminal says it is reconnecting instead of a decaying rate, then goes on",
  ignore: NO_TMUX,
  async fn() {
    await using baseDir = await memoryTempDir("ferry-tty-");
    const base = baseDir.path;
    const file = await oneBigFile(base, 32 * 1024 * 1024);
    const server = await startServer(join(base, "inbox"));
    // The first connection is cut a third of the way through; the second goes through.
    const proxy = new FaultProxy(
      server.port,
      (n) =>
        n === 1
          ? { bytesPerSecond: 8_000_000, cutAfter: 12_000_000 }
          : { bytesPerSecond: 8_000_000 },
    );
    const term = new Terminal();
    try {
      await startFerry(term, ["send", file, "--to", `127.0.0.1:${proxy.port}`]);
      const screens = await term.watch((s) => EXITED.test(s));
      const reconnecting = new RegExp(
        `^reconnecting to 127\\.0\\.0\\.1:${proxy.port} \\(attempt 2 of 6\\)…$`,
        "m",
      );
      const during = screens.filter((s) => reconnecting.test(s));
      assert(during.length > 0, `no reconnecting line in:\n${screens.join("\n---\n")}`);
      for (const screen of during) {
        assert(
          !PROGRESS.test(screen) && !screen.includes("ETA"),
          `a rate or ETA shown:\n${screen}`,
        );
        assertStringIncludes(screen, "retrying in 1 s (attempt 2)");
      }
      // Afterwards the progress line is back, and never counts a byte twice.
      const after = screens.slice(screens.indexOf(during.at(-1)!) + 1);
      assert(after.some((s) => PROGRESS.test(s)), `no progress after:\n${after.join("\n---\n")}`);
      for (const screen of screens) {
        const numbers = doneOfTotal(screen);
        if (numbers) assert(numbers[0] <= numbers[1], `more done than the total:\n${screen}`);
      }
      const final = await term.screen();
      assertStringIncludes(final, "EXIT=0");
      assert(!reconnecting.test(final) && !PROGRESS.test(final), `leftover line:\n${final}`);
      assertEquals(proxy.connections, 2);
    } finally {
      await term.close();
      await proxy.close();
      await server.close();
    }
  },
});

Deno.test({
  name: "Ctrl+C on ferry send on a terminal ends the progress line and says to run it again",
  ignore: NO_TMUX,
  async fn() {
    await using baseDir = await memoryTempDir("ferry-tty-");
    const base = baseDir.path;
    const file = await oneBigFile(base, 32 * 1024 * 1024);
    const server = await startServer(join(base, "inbox"));
    const proxy = new FaultProxy(server.port, { bytesPerSecond: 4_000_000 });
    const term = new Terminal();
    try {
      await startFerry(term, ["send", file, "--to", `127.0.0.1:${proxy.port}`]);
      await term.watch((s) => PROGRESS.test(s) || EXITED.test(s));
      await term.keys("C-c");
      await term.watch((s) => EXITED.test(s));
      const final = await term.screen();
      const lines = final.split("\n").filter((l) => l !== "");
      assertEquals(lines.at(-1), "EXIT=130");
      assertEquals(lines.at(-2), "ferry: interrupted; run the same command again to resume");
      assert(!PROGRESS.test(final) && !final.includes("B/s"), `leftover progress:\n${final}`);
    } finally {
      await term.close();
      await proxy.close();
      await server.close();
    }
  },
});
