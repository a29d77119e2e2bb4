/** Asking the person at the terminal. */
import { escapeName } from "../escape.ts";
import { writeText } from "./output.ts";

/** Whether there is a person to ask: standard input and standard error are terminals. */
export function canAsk(): boolean {
  try {
    return Deno.stdin.isTerminal() && Deno.stderr.isTerminal();
  } catch {
    return false;
  }
}

/** Reads one line from standard input (without its newline); null at end of input. */
export async function readLine(max = 1024): Promise<string | null> {
  const buf = new Uint8Array(1);
  const bytes: number[] = [];
  for (;;) {
    const n = await Deno.stdin.read(buf);
    if (n === null) {
      return bytes.length > 0 ? new TextDecoder().decode(new Uint8Array(bytes)) : null;
    }
    if (n === 0) continue;
    if (buf[0] === 0x0a) break;
    if (bytes.length < max) bytes.push(buf[0]!);
  }
  return new TextDecoder().decode(new Uint8Array(bytes)).replace(/\r$/, "");
}

/**
 * Shows `choices` numbered from 1 and asks for one, on standard error;
 * returns its index, or null if the person gives up (an empty answer,
 * `q`, or the end of input). Asks again after an answer out of range.
 */
export async function choose(question: string, choices: string[]): Promise<number | null> {
  const list = choices.map((c, i) => `  ${i + 1}) ${c}`).join("\n");
  writeText("stderr", `${question}\n${list}\n`);
  for (;;) {
    writeText("stderr", `Number (1-${choices.length}, Enter to cancel): `);
    const answer = await readLine();
    if (answer === null || answer.trim() === "" || answer.trim().toLowerCase() === "q") {
      if (answer === null) writeText("stderr", "\n");
      return null;
    }
    const n = Number(answer.trim());
    if (Number.isInteger(n) && n >= 1 && n <= choices.length) return n - 1;
    writeText(
      "stderr",
      `'${escapeName(answer.trim().slice(0, 20))}' is not one of 1 to ${choices.length}\n`,
    );
  }
}

/**
 * Asks for a secret on the terminal without echoing it (standard input in
 * raw mode, the question on standard error). Backspace erases, Enter ends,
 * Ctrl+C or Ctrl+D on an empty line gives up (null). At most `max` characters.
 */
export async function askSecret(question: string, max = 256): Promise<string | null> {
  writeText("stderr", question);
  const chars: string[] = [];
  const buf = new Uint8Array(64);
  const decoder = new TextDecoder();
  Deno.stdin.setRaw(true);
  try {
    for (;;) {
      const n = await Deno.stdin.read(buf);
      if (n === null) return null;
      for (const ch of decoder.decode(buf.subarray(0, n), { stream: true })) {
        if (ch === "\r" || ch === "\n") return chars.join("");
        if (ch === "\x03" || (ch === "\x04" && chars.length === 0)) return null;
        if (ch === "\x7f" || ch === "\b") chars.pop();
        else if (ch >= " " && chars.length < max) chars.push(ch);
      }
    }
  } finally {
    Deno.stdin.setRaw(false);
    writeText("stderr", "\n");
  }
}
