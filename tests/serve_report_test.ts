/**
 * What the receiver shows of what it gets (src/cli/serve_report.ts and the session's events):
 * names as stored, the sender's totals with an ETA, and session ends called what they are.
 */
import {
  assert,
  assertEquals,
  assertGreater,
  assertMatch,
  assertRejects,
  assertStringIncludes,
  assertThrows,
} from "@std/assert";
import { join } from "node:path";
import type { Mode } from "../src/cli/output.ts";
import { ServeReporter } from "../src/cli/serve_report.ts";
import { send } from "../src/client/send_session.ts";
import { ConnectionLost } from "../src/errors.ts";
import { resolveSources } from "../src/client/walk.ts";
import { ProtocolError } from "../src/protocol/errors.ts";
import { FrameType } from "../src/protocol/frame.ts";
import { decodeAnnounce, encodeJson } from "../src/protocol/messages.ts";
import type { ServerEvent } from "../src/server/session.ts";
import { FaultProxy } from "./fault_proxy.ts";
import {
  randomBytes,
  RawClient,
  sendInProcess,
  startServer,
  tempDir,
  TEST_CODE,
  waitFor,
} from "./_harness.ts";

type Json = Record<string, unknown> & { type: string };

/** A ServeReporter whose output is kept; `close()` it at the end. */
function reporter(mode: Mode, quiet = false) {
  const out: { stream: "stdout" | "stderr"; text: string }[] = [];
  const r = new ServeReporter(mode, quiet, (stream, text) => out.push({ stream, text }), () => 121);
  return {
    r,
    out,
    text: (stream: "stdout" | "stderr") =>
      out.filter((o) => o.stream === stream).map((o) => o.text).join(""),
    json: (): Json[] =>
      out.flatMap((o) => o.text.split("\n").filter((l) => l !== "").map((l) => JSON.parse(l))),
  };
}

const PEER = "127.0.0.1:50312";

function end(
  session: number,
  extra: Partial<Extract<ServerEvent, { type: "session-end" }>> = {},
): ServerEvent {
  return {
    type: "session-end",
    session,
    peer: PEER,
    files: 0,
    bytes: 0,
    resumedBytes: 0,
    already: 0,
    texts: 0,
    failed: 0,
    seconds: 0.5,
    ...extra,
  };
}

Deno.test("serve's log shows a file stored under another name as 'sent name → stored name'", () => {
  for (const quiet of [false, true]) {
    const { r, text } = reporter("plain", quiet);
    r.event({ type: "session-start", session: 1, peer: PEER });
    r.event({
      type: "file",
      session: 1,
      path: "docs/report.pdf",
      name: "docs/report (1).pdf",
      bytes: 4000,
      resumed: 1000,
    });
    r.event({ type: "file", session: 1, path: "a.txt", name: "a.txt", bytes: 10, resumed: 0 });
    // A name from the network is escaped in the log.
    r.event({
      type: "file",
      session: 1,
      path: "x\u001b[2J.txt",
      name: "x\u001b[2J (1).txt",
      bytes: 1,
      resumed: 0,
    });
    r.close();
    if (quiet) {
      assertEquals(text("stdout"), "");
      continue;
    }
    assertEquals(
      text("stdout"),
      "ferry: [1] docs/report.pdf → docs/report (1).pdf (5.00 kB)\n" +
        "ferry: [1] x\\u{1b}[2J.txt → x\\u{1b}[2J (1).txt (1 B)\n",
    );
  }
});

Deno.test("serve --json: file-done has the stored path and the announced one; already has both", () => {
  const { r, json } = reporter("json");
  r.event({ type: "session-start", session: 3, peer: PEER });
  r.event({
    type: "file",
    session: 3,
    path: "photos/a.jpg",
    name: "photos/a (1).jpg",
    bytes: 7,
    resumed: 0,
  });
  r.event({ type: "already", session: 3, path: "b.bin", name: "b (2).bin", bytes: 9 });
  r.event(end(3, { files: 1, bytes: 7, already: 1 }));
  r.close();
  const objects = json();
  assertEquals(objects[1], {
    type: "file-done",
    session: 3,
    path: "photos/a (1).jpg",
    name: "photos/a (1).jpg",
    announced: "photos/a.jpg",
    bytes: 7,
    resumed: 0,
    replaced: false,
  });
  assertEquals(objects[2], {
    type: "already",
    session: 3,
    path: "b (2).bin",
    announced: "b.bin",
    bytes: 9,
  });
  assertEquals(objects[3]?.already, 1);
  assertEquals(objects[3]?.cause, null);
  assertEquals(objects[3]?.ok, true);
});

Deno.test("serve's progress shows the sender's totals and an ETA once told, unknown until then", async () => {
  for (const mode of ["json", "live"] as const) {
    const { r, json, out } = reporter(mode);
    r.event({ type: "session-start", session: 1, peer: PEER });
    r.event({ type: "file-start", session: 1, path: "big.bin", size: 8_000_000, resumed: 0 });
    r.event({ type: "progress", session: 1, bytes: 1_000_000 });
    r.tick();
    const unknown = mode === "json" ? json().at(-1)! : null;
    const unknownLine = out.at(-1)!.text;
    r.event({ type: "totals", session: 1, files: 3, bytes: 10_000_000 });
    r.event({ type: "already", session: 1, path: "a.bin", name: "a.bin", bytes: 1_000_000 });
    await new Promise((resolve) => setTimeout(resolve, 350));
    r.event({ type: "progress", session: 1, bytes: 1_000_000 });
    r.tick();
    r.close();
    if (mode === "json") {
      assertEquals(unknown!.type, "progress");
      assertEquals(unknown!.totalFiles, null);
      assertEquals(unknown!.totalBytes, null);
      assertEquals(unknown!.eta, null);
      const known = json().at(-1)!;
      assertEquals(known.type, "progress");
      assertEquals(known.totalFiles, 3);
      assertEquals(known.totalBytes, 10_000_000);
      // Done counts the file an earlier session stored, received only what came now.
      assertEquals(known.files, 1);
      assertEquals(known.bytes, 3_000_000);
      assertEquals(known.receivedBytes, 2_000_000);
      assertEquals(typeof known.rate, "number");
      assertEquals(typeof known.eta, "number");
      assertGreater(known.eta as number, 0);
      assertEquals(known.current, "big.bin");
    } else {
      assertStringIncludes(unknownLine, `[1] ${PEER}  1.00 MB / ?  files 0/?  `);
      // The last redraw (close() then erases it).
      const drawn = out.map((o) => o.text).filter((t) => t.includes(PEER)).at(-1)!;
      assertMatch(
        drawn,
        /\[1\] 127\.0\.0\.1:50312 {2}3\.00 MB \/ 10\.0 MB \(30%\) {2}files 1\/3 {2}[\d.]+ [kM]?B\/s {2}ETA \d+:\d\d {2}big\.bin/,
      );
    }
  }
});

Deno.test("serve's log calls a disconnect, a missing code and a lockout what they are", () => {
  const { r, text } = reporter("plain");
  for (let i = 1; i <= 4; i++) r.event({ type: "session-start", session: i, peer: PEER });
  r.event(end(1, {
    files: 2,
    bytes: 3000,
    already: 1,
    error: "the sender disconnected (its transfer can resume)",
    cause: "disconnected",
  }));
  r.event(end(2, {
    error: "a sender without the code tried to connect (it left when asked for the code)",
    cause: "no-code",
  }));
  r.event(end(3, {
    error: "127.0.0.1 is locked out after 10 wrong codes until 14:05 (10 minutes)",
    cause: "locked-out",
  }));
  r.event(end(4, { already: 2 }));
  r.close();
  assertEquals(
    text("stderr"),
    `ferry: [1] ${PEER}: ended early after 2 files (3.00 kB), 1 already there: the sender ` +
      "disconnected (its transfer can resume)\n" +
      `ferry: [2] ${PEER}: a sender without the code tried to connect (it left when asked for ` +
      "the code)\n" +
      `ferry: [3] ${PEER}: 127.0.0.1 is locked out after 10 wrong codes until 14:05 (10 minutes)\n`,
  );
  assertEquals(
    text("stdout"),
    `ferry: [4] received 0 files (0 B), 2 already there from ${PEER} in 0.50 s\n`,
  );
});

Deno.test("ANNOUNCE's totals are optional, and checked when present", () => {
  const announce = (extra: Record<string, unknown>) =>
    decodeAnnounce(encodeJson({ batch: 0, entries: [{ id: 0 }], ...extra }));
  assertEquals(announce({}).totals, undefined);
  assertEquals(announce({ totals: { files: 2, bytes: 10 } }).totals, { files: 2, bytes: 10 });
  assertEquals(announce({ totals: { files: 1, bytes: null } }).totals, { files: 1, bytes: null });
  for (const totals of [null, 3, { files: -1, bytes: 0 }, { files: 1 }, { files: 1, bytes: 1.5 }]) {
    const err = assertThrows(() => announce({ totals }), ProtocolError);
    assertEquals(err.code, "bad-message");
  }
});

/** Two files in base/src: a.bin (2 MB) and b.bin (5 MB), sent in that order. */
async function twoFiles(base: string): Promise<[a: string, b: string]> {
  await Deno.mkdir(join(base, "src"));
  const paths: [a: string, b: string] = [join(base, "src/a.bin"), join(base, "src/b.bin")];
  await Deno.writeFile(paths[0], randomBytes(2_000_000));
  await Deno.writeFile(paths[1], randomBytes(5_000_000));
  return paths;
}

async function sendWithTotals(
  port: number,
  paths: string[],
  totals?: () => { files: number; bytes: number | null } | null,
) {
  return await send({
    to: { host: "127.0.0.1", port },
    sources: await resolveSources(paths, "stdin"),
    connectTimeoutMs: 5000,
    idleTimeoutMs: 10_000,
    retries: 0,
    software: "ferry/test",
    code: TEST_CODE,
    ...(totals === undefined ? {} : { totals }),
    onEvent: () => {},
  });
}

Deno.test("the sender tells the receiver its totals: counted, or once its walk has ended", async () => {
  await using baseDir = await tempDir();
  const base = baseDir.path;
  const paths = await twoFiles(base);
  const server = await startServer(join(base, "inbox"));
  try {
    // Counted before the first batch (send.ts's second walk): those numbers.
    await sendWithTotals(server.port, paths, () => ({ files: 5, bytes: 123 }));
    // Not counted (plain output does not count): the walk ended within the first batch.
    await sendWithTotals(server.port, paths, () => null);
    await sendWithTotals(server.port, paths);
  } finally {
    await server.close();
  }
  const totals = server.events.filter((e) => e.type === "totals");
  assertEquals(totals, [
    { type: "totals", session: 1, files: 5, bytes: 123 },
    { type: "totals", session: 2, files: 2, bytes: 7_000_000 },
    { type: "totals", session: 3, files: 2, bytes: 7_000_000 },
  ]);
  // Told with the first batch: before any file's data.
  for (const session of [1, 2, 3]) {
    const of = server.events.filter((e) => "session" in e && e.session === session);
    assert(of.findIndex((e) => e.type === "totals") < of.findIndex((e) => e.type === "file-start"));
  }
});

Deno.test("an ANNOUNCE with malformed totals ends the session (bad-message)", async () => {
  await using baseDir = await tempDir();
  const base = baseDir.path;
  const server = await startServer(join(base, "inbox"));
  const client = await RawClient.open(server.port);
  try {
    await client.json(FrameType.ANNOUNCE, {
      batch: 0,
      entries: [{ id: 0, path: "a", kind: "file", size: 1, mtime: 0, mode: 420 }],
      totals: { files: "many", bytes: 1 },
    });
    const frames = await client.drain();
    const error = frames.find((f) => f.type === FrameType.ERROR);
    assertEquals((error?.json as { code?: string })?.code, "bad-message");
  } finally {
    client.close();
    await server.close();
  }
});

function ends(events: ServerEvent[]) {
  return events.filter((e): e is Extract<ServerEvent, { type: "session-end" }> =>
    e.type === "session-end"
  );
}

Deno.test("a sender cut off mid-file is 'the sender disconnected (its transfer can resume)', and a rerun's files already stored are reported", async () => {
  await using baseDir = await tempDir();
  const base = baseDir.path;
  const paths = await twoFiles(base);
  const server = await startServer(join(base, "inbox"));
  // a.bin arrives whole (placed on its FILE_END: it is over 1 MiB), b.bin is cut.
  const proxy = new FaultProxy(server.port, { cutAfter: 4_000_000 });
  try {
    await assertRejects(() => sendInProcess(proxy.port, paths), ConnectionLost);
    await waitFor("the first session to end", () => ends(server.events).length === 1);
    const cut = ends(server.events)[0]!;
    assertEquals(cut.error, "the sender disconnected (its transfer can resume)");
    assertEquals(cut.cause, "disconnected");
    assertEquals(cut.files, 1);
    const rerun = await sendInProcess(server.port, paths);
    assertEquals(rerun.already, 1);
    await waitFor("the second session to end", () => ends(server.events).length === 2);
  } finally {
    await proxy.close();
    await server.close();
  }
  const already = server.events.filter((e) => e.type === "already");
  assertEquals(already, [
    { type: "already", session: 2, path: "a.bin", name: "a.bin", bytes: 2_000_000 },
  ]);
  const done = ends(server.events)[1]!;
  assertEquals([done.already, done.files, done.error, done.cause], [1, 1, undefined, undefined]);
});

Deno.test("a sender without the code, and an address locked out, are logged as such", async () => {
  await using baseDir = await tempDir();
  const base = baseDir.path;
  await Deno.writeTextFile(join(base, "a.txt"), "x");
  const server = await startServer(join(base, "inbox"), {
    guardPolicy: { slowAfter: 10, lockAfter: 2, windowMs: 600_000, lockMs: 600_000, maxDelayMs: 0 },
  });
  const a = [join(base, "a.txt")];
  try {
    await assertRejects(() => sendInProcess(server.port, a, { code: null }));
    await assertRejects(() => sendInProcess(server.port, a, { code: "9999-wrong-code-here" }));
    await assertRejects(() => sendInProcess(server.port, a, { code: "9999-wrong-code-here" }));
    await assertRejects(() => sendInProcess(server.port, a));
    await waitFor("4 sessions to end", () => ends(server.events).length === 4);
  } finally {
    await server.close();
  }
  const [noCode, wrong, locking, locked] = ends(server.events);
  if (!noCode || !wrong || !locking || !locked) {
    throw new Error("4 sessions ended, waited for above");
  }
  assertEquals(noCode.cause, "no-code");
  assertEquals(
    noCode.error,
    "a sender without the code tried to connect (it left when asked for the code)",
  );
  assertEquals(wrong.cause, "wrong-code");
  assertEquals(wrong.error, "wrong code from 127.0.0.1 (1 of the 2 allowed in 10 minutes)");
  assertEquals(locking.cause, "wrong-code");
  assertMatch(
    locking.error!,
    /^wrong code from 127\.0\.0\.1: 127\.0\.0\.1 is locked out after 2 wrong codes until \d\d:\d\d \(10 minutes\)$/,
  );
  assertEquals(locked.cause, "locked-out");
  assertMatch(
    locked.error!,
    /^127\.0\.0\.1 is locked out after 2 wrong codes until \d\d:\d\d \(10 minutes\)$/,
  );
});

Deno.test("serve --ask on a terminal: what comes while a question is shown is printed after it, bounded", () => {
  for (const mode of ["plain", "live"] as const) {
    const { r, text } = reporter(mode);
    try {
      r.pause(); // a question for another session is on the terminal
      r.event({ type: "text", session: 1, text: "  photos/not-in-the-question.jpg" });
      assertEquals(text("stdout") + text("stderr"), "", `${mode}: nothing among the question`);
      r.resume();
      assertStringIncludes(text("stdout"), "photos/not-in-the-question.jpg", mode);
      // Held up to a bound; beyond it, printed as it comes rather than kept.
      r.pause();
      const big = "x".repeat(60 * 1024);
      for (let i = 0; i < 40; i++) r.event({ type: "text", session: 1, text: big });
      const shown = text("stdout").split(big).length - 1;
      assert(shown > 0 && shown < 40, `${mode}: ${shown} of 40 shown while paused`);
      r.resume();
      assertEquals(text("stdout").split(big).length - 1, 40, `${mode}: all shown in the end`);
    } finally {
      r.close();
    }
  }
});
