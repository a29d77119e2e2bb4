/**
 * The words of `serve --ask` on a terminal (src/cli/ask_prompt.ts): what the question says when
 * the totals are known, not known yet, or a text comes; the sender's host name escaped and cut;
 * y, n and other answers; one question at a time.
 */
import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { AskPrompt, LineSource } from "../src/cli/ask_prompt.ts";
import type { Question } from "../src/server/ask.ts";

/** Standard input as a test feeds it, a line at a time. */
class FedInput {
  #waiting: ((n: number | null) => void) | null = null;
  #pending: Uint8Array[] = [];
  #into: Uint8Array | null = null;

  read(p: Uint8Array): Promise<number | null> {
    const next = this.#pending.shift();
    if (next !== undefined) {
      p.set(next);
      return Promise.resolve(next.length);
    }
    this.#into = p;
    return new Promise((resolve) => this.#waiting = resolve);
  }

  line(text: string): void {
    const bytes = new TextEncoder().encode(`${text}\n`);
    const waiting = this.#waiting;
    if (waiting && this.#into) {
      this.#waiting = null;
      this.#into.set(bytes);
      waiting(bytes.length);
    } else {
      this.#pending.push(bytes);
    }
  }

  end(): void {
    this.#waiting?.(null);
  }
}

function prompt(mode: "terminal" | "json") {
  const input = new FedInput();
  const out: string[] = [];
  const ask = new AskPrompt({
    mode,
    write: (_stream, text) => out.push(text),
    pause: () => {},
    resume: () => {},
    lines: new LineSource(input),
  });
  return { input, out, ask };
}

function question(extra: Partial<Question> = {}): Question {
  return {
    session: 1,
    peer: "192.168.1.7:50312",
    host: "laptop",
    totals: { files: 120, bytes: 200_000_000 },
    entries: 3,
    files: 2,
    names: ["photos/a.jpg", "photos/b.jpg", "photos"],
    text: null,
    deadline: Date.now() + 30_000,
    ...extra,
  };
}

const never = new AbortController().signal;

async function until(check: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !check(); i++) await new Promise((r) => setTimeout(r, 2));
  assert(check(), "timed out");
}

Deno.test("AskPrompt on a terminal: who, how much, the first names; y accepts, n declines", async () => {
  const p = prompt("terminal");
  const yes = p.ask.ask(question(), never);
  await until(() => p.out.join("").includes("Accept?"));
  assertEquals(
    p.out.join(""),
    'ferry: [1] 192.168.1.7:50312 (host "laptop") wants to send 120 files (200 MB):\n' +
      "  photos/a.jpg\n  photos/b.jpg\n  photos\n" +
      "Accept? [y/N] (declines in 30 s without an answer): ",
  );
  p.input.line("maybe");
  await until(() => p.out.join("").includes("Please answer y"));
  p.input.line("Y");
  assertEquals(await yes, true);
  assertStringIncludes(p.out.join(""), "ferry: [1] accepted\n");
  const no = p.ask.ask(question({ session: 2 }), never);
  await until(() => p.out.join("").includes("[2]"));
  p.input.line("");
  assertEquals(await no, false, "Enter alone declines");
  p.input.end();
  assertEquals(await p.ask.ask(question({ session: 3 }), never), false, "no more input declines");
});

Deno.test("AskPrompt: totals not known yet, a text, a hostile host name, more names than shown", async () => {
  const p = prompt("terminal");
  const asked = p.ask.ask(
    question({
      host: "\x1b[2J" + "h".repeat(200),
      totals: null,
      entries: 600,
      files: 512,
      names: ["\x1b[31ma", "b", "c", "d", "e"],
    }),
    never,
  );
  await until(() => p.out.join("").includes("Accept?"));
  const text = p.out.join("");
  assert(!text.includes("\x1b"), text);
  assertStringIncludes(text, `(host "\\u{1b}[2J${"h".repeat(55)}…")`);
  assertStringIncludes(
    text,
    "files (totals not known yet; the first batch has 512 files in 600 entries)",
  );
  assertStringIncludes(text, "  \\u{1b}[31ma\n");
  assertStringIncludes(text, "  e\n  …\n");
  p.input.line("n");
  assertEquals(await asked, false);
  const withText = p.ask.ask(
    question({
      session: 2,
      text: 29,
      totals: { files: 0, bytes: 0 },
      entries: 1,
      files: 0,
      names: [],
    }),
    never,
  );
  await until(() => p.out.join("").includes("[2]"));
  assertStringIncludes(p.out.join(""), "wants to send a text (29 B):\nAccept?");
  p.input.line("y");
  assertEquals(await withText, true);
});

Deno.test("AskPrompt: one question at a time; a question whose time ran out while waiting declines", async () => {
  const p = prompt("json");
  const first = p.ask.ask(question(), never);
  const second = p.ask.ask(question({ session: 2 }), never);
  const late = p.ask.ask(question({ session: 3, deadline: Date.now() + 50 }), never);
  await until(() => p.out.length === 1);
  await new Promise((r) => setTimeout(r, 100));
  assertEquals(p.out.length, 1, "the second waits for the first");
  p.input.line('{"session":1,"accept":true}');
  assertEquals(await first, true);
  await until(() => p.out.some((o) => o.includes('"type":"ask","session":2')));
  p.input.line('{"session":2,"accept":false}');
  assertEquals(await second, false);
  assertEquals(await late, false);
  const answered = p.out.filter((o) => o.includes('"answered"')).map((o) => JSON.parse(o));
  assertEquals(answered.map((a) => [a.session, a.accept, a.by]), [
    [1, true, "person"],
    [2, false, "person"],
    [3, false, "timeout"],
  ]);
  p.input.end();
});

Deno.test("AskPrompt: a session that ends while asked withdraws its question", async () => {
  const p = prompt("json");
  const ended = new AbortController();
  const asked = p.ask.ask(question(), ended.signal);
  await until(() => p.out.length === 1);
  ended.abort();
  assertEquals(await asked, false);
  assertStringIncludes(p.out.join(""), '"by":"withdrawn"');
  p.input.end();
});

Deno.test("LineSource keeps a bounded number of lines nobody has asked for yet (yes | ferry serve --ask)", async () => {
  const chunk = new TextEncoder().encode("y\n".repeat(2048));
  let left = 200; // 409,600 lines, none of them read while they come
  const lines = new LineSource({
    read(p: Uint8Array): Promise<number | null> {
      if (left-- <= 0) return Promise.resolve(null);
      p.set(chunk.subarray(0, p.length));
      return Promise.resolve(Math.min(chunk.length, p.length));
    },
  });
  await new Promise((resolve) => setTimeout(resolve, 100));
  let kept = 0;
  while (await lines.next() !== null) kept++;
  assert(kept > 0 && kept <= 64, `kept ${kept} lines`);
});
