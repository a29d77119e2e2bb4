/**
 * Finding the server: the datagrams (strict, bounded, fuzzed), the
 * responder's limits, and `ferry send` without --to against real `ferry
 * serve` processes on this machine. Everything stays on 127.0.0.1: tests
 * point the finder there with FERRY_DISCOVERY_ADDRESS and give each server
 * its own UDP port with --discovery-port.
 */
import { assert, assertEquals, assertMatch, assertStringIncludes } from "@std/assert";
import dgram from "node:dgram";
import { Buffer } from "node:buffer";
import { join } from "node:path";
import {
  type Answer,
  answerName,
  decodeAnswer,
  decodeQuery,
  encodeAnswer,
  encodeQuery,
  formatIp,
  MAX_ANSWER_BYTES,
  newNonce,
  parseIp,
  QUERY_BYTES,
} from "../src/discovery/discovery_protocol.ts";
import { DiscoveryResponder, RateLimit } from "../src/discovery/responder.ts";
import { connectAddress, findServers, parseTargets } from "../src/discovery/finder.ts";
import { freeUdpPort, randomBytes, Rng, runCli, spawnServe, tempDir } from "./_harness.ts";

const SAMPLE: Answer = {
  nonce: new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]),
  name: "laptop-日本",
  addresses: ["192.168.1.20", "fd00::2", "10.0.0.1"],
  port: 4455,
  any: true,
  open: false,
};

Deno.test("encodeQuery() and encodeAnswer() round-trip through decodeQuery() and decodeAnswer()", () => {
  const nonce = newNonce();
  const query = encodeQuery({ nonce });
  assertEquals(query.length, QUERY_BYTES);
  assertEquals(decodeQuery(query)?.nonce, nonce);
  const answer = encodeAnswer(SAMPLE);
  assertEquals(decodeAnswer(answer), SAMPLE);
  assertEquals(decodeQuery(answer), null, "an answer is not a query");
  assertEquals(decodeAnswer(query), null, "a query is not an answer");
});

Deno.test("encodeAnswer() never makes an answer larger than a query (no amplification)", () => {
  const largest = encodeAnswer({
    nonce: newNonce(),
    name: "x".repeat(63),
    addresses: Array.from({ length: 20 }, (_, i) => `fd00::${i + 1}`),
    port: 65535,
    any: false,
    open: true,
  });
  assertEquals(largest.length, MAX_ANSWER_BYTES);
  assert(MAX_ANSWER_BYTES <= QUERY_BYTES, `${MAX_ANSWER_BYTES} > ${QUERY_BYTES}`);
  assertEquals(decodeAnswer(largest)?.addresses.length, 8, "at most 8 addresses");
});

Deno.test("decodeQuery() and decodeAnswer() refuse anything but an exact datagram", () => {
  const query = encodeQuery({ nonce: newNonce() });
  const answer = encodeAnswer(SAMPLE);
  const mutate = (bytes: Uint8Array, at: number, value: number) => {
    const copy = bytes.slice();
    copy[at] = value;
    return copy;
  };
  for (
    const [what, bytes] of [
      ["short query", query.subarray(0, QUERY_BYTES - 1)],
      ["long query", new Uint8Array([...query, 0])],
      ["bad magic", mutate(query, 0, 0x47)],
      ["other version", mutate(query, 4, 2)],
      ["reserved bits", mutate(query, 6, 1)],
      ["padding not zero", mutate(query, 200, 1)],
    ] as const
  ) {
    assertEquals(decodeQuery(bytes), null, what);
  }
  for (
    const [what, bytes] of [
      ["truncated", answer.subarray(0, answer.length - 1)],
      ["trailing byte", new Uint8Array([...answer, 0])],
      ["bad magic", mutate(answer, 3, 0)],
      ["other version", mutate(answer, 4, 9)],
      ["unknown flag", mutate(answer, 6, 4)],
      ["reserved byte", mutate(answer, 7, 1)],
      ["port 0", mutate(mutate(answer, 16, 0), 17, 0)],
      ["empty name", mutate(answer, 18, 0)],
      ["name over 63 bytes", mutate(answer, 18, 64)],
      ["control character in the name", mutate(answer, 19, 0x1b)],
      ["invalid UTF-8 in the name", mutate(answer, 19, 0xff)],
      ["too many addresses", mutate(answer, 19 + 13, 9)],
      ["unknown family", mutate(answer, 19 + 13 + 1, 5)],
    ] as const
  ) {
    assertEquals(decodeAnswer(bytes), null, what);
  }
});

Deno.test("answerName() cleans and bounds a host name before it is sent", () => {
  assertEquals(answerName("host\u001b[31mname\n"), "host[31mname");
  assertEquals(answerName(""), "ferry");
  const long = answerName("é".repeat(100));
  assertEquals(new TextEncoder().encode(long).length <= 63, true);
  assertEquals(decodeAnswer(encodeAnswer({ ...SAMPLE, name: long }))?.name, long);
});

Deno.test("parseIp() and formatIp() parse IPv4 and IPv6 strictly and print them canonically", () => {
  for (
    const [text, canonical] of [
      ["192.168.1.20", "192.168.1.20"],
      ["::1", "::1"],
      ["fd00:0:0:0:0:0:0:2", "fd00::2"],
      ["2001:DB8::1:0:0:1", "2001:db8::1:0:0:1"],
      ["::ffff:192.0.2.1", "::ffff:c000:201"],
      ["1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8"],
      ["1:0:0:2:0:0:0:3", "1:0:0:2::3"],
    ] as const
  ) {
    const raw = parseIp(text);
    assert(raw !== null, text);
    assertEquals(formatIp(raw!), canonical, text);
  }
  for (
    const bad of [
      "",
      "1.2.3",
      "1.2.3.4.5",
      "256.1.1.1",
      "01.2.3.4",
      "a.b.c.d",
      "1::2::3",
      "1:2:3:4:5:6:7:8:9",
      "12345::",
      "::g",
      "1:2:3:4:5:6:7::8",
      "localhost",
    ]
  ) {
    assertEquals(parseIp(bad), null, bad);
  }
});

Deno.test("decodeQuery() and decodeAnswer() never throw on fuzzed and mutated datagrams", () => {
  const random = new Rng(0xd15c);
  const valid = [encodeQuery({ nonce: newNonce() }), encodeAnswer(SAMPLE)];
  for (let i = 0; i < 20_000; i++) {
    let bytes: Uint8Array;
    if (i % 2 === 0) {
      bytes = new Uint8Array(Math.floor(random.next() * 300));
      for (let j = 0; j < bytes.length; j++) bytes[j] = Math.floor(random.next() * 256);
      if (bytes.length >= 6 && random.next() < 0.5) bytes.set([0x46, 0x52, 0x59, 0x44, 1, 2], 0);
    } else {
      bytes = valid[i % 4 === 1 ? 0 : 1]!.slice();
      const flips = 1 + Math.floor(random.next() * 4);
      for (let k = 0; k < flips; k++) {
        bytes[Math.floor(random.next() * bytes.length)] = Math.floor(random.next() * 256);
      }
      if (random.next() < 0.2) bytes = bytes.subarray(0, Math.floor(random.next() * bytes.length));
    }
    const query = decodeQuery(bytes);
    const answer = decodeAnswer(bytes);
    if (answer !== null) {
      // Whatever decodes re-encodes to a datagram that decodes the same.
      assertEquals(decodeAnswer(encodeAnswer(answer)), answer);
      assert(answer.addresses.length <= 8 && answer.name.length > 0);
    }
    if (query !== null) assertEquals(query.nonce.length, 8);
  }
});

Deno.test("RateLimit.take() allows its burst, then its rate", () => {
  let now = 0;
  const limit = new RateLimit(4, 2, () => now);
  let allowed = 0;
  for (let i = 0; i < 20; i++) if (limit.take()) allowed++;
  assertEquals(allowed, 4);
  now += 1000;
  allowed = 0;
  for (let i = 0; i < 20; i++) if (limit.take()) allowed++;
  assertEquals(allowed, 2);
});

Deno.test("parseTargets() reads FERRY_DISCOVERY_ADDRESS: IPv4 addresses with optional ports", () => {
  assertEquals(parseTargets("127.0.0.1:5000, 10.0.0.255"), [
    { host: "127.0.0.1", port: 5000 },
    { host: "10.0.0.255", port: 4455 },
  ]);
  for (const bad of ["", "host.example", "127.0.0.1:0", "127.0.0.1:x", "::1", "1.2.3.4:5:6"]) {
    let threw = false;
    try {
      parseTargets(bad);
    } catch {
      threw = true;
    }
    assert(threw, bad);
  }
});

Deno.test("connectAddress() is where the answer came from, and null when the answer names others", () => {
  const answer = { ...SAMPLE, addresses: ["192.168.1.20"], port: 5000 };
  assertEquals(connectAddress({ ...answer, any: true }, "127.0.0.1"), {
    host: "127.0.0.1",
    port: 5000,
  });
  // An answer from 10.9.9.9 that names 192.168.1.20 would send us to somebody else: ignored.
  assertEquals(connectAddress({ ...answer, any: false }, "10.9.9.9"), null);
  assertEquals(connectAddress({ ...answer, any: true }, "10.9.9.9"), null);
  assertEquals(connectAddress({ ...answer, any: false }, "127.0.0.1"), null);
  assertEquals(connectAddress({ ...answer, any: false }, "192.168.1.20"), {
    host: "192.168.1.20",
    port: 5000,
  });
  assertEquals(connectAddress({ ...answer, addresses: [] }, "10.9.9.9")?.host, "10.9.9.9");
});

Deno.test("decodeAnswer() reads the open flag", () => {
  for (const open of [true, false]) {
    assertEquals(decodeAnswer(encodeAnswer({ ...SAMPLE, open }))?.open, open);
  }
});

Deno.test("findServers() ignores answers that name another address, and open servers when the sender has a code", async () => {
  const make = (name: string, port: number, addresses: string[], open: boolean) =>
    DiscoveryResponder.start({
      port: 0,
      host: "127.0.0.1",
      answer: () => ({ name, addresses, port, any: false, open }),
    });
  const honest = await make("honest", 1111, ["127.0.0.1"], false);
  const liar = await make("liar", 2222, ["127.0.0.9"], false);
  const open = await make("open", 3333, ["127.0.0.1"], true);
  try {
    const targets = [honest, liar, open].map((r) => ({ host: "127.0.0.1", port: r.port }));
    const all = await findServers({ targets, timeoutMs: 1500 });
    assertEquals(all.servers.map((s) => s.name).sort(), ["honest", "open"], "the liar is ignored");
    assertEquals(all.servers.find((s) => s.name === "open")?.open, true);
    const withCode = await findServers({ targets, timeoutMs: 1500, withCode: true });
    assertEquals(withCode.servers.map((s) => s.name), ["honest"]);
    assertEquals(withCode.ignoredOpen, 1);
  } finally {
    honest.close();
    liar.close();
    open.close();
  }
});

Deno.test("DiscoveryResponder answers queries, ignores anything else, and rate-limits each source", async () => {
  const responder = await DiscoveryResponder.start({
    port: 0,
    host: "127.0.0.1",
    answer: () => ({ name: "box", addresses: ["127.0.0.1"], port: 4455, any: false, open: false }),
  });
  const client = dgram.createSocket("udp4");
  const answers: Uint8Array[] = [];
  client.on("message", (msg: Uint8Array) => answers.push(new Uint8Array(msg)));
  await new Promise<void>((resolve) => client.bind(0, "127.0.0.1", () => resolve()));
  const send = (bytes: Uint8Array) =>
    new Promise<void>((resolve) =>
      client.send(Buffer.from(bytes), responder.port, "127.0.0.1", () => resolve())
    );
  try {
    // Not queries: never answered.
    await send(new Uint8Array(8));
    await send(randomBytes(QUERY_BYTES));
    await send(encodeAnswer(SAMPLE));
    const nonce = newNonce();
    for (let i = 0; i < 50; i++) await send(encodeQuery({ nonce }));
    await new Promise((r) => setTimeout(r, 300));
    assert(answers.length >= 1, "the query was answered");
    assert(answers.length <= 5, `${answers.length} answers to one source in a burst`);
    for (const bytes of answers) {
      assert(bytes.length <= QUERY_BYTES);
      const answer = decodeAnswer(bytes);
      assertEquals(answer?.nonce, nonce);
      assertEquals(answer?.name, "box");
    }
    assertEquals(responder.stats.answered, answers.length);
    assert(responder.stats.dropped >= 50 - answers.length);
  } finally {
    client.close();
    responder.close();
  }
});

Deno.test("findServers() collects each answering server once, and nothing after its timeout", async () => {
  const make = (name: string, port: number) =>
    DiscoveryResponder.start({
      port: 0,
      host: "127.0.0.1",
      answer: () => ({ name, addresses: ["127.0.0.1"], port, any: false, open: false }),
    });
  const one = await make("one", 1111);
  const two = await make("two", 2222);
  try {
    const targets = [one.port, two.port, one.port].map((port) => ({ host: "127.0.0.1", port }));
    const found = await findServers({ targets, timeoutMs: 1500 });
    assertEquals(
      found.servers.map((s) => [s.name, s.to.port]).sort(),
      [["one", 1111], ["two", 2222]],
    );
    const started = performance.now();
    const none = await findServers({
      targets: [{ host: "127.0.0.1", port: await freeUdpPort() }],
      timeoutMs: 500,
    });
    assertEquals(none.servers, []);
    assert(performance.now() - started < 1500);
  } finally {
    one.close();
    two.close();
  }
});

// End to end: two processes on this machine.

Deno.test("ferry send without --to finds the one ferry serve on this machine and sends to it", async () => {
  await using baseDir = await tempDir();
  const base = baseDir.path;
  const inbox = join(base, "inbox");
  const data = randomBytes(100_000);
  await Deno.writeFile(join(base, "found.bin"), data);
  const udp = await freeUdpPort();
  const serve = await spawnServe(inbox, ["--discovery-port", String(udp)]);
  try {
    assertStringIncludes(serve.output(), `answers discovery on UDP port ${udp}`);
    const sent = await runCli(["send", join(base, "found.bin")], {
      env: { FERRY_DISCOVERY_ADDRESS: `127.0.0.1:${udp}` },
    });
    assertEquals(sent.code, 0, sent.stderr);
    assertMatch(sent.stdout, new RegExp(`^ferry: found .+ at 127\\.0\\.0\\.1:${serve.port}$`, "m"));
    assertStringIncludes(sent.stdout, `to 127.0.0.1:${serve.port} in`);
    assertEquals(await Deno.readFile(join(inbox, "found.bin")), data);
  } finally {
    await serve.stop();
  }
});

Deno.test("ferry send without --to lists the servers and exits 1 when several answer and nobody can choose", async () => {
  await using baseDir = await tempDir();
  const base = baseDir.path;
  await Deno.writeTextFile(join(base, "a.txt"), "x");
  const [udp1, udp2] = [await freeUdpPort(), await freeUdpPort()];
  const first = await spawnServe(join(base, "one"), ["--discovery-port", String(udp1)]);
  const second = await spawnServe(join(base, "two"), ["--discovery-port", String(udp2)]);
  try {
    const env = { FERRY_DISCOVERY_ADDRESS: `127.0.0.1:${udp1},127.0.0.1:${udp2}` };
    const sent = await runCli(["send", join(base, "a.txt")], { env });
    assertEquals(sent.code, 1, sent.stderr);
    assertStringIncludes(sent.stderr, "ferry: 2 ferry servers answered; choose one with --to:");
    assertStringIncludes(sent.stderr, `--to 127.0.0.1:${first.port}`);
    assertStringIncludes(sent.stderr, `--to 127.0.0.1:${second.port}`);
    assertEquals(sent.stdout, "");
    const json = await runCli(["send", join(base, "a.txt"), "--json"], { env });
    assertEquals(json.code, 1);
    const error = JSON.parse(json.stdout.trim());
    assertEquals(error.type, "error");
    assertEquals(error.code, "several-servers");
    assertEquals(
      error.servers.map((s: { to: string }) => s.to).sort(),
      [`127.0.0.1:${first.port}`, `127.0.0.1:${second.port}`].sort(),
    );
    assertEquals(await Array.fromAsync(Deno.readDir(join(base, "one"))).then((e) => e.length), 1);
  } finally {
    await first.stop();
    await second.stop();
  }
});

Deno.test("ferry send without --to says how to give --to and which ports to open when nobody answers", async () => {
  await using baseDir = await tempDir();
  const base = baseDir.path;
  await Deno.writeTextFile(join(base, "a.txt"), "x");
  const udp = await freeUdpPort();
  // A server started with --no-discovery does not answer, even on the port asked.
  const quiet = await spawnServe(join(base, "in"), ["--no-discovery"]);
  try {
    assert(!quiet.output().includes("answers discovery"));
    const started = performance.now();
    const sent = await runCli(["send", join(base, "a.txt")], {
      env: { FERRY_DISCOVERY_ADDRESS: `127.0.0.1:${udp}` },
    });
    const seconds = (performance.now() - started) / 1000;
    assertEquals(sent.code, 1);
    const [line, hint, ...rest] = sent.stderr.trim().split("\n");
    assertEquals(line, "ferry: no ferry server answered on the local network within 2 s");
    assertMatch(hint, /^\(give the receiver's address with --to HOST\[:PORT\].*\)$/);
    assertStringIncludes(hint, "UDP port 4455 (discovery)");
    assertStringIncludes(hint, "TCP port 4455");
    assertEquals(rest, []);
    assert(seconds < 10, `took ${seconds} s`);
  } finally {
    await quiet.stop();
  }
});

Deno.test("ferry serve --no-discovery does not answer", async () => {
  await using baseDir = await tempDir();
  const base = baseDir.path;
  const udp = await freeUdpPort();
  await Deno.writeTextFile(join(base, "a.txt"), "x");
  // --no-discovery with a port makes no sense: a usage error.
  const both = await runCli(["serve", join(base, "x"), "--no-discovery", "--discovery-port", "9"]);
  assertEquals(both.code, 2);
  const serve = await spawnServe(join(base, "in"), ["--no-discovery"]);
  try {
    const found = await findServers({
      targets: [{ host: "127.0.0.1", port: udp }, { host: "127.0.0.1", port: 4455 }],
      timeoutMs: 600,
    });
    assertEquals(found.servers.filter((s) => s.to.port === serve.port), []);
  } finally {
    await serve.stop();
  }
});
