/// <reference lib="dom" />
/**
 * The page of `serve --web` (page.html around it): pick files or a folder, or
 * drop them; type the code, or take it from the address's fragment
 * (#code=..., which a browser never sends to the server); send with the
 * ferry protocol over a WebSocket (web_send.ts); see each file's progress and
 * its verification by the receiver; after a dropped connection the page
 * reconnects by itself, and "Send" again resumes. Bundled for the browser by
 * scripts/build_web.ts.
 */
import type { SendEvent } from "../client/send_types.ts";
import { normalizeCode } from "../transport/code.ts";
import { type PickedFile, webSend } from "./web_send.ts";

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

const codeInput = $<HTMLInputElement>("code");
const filesInput = $<HTMLInputElement>("files");
const folderInput = $<HTMLInputElement>("folder");
const drop = $<HTMLElement>("drop");
const sendButton = $<HTMLButtonElement>("send");
const clearButton = $<HTMLButtonElement>("clear");
const list = $<HTMLElement>("list");
const bar = $<HTMLProgressElement>("bar");
const status = $<HTMLElement>("status");

let picked: PickedFile[] = [];
const rows = new Map<string, HTMLElement>();
let sending = false;

// The code may come in the fragment (a QR code carries it there); it is taken into the form
// and removed from the address, so it is not left in the history or shown on the screen.
{
  const fragment = new URLSearchParams(location.hash.slice(1));
  const code = fragment.get("code");
  if (code !== null) {
    codeInput.value = code;
    history.replaceState(null, "", location.pathname);
  }
}

function human(bytes: number): string {
  const units = ["B", "KB", "MB", "GB", "TB"];
  let n = bytes;
  let u = 0;
  while (n >= 1000 && u < units.length - 1) {
    n /= 1000;
    u++;
  }
  return `${u === 0 ? n : n.toFixed(1)} ${units[u]}`;
}

function setStatus(text: string, kind: "" | "ok" | "bad" = ""): void {
  status.textContent = text;
  status.className = kind;
}

function render(): void {
  list.replaceChildren();
  rows.clear();
  let bytes = 0;
  for (const { path, file } of picked) {
    bytes += file.size;
    const row = document.createElement("li");
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = path;
    const state = document.createElement("span");
    state.className = "state";
    state.textContent = human(file.size);
    row.append(name, state);
    list.append(row);
    rows.set(path, row);
  }
  sendButton.disabled = picked.length === 0 || sending;
  clearButton.disabled = picked.length === 0 || sending;
  setStatus(picked.length === 0 ? "" : `${picked.length} file(s), ${human(bytes)}`);
}

function mark(path: string, text: string, kind: string): void {
  const row = rows.get(path);
  if (row === undefined) return;
  row.className = kind;
  row.querySelector(".state")!.textContent = text;
}

function add(files: PickedFile[]): void {
  if (sending) return;
  const seen = new Set(picked.map((f) => f.path));
  for (const f of files) {
    if (!seen.has(f.path)) {
      picked.push(f);
      seen.add(f.path);
    }
  }
  render();
}

filesInput.addEventListener("change", () => {
  add([...filesInput.files ?? []].map((file) => ({ path: file.name, file })));
  filesInput.value = "";
});
folderInput.addEventListener("change", () => {
  add(
    [...folderInput.files ?? []].map((file) => ({
      path: file.webkitRelativePath || file.name,
      file,
    })),
  );
  folderInput.value = "";
});
clearButton.addEventListener("click", () => {
  picked = [];
  render();
});

// Dropped files and folders (a folder is read entry by entry).
async function entryFiles(entry: FileSystemEntry, prefix: string): Promise<PickedFile[]> {
  const path = prefix + entry.name;
  if (entry.isFile) {
    const file = await new Promise<File>((resolve, reject) =>
      (entry as FileSystemFileEntry).file(resolve, reject)
    );
    return [{ path, file }];
  }
  if (!entry.isDirectory) return [];
  const reader = (entry as FileSystemDirectoryEntry).createReader();
  const out: PickedFile[] = [];
  for (;;) {
    const batch = await new Promise<FileSystemEntry[]>((resolve, reject) =>
      reader.readEntries(resolve, reject)
    );
    if (batch.length === 0) return out;
    for (const child of batch) out.push(...await entryFiles(child, `${path}/`));
  }
}

drop.addEventListener("dragover", (e) => {
  e.preventDefault();
  drop.classList.add("over");
});
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", async (e) => {
  e.preventDefault();
  drop.classList.remove("over");
  const found: PickedFile[] = [];
  for (const item of [...e.dataTransfer?.items ?? []]) {
    if (item.kind !== "file") continue;
    // A folder comes as an entry to read; a browser without entries gives the file alone.
    const entry = item.webkitGetAsEntry();
    const file = entry === null ? item.getAsFile() : null;
    if (entry !== null) found.push(...await entryFiles(entry, ""));
    else if (file !== null) found.push({ path: file.name, file });
  }
  add(found);
});

/**
 * Bytes the receiver has of each file, as far as this page knows, and their sum: a file that
 * resumes after a dropped connection starts again from what the receiver held, not from what
 * the page had sent.
 */
class Progress {
  done = 0;
  #files = new Map<string, number>();
  #current = "";

  /** The file whose data goes out now (progress events count for it) starts at `bytes`. */
  start(path: string, bytes: number): void {
    this.#current = path;
    this.set(path, bytes);
  }

  add(bytes: number): void {
    this.set(this.#current, (this.#files.get(this.#current) ?? 0) + bytes);
  }

  /** The receiver has `bytes` of `path` (acknowledgements come while later files go out). */
  set(path: string, bytes: number): void {
    this.done += bytes - (this.#files.get(path) ?? 0);
    this.#files.set(path, bytes);
  }
}

function onEvent(event: SendEvent, total: number, progress: Progress): void {
  switch (event.type) {
    case "connected":
      setStatus(`connected${event.attempt > 1 ? ` again (attempt ${event.attempt})` : ""}`);
      break;
    case "file-start":
      progress.start(event.path, event.resumed);
      mark(
        event.path,
        event.resumed > 0 ? `resuming at ${human(event.resumed)}` : "sending",
        "busy",
      );
      break;
    case "progress":
      progress.add(event.bytes);
      break;
    case "file-done":
      progress.set(event.path, event.bytes + event.resumed);
      mark(event.path, "✓ verified", "ok");
      break;
    case "already":
      progress.set(event.path, event.bytes);
      mark(event.path, "✓ already there", "ok");
      break;
    case "skipped":
      mark(event.path, `skipped: ${event.reason}`, "bad");
      break;
    case "file-failed":
      mark(event.path, `failed: ${event.reason}`, "bad");
      break;
    case "retry":
      setStatus(
        `connection lost (${event.reason}); trying again in ${event.delayMs / 1000} s`,
        "bad",
      );
      break;
    case "warning":
      setStatus(event.message);
      break;
  }
  bar.value = total === 0 ? 1 : Math.min(1, progress.done / total);
}

sendButton.addEventListener("click", async () => {
  // No code: for a receiver that runs --open (one that asks for a code says so).
  const code = codeInput.value.trim() === "" ? null : normalizeCode(codeInput.value);
  if (code === null && codeInput.value.trim() !== "") {
    setStatus("the code is 1 to 128 characters", "bad");
    codeInput.focus();
    return;
  }
  sending = true;
  sendButton.disabled = clearButton.disabled = true;
  let total = 0;
  for (const f of picked) total += f.file.size;
  const progress = new Progress();
  bar.value = 0;
  setStatus("connecting");
  try {
    const result = await webSend({
      url: `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ferry`,
      code,
      files: picked,
      retries: 20,
      idleTimeoutMs: 60_000,
      connectTimeoutMs: 10_000,
      software: "ferry-web",
      onEvent: (event) => onEvent(event, total, progress),
    });
    const resumed = result.resumedBytes > 0 ? `, ${human(result.resumedBytes)} resumed` : "";
    const failed = result.failed + result.skipped;
    setStatus(
      `done: ${result.files + result.already} file(s) verified${resumed}` +
        (failed > 0 ? `; ${failed} not sent` : ""),
      failed > 0 ? "bad" : "ok",
    );
    document.body.dataset.done = failed > 0 ? "partial" : "ok";
  } catch (err) {
    setStatus(`${(err as Error).message}. Press Send to try again: what arrived is kept.`, "bad");
    document.body.dataset.done = "failed";
  } finally {
    sending = false;
    sendButton.disabled = clearButton.disabled = picked.length === 0;
  }
});

render();
