/**
 * Whether a small file's fsync runs in place or on the thread pool.
 *
 * On a filesystem where fsync returns at once (tmpfs, or a disk whose cache
 * the kernel trusts), the thread-pool hop of an asynchronous fsync costs far
 * more than the fsync, a large share of the receiver's time on many small
 * files (docs/PERFORMANCE.md). Where fsync waits on a device, running it in
 * place would stall the session, and many fsyncs in flight
 * at once do better. So fsyncs run in place while they are fast; a few
 * slow ones (or one very slow one) move them to the thread pool, and every
 * PROBE_EVERY files one runs in place again to see whether that still holds
 * (less often after each slow probe, up to every MAX_PROBE_EVERY files).
 * Either way a file is placed only after its own fsync has returned: only
 * where it waits changes.
 */

/** An in-place fsync slower than this (milliseconds) counts as slow. */
export const SLOW_FSYNC_MS = 0.2;
/** Slow in-place fsyncs, less the fast ones since, that move fsyncs to the thread pool. */
export const SLOW_STRIKES = 3;
/**
 * An in-place fsync slower than this (milliseconds) moves fsyncs to the
 * thread pool at once: it held up every session of the server meanwhile.
 */
export const STALL_FSYNC_MS = 20;
/** While fsyncs run on the thread pool, one in this many runs in place, as a probe. */
export const PROBE_EVERY = 256;
/** The longest interval between probes: it doubles after each slow probe, up to this. */
export const MAX_PROBE_EVERY = 8192;

export class FsyncPace {
  #strikes = 0;
  #inline = true;
  #sinceProbe = 0;
  #probeEvery = PROBE_EVERY;

  /** Whether the next fsync should run in place (and be timed with `record`). */
  inline(): boolean {
    if (this.#inline) return true;
    if (++this.#sinceProbe < this.#probeEvery) return false;
    this.#sinceProbe = 0;
    return true;
  }

  /** How long an in-place fsync took, in milliseconds. */
  record(ms: number): void {
    if (ms > SLOW_FSYNC_MS) {
      if (!this.#inline) { // a slow probe: stay on the thread pool, probe less often
        this.#probeEvery = Math.min(this.#probeEvery * 2, MAX_PROBE_EVERY);
        return;
      }
      this.#strikes = ms > STALL_FSYNC_MS ? SLOW_STRIKES : this.#strikes + 1;
      if (this.#strikes >= SLOW_STRIKES) {
        this.#inline = false;
        this.#sinceProbe = 0;
      }
    } else if (this.#inline) {
      this.#strikes = Math.max(0, this.#strikes - 1);
    } else { // a fast probe
      this.#inline = true;
      this.#strikes = 0;
      this.#probeEvery = PROBE_EVERY;
    }
  }
}

/**
 * Runs fsync on `file` in place or on the thread pool, as `pace` says
 * (`inline`: what `pace.inline()` said already for this file).
 */
export function fsyncPaced(
  file: Deno.FsFile,
  pace: FsyncPace,
  inline: boolean = pace.inline(),
): Promise<void> {
  if (!inline) return file.sync();
  const started = performance.now();
  try {
    file.syncSync();
  } catch (err) {
    return Promise.reject(err);
  } finally {
    pace.record(performance.now() - started);
  }
  return Promise.resolve();
}

/**
 * Waits for every fsync of a batch, then closes their handles and throws the
 * first failure: an open that failed (`failed`) before any fsync's. Every
 * fsync ends, and its failure is seen, before its handle closes, even when
 * something failed.
 */
export async function settleSyncs(
  syncs: Promise<void>[],
  handles: Deno.FsFile[],
  failed: { err: unknown } | null,
): Promise<void> {
  const results = await Promise.allSettled(syncs);
  for (const handle of handles) handle.close();
  if (failed !== null) throw failed.err;
  for (const result of results) {
    if (result.status === "rejected") throw result.reason;
  }
}
