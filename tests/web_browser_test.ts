/**
 * `serve --web` in a real browser: Debian's headless Chromium, driven by
 * puppeteer-core, uses the page as a person would (picks files or a folder,
 * types or scans the code, presses Send) against `ferry serve --web` started
 * through the CLI with the shipped permission set. Skipped, with the reason,
 * only where Chromium is not installed (.ci/run installs it).
 *
 * The page's screenshot at a phone's width is written to
 * tests/output/web-page-390px.png for a person to look at.
 */
import { assert, assertEquals, assertMatch, assertStringIncludes } from "@std/assert";
import encodeQR from "@paulmillr/qr";
import { join } from "node:path";
import type { Browser, Page } from "npm:puppeteer-core@25.19.0";
import { TEST_CODE } from "./_in_process.ts";
import { freePort, randomBytes, spawnServe, tempDir, waitFor, writeTree } from "./_harness.ts";
import { FaultProxy } from "./fault_proxy.ts";
import { localNames } from "../src/server/web_origin.ts";

const CHROMIUM = "/usr/bin/chromium";
/**
 * The machine's own mDNS name (name.local), which the receiver takes as its own (a web site's
 * name is refused: web_origin.ts), mapped to 127.0.0.1 for Chromium below.
 */
const HOST = localNames(Deno.hostname()).at(-1)!;
const OUTPUT = new URL("./output/", import.meta.url).pathname;

function chromiumMissing(): string | null {
  try {
    Deno.statSync(CHROMIUM);
    return null;
  } catch {
    return `${CHROMIUM} is not installed (apt-get install chromium); .ci/run installs it`;
  }
}

const missing = chromiumMissing();
if (missing !== null) console.warn(`web_browser_test: skipped: ${missing}`);

function browserTest(name: string, fn: (browser: Browser) => Promise<void>): void {
  Deno.test({
    name: missing === null ? name : `${name} (skipped: ${missing})`,
    ignore: missing !== null,
    // Chromium's own tasks may outlive a test by a moment; its process is closed in `finally`.
    sanitizeOps: false,
    sanitizeResources: false,
    fn: async () => {
      const { default: puppeteer } = await import("npm:puppeteer-core@25.19.0");
      const browser = await puppeteer.launch({
        executablePath: CHROMIUM,
        headless: true,
        // As root (CI, containers) Chromium's sandbox cannot start.
        // HOST is 127.0.0.1 under a name: the page loads from it as a phone loads it from a
        // LAN address, over plain HTTP and not a "secure context" (no crypto.subtle there).
        args: [
          "--no-sandbox",
          "--disable-dev-shm-usage",
          `--host-resolver-rules=MAP ${HOST} 127.0.0.1`,
        ],
      });
      try {
        await fn(browser);
      } finally {
        await browser.close();
      }
    },
  });
}

const ready = (out: string) => out.includes("press Ctrl+C to stop");

async function serveWeb(dir: string, env: Record<string, string> = {}) {
  const webPort = freePort();
  const serve = await spawnServe(
    dir,
    ["--web", "--web-port", String(webPort), "--no-discovery"],
    { ready, env },
  );
  return { serve, webPort, [Symbol.asyncDispose]: () => serve.stop().then(() => {}) };
}

async function phonePage(browser: Browser, url: string): Promise<Page> {
  const page = await browser.newPage();
  await page.setViewport({ width: 390, height: 844, deviceScaleFactor: 2, isMobile: true });
  await page.goto(url);
  assertEquals(await page.evaluate("window.isSecureContext"), false);
  return page;
}

/** Presses Send and waits for the page to say it is done; returns its status line. */
async function sendAndWait(page: Page, timeoutMs = 180_000): Promise<string> {
  await page.click("#send");
  await page.waitForFunction("document.body.dataset.done !== undefined", { timeout: timeoutMs });
  return await page.$eval("#status", (el) => el.textContent ?? "");
}

const inputValue = (el: unknown) => (el as { value: string }).value;

async function sameFile(a: string, b: string): Promise<void> {
  const x = await Deno.readFile(a);
  const y = await Deno.readFile(b);
  assert(x.length === y.length && x.every((v, i) => v === y[i]), `${b} differs from ${a}`);
}

browserTest(
  "browser: a 100 MB file and a folder of 200 files arrive byte for byte through the page",
  async (browser) => {
    await using base = await tempDir();
    const src = join(base.path, "src");
    const inbox = join(base.path, "inbox");
    const tree: Record<string, Uint8Array> = { "big.bin": randomBytes(100 * 1024 * 1024) };
    for (let i = 0; i < 200; i++) {
      tree[`album/${String(i).padStart(3, "0")}.jpg`] = randomBytes(i * 37);
    }
    await writeTree(src, tree);
    // A generated code: the banner shows it, and the QR code's address carries it in its fragment.
    await using web = await serveWeb(inbox, { FERRY_CODE: "" });
    const code = web.serve.stdout().match(/the code: (\S+)/)?.[1];
    if (code === undefined) throw new Error(`no code in the banner:\n${web.serve.stdout()}`);
    assertMatch(web.serve.stdout(), /it carries the code, too/);
    const qr = encodeQR(
      `http://127.0.0.1:${web.webPort}/#code=${encodeURIComponent(code)}`,
      "ascii",
    );
    assertStringIncludes(web.serve.stdout(), qr.trimEnd());
    // The code is shown once in words (the QR code carries it too), never inside a command.
    assertEquals(web.serve.stdout().split(code).length - 1, 1);
    const page = await phonePage(
      browser,
      `http://${HOST}:${web.webPort}/#code=${encodeURIComponent(code)}`,
    );
    // The code went from the fragment into the form, and out of the address bar.
    assertEquals(await page.$eval("#code", inputValue), code);
    assertEquals(new URL(page.url()).hash, "");
    await (await page.$("#files"))!.uploadFile(join(src, "big.bin"));
    await (await page.$("#folder"))!.uploadFile(join(src, "album"));
    await page.waitForFunction('document.querySelectorAll("#list li").length === 201');
    const status = await sendAndWait(page);
    assertMatch(status, /^done: 201 file\(s\) verified$/);
    assertEquals(await page.$$eval("#list li.ok", (rows) => rows.length), 201);
    for (const path of Object.keys(tree)) await sameFile(join(src, path), join(inbox, path));
    await Deno.mkdir(OUTPUT, { recursive: true });
    await page.screenshot({ path: join(OUTPUT, "web-page-390px.png") as `${string}.png` });
  },
);

browserTest(
  "browser: a wrong code typed into the page is refused and counted; then the right one",
  async (browser) => {
    await using base = await tempDir();
    await writeTree(join(base.path, "src"), { "a.txt": "hello" });
    await using web = await serveWeb(join(base.path, "inbox"));
    const page = await phonePage(browser, `http://${HOST}:${web.webPort}/`);
    await page.type("#code", "0000-wrong-guess-here");
    await (await page.$("#files"))!.uploadFile(join(base.path, "src", "a.txt"));
    // Dropped files join the list too.
    await page.evaluate(`(() => {
    const data = new DataTransfer();
    data.items.add(new File(["dropped in"], "dropped.txt", { type: "text/plain" }));
    document.getElementById("drop").dispatchEvent(
      new DragEvent("drop", { dataTransfer: data, bubbles: true, cancelable: true }));
  })()`);
    await page.waitForFunction('document.querySelectorAll("#list li").length === 2');
    const status = await sendAndWait(page, 30_000);
    assertMatch(status, /wrong code/);
    await waitFor(
      "the receiver to count the guess",
      () => web.serve.output().includes("wrong code from 127.0.0.1 (1 of"),
    );
    // The right code, typed, works.
    await page.evaluate('document.getElementById("code").value = ""');
    await page.type("#code", TEST_CODE);
    await page.evaluate("delete document.body.dataset.done");
    assertMatch(await sendAndWait(page, 30_000), /^done: 2 file\(s\) verified$/);
    await sameFile(join(base.path, "src", "a.txt"), join(base.path, "inbox", "a.txt"));
    assertEquals(await Deno.readTextFile(join(base.path, "inbox", "dropped.txt")), "dropped in");
  },
);

browserTest(
  "browser: an upload cut mid-file reconnects and resumes where it stopped",
  async (browser) => {
    await using base = await tempDir();
    const src = join(base.path, "src");
    await writeTree(src, { "video.bin": randomBytes(40 * 1024 * 1024) });
    await using web = await serveWeb(join(base.path, "inbox"));
    // Every connection through the proxy is cut after 16 MB went up: the page's WebSocket is cut
    // mid-file, and so is the one it resumes on; the third finishes.
    const proxy = new FaultProxy(web.webPort, { cutAfter: 16 * 1024 * 1024 });
    try {
      const page = await phonePage(browser, `http://${HOST}:${proxy.port}/#code=${TEST_CODE}`);
      await (await page.$("#files"))!.uploadFile(join(src, "video.bin"));
      const status = await sendAndWait(page);
      assertMatch(status, /^done: 1 file\(s\) verified, [0-9.]+ MB resumed$/);
      await sameFile(join(src, "video.bin"), join(base.path, "inbox", "video.bin"));
      assert(proxy.connections >= 3, `${proxy.connections} connections`);
    } finally {
      await proxy.close();
    }
  },
);
