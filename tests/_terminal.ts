/**
 * A real terminal for tests: a tmux server of the test's own (its own
 * socket, removed again on close), with one 120×30 window running a shell
 * command line.
 */
import { join } from "node:path";

async function hasTmux(): Promise<boolean> {
  try {
    const { success } = await new Deno.Command("tmux", { args: ["-V"], stdout: "null" }).output();
    return success;
  } catch {
    return false;
  }
}

/** True where there is no tmux: the terminal tests are skipped. */
export const NO_TMUX = !(await hasTmux());

/** `arg` quoted for sh. */
export function shQuote(arg: string): string {
  return `'${arg.replaceAll("'", `'\\''`)}'`;
}

/** A tmux server of our own (its own socket), with one 120×30 window. */
export class Terminal implements AsyncDisposable {
  readonly socket = `ferry-test-${crypto.randomUUID().slice(0, 8)}`;

  async tmux(...args: string[]): Promise<string> {
    const out = await new Deno.Command("tmux", {
      args: ["-L", this.socket, ...args],
      stdout: "piped",
      stderr: "piped",
    }).output();
    return new TextDecoder().decode(out.stdout);
  }

  /** Runs the shell command `line` in the window, then prints `EXIT=<code>` and waits. */
  async start(line: string): Promise<void> {
    const command = `${line}; echo EXIT=$?; sleep 120`;
    await this.tmux("new-session", "-d", "-s", "t", "-x", "120", "-y", "30", command);
  }

  /** The screen's text, trailing empty lines removed. */
  async screen(): Promise<string> {
    return (await this.tmux("capture-pane", "-p", "-t", "t")).replace(/\n+$/, "");
  }

  /** Polls the screen until `done` says so; returns every distinct screen seen, the last last. */
  async watch(done: (screen: string) => boolean, ms = 60_000): Promise<string[]> {
    const seen: string[] = [];
    const deadline = Date.now() + ms;
    for (;;) {
      const screen = await this.screen();
      if (seen.at(-1) !== screen) seen.push(screen);
      if (done(screen)) return seen;
      if (Date.now() > deadline) throw new Error(`timed out; the screen:\n${screen}`);
      await new Promise((r) => setTimeout(r, 40));
    }
  }

  async keys(...keys: string[]): Promise<void> {
    await this.tmux("send-keys", "-t", "t", ...keys);
  }

  /**
   * Ends the tmux server and removes the socket it leaves behind, and tmux's
   * folder for them if that is empty now (it was made for this one).
   */
  async close(): Promise<void> {
    await this.tmux("kill-server");
    const sockets = join(Deno.env.get("TMUX_TMPDIR") ?? "/tmp", `tmux-${Deno.uid()}`);
    await Deno.remove(join(sockets, this.socket)).catch(() => {});
    await Deno.remove(sockets).catch(() => {}); // not empty: another tmux uses it
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
