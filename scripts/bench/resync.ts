/**
 * The re-sync workload (`--workloads resync`): the small-file tree (10,000 × 4 KiB) is synced
 * once, then 1% of its files are changed (new content and time) and it is synced again, with
 * `ferry send` to `ferry serve --on-conflict update` and with `rsync -a` to the rsync daemon.
 * Each timed run changes another 1%; a run is checked (the copy has the tree's files and bytes,
 * and every changed file's content). Then each tool syncs once more through a counting relay,
 * untimed, for the bytes it sends (sender → receiver, everything on the wire: file data and the
 * tool's own messages), after another 1% changed and again with nothing changed; ferry's
 * unchanged sync must send no file data (its summary: 0 bytes, every file unchanged).
 * The timed runs print what `rsync -a` prints, nothing (`ferry send --quiet`); the first and
 * the counted runs print ferry's `--json` summary, which is checked.
 */
import { join } from "node:path";
import type { Options, Placement, Tool } from "./options.ts";
import { tempParent } from "./options.ts";
import {
  destRoot,
  makeOwnDir,
  type PlacementDir,
  preparePlacement,
  releasePlacement,
  removeMadeDir,
} from "./placements.ts";
import { capture, errorText, isRoot, Proc, timeProcesses } from "./processes.ts";
import { denoArgs, FERRY_ENV, startFerryServe, startRsyncDaemon } from "./peers.ts";
import { log, median } from "./measure.ts";
import { MiB, verifyCopy, type Workload, writeWorkload } from "./workloads.ts";

/** The share of the tree's files changed before each re-sync. */
const CHANGED_SHARE = 0.01;
const TOOLS: readonly Tool[] = ["ferry", "rsync"];

export interface ResyncResult {
  tool: Tool;
  placement: Placement;
  /** Seconds of each timed re-sync (1% changed). */
  seconds: number[];
  medianSeconds: number | null;
  /** Bytes of the files changed before each re-sync. */
  changedBytes: number;
  /** Bytes the sender sent for a re-sync with 1% changed, and for an unchanged tree. */
  sentBytes: number | null;
  unchangedSentBytes: number | null;
  /** ferry only: file data its summary counted for the unchanged tree (must be 0). */
  unchangedDataBytes: number | null;
  errors: string[];
}

/** Runs the re-sync workload on every placement that can be made. */
export async function measureResync(
  options: Options,
  workload: Workload,
  usable: readonly Tool[],
): Promise<{ results: ResyncResult[]; skipped: { placement: Placement; reason: string }[] }> {
  const tools = TOOLS.filter((t) => usable.includes(t));
  const results: ResyncResult[] = [];
  const skipped: { placement: Placement; reason: string }[] = [];
  const confDir = await makeOwnDir(tempParent(), "ferry-bench-conf-");
  try {
    for (const placement of options.placements) {
      if (placement === "tmpfs" && !isRoot()) {
        skipped.push({ placement, reason: "mounting a tmpfs needs root" });
        continue;
      }
      let dir: PlacementDir;
      try {
        dir = await preparePlacement(placement, options, workload.bytes * 6 + 256 * MiB);
      } catch (err) {
        skipped.push({ placement, reason: errorText(err) });
        continue;
      }
      try {
        for (const tool of tools) {
          results.push(await measureTool(dir, workload, tool, options, confDir));
        }
      } finally {
        await releasePlacement(dir);
      }
    }
  } finally {
    await removeMadeDir(confDir);
  }
  return { results, skipped };
}

/** A tool's server and how one sync runs against it (to `port`: the server's, or a relay's). */
interface Syncer {
  /** Where the copy lands (DEST/<entry>). */
  destDir: string;
  port: number;
  /** A sync; with `report`, one whose own report `check` reads (a timed one prints nothing). */
  sync(port: number, report: boolean): Proc;
  /** Why a finished sync that reported is wrong by its own report, or null. */
  check(proc: Proc, unchanged: boolean): string | null;
  /** The file data the last sync checked said it sent (ferry's summary), or null. */
  dataBytes: number | null;
  stop(): Promise<void>;
}

async function measureTool(
  dir: PlacementDir,
  workload: Workload,
  tool: Tool,
  options: Options,
  confDir: string,
): Promise<ResyncResult> {
  const srcDir = join(dir.root, `src-${tool}`);
  const where = `[${dir.placement}] resync ${tool}`;
  log(`${where}: writing ${workload.description}`);
  await writeWorkload(workload, srcDir);
  const syncer = tool === "ferry"
    ? await ferrySyncer(dir, srcDir, workload)
    : await rsyncSyncer(dir, srcDir, workload, confDir);
  const result: ResyncResult = {
    tool,
    placement: dir.placement,
    seconds: [],
    medianSeconds: null,
    changedBytes: 0,
    sentBytes: null,
    unchangedSentBytes: null,
    unchangedDataBytes: null,
    errors: [],
  };
  const timeoutMs = options.quick ? 120_000 : 900_000;
  const run = async (port: number, unchanged: boolean, report = true) => {
    let proc: Proc | null = null;
    const timed = await timeProcesses(() => [proc = syncer.sync(port, report)], timeoutMs);
    return { ...timed, error: timed.error ?? (report ? syncer.check(proc!, unchanged) : null) };
  };
  try {
    const first = await run(syncer.port, false);
    if (first.error !== null) throw new Error(`the first sync failed: ${first.error}`);
    let round = 0;
    for (let i = 1; i <= options.runs; i++) {
      const changed = await changeFiles(srcDir, workload, round++);
      result.changedBytes = changed.bytes;
      await capture("sync", []);
      const timed = await run(syncer.port, false, false);
      const error = timed.error ?? await checkCopy(workload, srcDir, syncer.destDir, changed.paths);
      if (error === null) result.seconds.push(timed.seconds);
      else result.errors.push(error);
      log(`${where} run ${i}/${options.runs}: ${timed.seconds.toFixed(3)} s ${error ?? "ok"}`);
    }
    const changed = await changeFiles(srcDir, workload, round++);
    const counted = await throughRelay(syncer.port, (port) => run(port, false));
    result.sentBytes = counted.bytes;
    const error = counted.error ??
      await checkCopy(workload, srcDir, syncer.destDir, changed.paths);
    if (error !== null) result.errors.push(`counted run: ${error}`);
    const same = await throughRelay(syncer.port, (port) => run(port, true));
    result.unchangedSentBytes = same.bytes;
    if (same.error !== null) result.errors.push(`unchanged run: ${same.error}`);
    result.unchangedDataBytes = syncer.dataBytes;
    log(
      `${where}: ${result.sentBytes} bytes sent for ${result.changedBytes} changed; ` +
        `${result.unchangedSentBytes} bytes for an unchanged tree`,
    );
  } catch (err) {
    result.errors.push(errorText(err));
  } finally {
    await syncer.stop();
    await Deno.remove(srcDir, { recursive: true }).catch(() => {});
  }
  result.medianSeconds = median(result.seconds);
  return result;
}

async function ferrySyncer(
  dir: PlacementDir,
  srcDir: string,
  workload: Workload,
): Promise<Syncer> {
  const server = await startFerryServe(join(dir.root, "resync-ferry"), [
    "--on-conflict",
    "update",
  ]);
  const syncer: Syncer = {
    dataBytes: null,
    destDir: server.inbox,
    port: server.port,
    sync: (port, report) =>
      new Proc(
        Deno.execPath(),
        denoArgs(
          "send",
          join(srcDir, workload.entry),
          "--to",
          `127.0.0.1:${port}`,
          report ? "--json" : "--quiet",
        ),
        { env: FERRY_ENV },
      ),
    check(proc, unchanged) {
      const summary = ferrySummary(proc);
      if (summary === null) return "no summary from ferry send";
      syncer.dataBytes = summary.bytes;
      const done = summary.files + summary.unchanged;
      if (done !== workload.files.length) {
        return `ferry counted ${done} files sent or unchanged, expected ${workload.files.length}`;
      }
      if (unchanged && (summary.bytes !== 0 || summary.files !== 0)) {
        return `an unchanged tree sent ${summary.files} files, ${summary.bytes} bytes of data`;
      }
      return null;
    },
    stop: () => server.proc.stop(),
  };
  return syncer;
}

/** The `summary` object `ferry send --json` ended with. */
function ferrySummary(
  proc: Proc,
): { files: number; bytes: number; unchanged: number } | null {
  const last = proc.output.trim().split("\n").at(-1) ?? "";
  try {
    const value = JSON.parse(last);
    return value.type === "summary" ? value : null;
  } catch {
    return null;
  }
}

async function rsyncSyncer(
  dir: PlacementDir,
  srcDir: string,
  workload: Workload,
  confDir: string,
): Promise<Syncer> {
  const server = await startRsyncDaemon(join(destRoot(dir), "resync-rsync"), confDir);
  return {
    destDir: server.module,
    port: server.port,
    sync: (port) =>
      new Proc("rsync", ["-a", join(srcDir, workload.entry), `rsync://127.0.0.1:${port}/bench/`]),
    check: () => null,
    dataBytes: null,
    stop: () => server.proc.stop(),
  };
}

/**
 * Gives CHANGED_SHARE of the files (another set each round) new random content of the same
 * size and another time; returns their paths and bytes.
 */
async function changeFiles(
  srcDir: string,
  workload: Workload,
  round: number,
): Promise<{ paths: string[]; bytes: number }> {
  const count = Math.max(1, Math.round(workload.files.length * CHANGED_SHARE));
  const step = Math.floor(workload.files.length / count);
  const paths: string[] = [];
  let bytes = 0;
  // A time in another second than the tree's own and every earlier round's: rsync's quick check
  // compares whole seconds, so a change within the second the tree was written would be missed.
  const when = new Date(Date.UTC(2020, 0, 1) + (round + 1) * 1000);
  for (let i = 0; i < count; i++) {
    const file = workload.files[(i * step + round) % workload.files.length]!;
    const data = new Uint8Array(file.size);
    for (let at = 0; at < data.length; at += 65536) {
      crypto.getRandomValues(data.subarray(at, Math.min(data.length, at + 65536)));
    }
    const path = join(srcDir, file.path);
    await Deno.writeFile(path, data);
    await Deno.utime(path, when, when);
    paths.push(file.path);
    bytes += file.size;
  }
  return { paths, bytes };
}

/** The copy has the tree's files and bytes, and each changed file's new content. */
async function checkCopy(
  workload: Workload,
  srcDir: string,
  destDir: string,
  changed: string[],
): Promise<string | null> {
  const whole = await verifyCopy(workload, srcDir, destDir);
  if (whole !== null) return whole;
  for (const path of changed) {
    const [a, b] = await Promise.all([
      Deno.readFile(join(srcDir, path)),
      Deno.readFile(join(destDir, path)).catch(() => null),
    ]);
    if (b === null || a.length !== b.length || !a.every((byte, i) => byte === b[i])) {
      return `${path}: the change did not arrive`;
    }
  }
  return null;
}

/**
 * Runs one sync through a relay on 127.0.0.1 that forwards to `target` and counts the bytes
 * that go from the sender to the receiver.
 */
async function throughRelay(
  target: number,
  sync: (port: number) => Promise<{ error: string | null }>,
): Promise<{ bytes: number; error: string | null }> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  let bytes = 0;
  const pipes: Promise<void>[] = [];
  const accepting = (async () => {
    for await (const client of listener) {
      pipes.push((async () => {
        let server: Deno.TcpConn;
        try {
          server = await Deno.connect({ hostname: "127.0.0.1", port: target });
        } catch {
          client.close();
          return;
        }
        await Promise.all([
          pump(client, server, (n) => bytes += n),
          pump(server, client, () => {}),
        ]);
        for (const conn of [client, server]) {
          try {
            conn.close();
          } catch { /* closed */ }
        }
      })());
    }
  })();
  let error: string | null;
  try {
    error = (await sync((listener.addr as Deno.NetAddr).port)).error;
  } finally {
    listener.close();
    await accepting.catch(() => {});
    await Promise.all(pipes);
  }
  return { bytes, error };
}

async function pump(from: Deno.TcpConn, to: Deno.TcpConn, count: (n: number) => void) {
  const buffer = new Uint8Array(256 * 1024);
  try {
    for (;;) {
      const n = await from.read(buffer);
      if (n === null) break;
      count(n);
      for (let at = 0; at < n;) at += await to.write(buffer.subarray(at, n));
    }
  } catch { /* either end closed */ }
  try {
    await to.closeWrite();
  } catch { /* closed */ }
}

/** The table of the re-sync workload. */
export function resyncTable(results: ResyncResult[], workload: Workload): string {
  const count = Math.max(1, Math.round(workload.files.length * CHANGED_SHARE));
  const lines = [
    `- resync: ${workload.description} synced again with ${count} files (1%) changed;` +
    " ferry: send → serve --on-conflict update (encrypted); rsync: rsync -a → the daemon (plain)",
    "- sent: bytes from the sender to the receiver on the wire (one untimed run through a" +
    " counting relay); unchanged: the same for a sync with nothing changed",
    "",
    "| placement | tool | median s | vs ferry | sent | changed | sent / changed | unchanged |",
    "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
  ];
  for (const r of results) {
    const ferry = results.find((f) => f.tool === "ferry" && f.placement === r.placement);
    const ratio = ferry?.medianSeconds && r.medianSeconds
      ? (ferry.medianSeconds / r.medianSeconds).toFixed(2)
      : "-";
    lines.push(
      `| ${r.placement} | ${r.tool} | ${r.medianSeconds?.toFixed(3) ?? "-"} | ${ratio} | ${
        r.sentBytes ?? "-"
      } | ${r.changedBytes} | ${
        r.sentBytes === null ? "-" : (r.sentBytes / r.changedBytes).toFixed(2)
      } | ${r.unchangedSentBytes ?? "-"} |`,
    );
  }
  for (const r of results) {
    for (const error of r.errors) lines.push(`FAILED resync ${r.tool} ${r.placement}: ${error}`);
  }
  return lines.join("\n");
}
