/**
 * TCP ports on 127.0.0.1: a free one for each server, and waiting until a
 * server listens on its port.
 */
import { Proc, sleep } from "./processes.ts";

export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/** Whether some socket is listening on `port` (from /proc/net/tcp*, without connecting). */
async function isListening(port: number): Promise<boolean> {
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    const text = await Deno.readTextFile(table).catch(() => "");
    for (const line of text.split("\n").slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (fields.length < 4 || fields[3] !== "0A") continue;
      if (parseInt(fields[1]?.split(":")[1] ?? "", 16) === port) return true;
    }
  }
  return false;
}

/** Waits until `proc` listens on `port`; throws if it exits or takes too long. */
export async function waitListening(proc: Proc, port: number, what: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!(await isListening(port))) {
    if (proc.exited) throw new Error(`${what} exited at start: ${proc.output.trim()}`);
    if (Date.now() > deadline) throw new Error(`${what} did not listen on ${port} within 30 s`);
    await sleep(10);
  }
}
