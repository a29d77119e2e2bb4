/**
 * A small TCP proxy on 127.0.0.1 that injects faults into the sender →
 * receiver direction: cut after N bytes, stall, flip a byte, split writes
 * into 1-byte pieces, reset, slow down, or tamper with one record of the
 * secure channel. The other direction passes untouched.
 */

export interface Faults {
  /** Close both sides once this many bytes went upstream. */
  cutAfter?: number;
  /** Stop forwarding upstream (both ways stay open) after this many bytes, until `release()`. */
  stallAfter?: number | undefined;
  /**
   * Flip the first byte equal to `flipValue` (default: any byte) at or after
   * each of these upstream offsets.
   */
  flipAt?: number[];
  flipValue?: number;
  /** Forward upstream data one byte per write. */
  split?: boolean;
  /** Abort both sides (closing with unread data, which resets) after this many bytes. */
  resetAfter?: number;
  /** Forward upstream at most this many bytes per second. */
  bytesPerSecond?: number;
  /**
   * Read upstream as the sender's stream (preamble, three handshake frames,
   * then the secure channel's records) and tamper with record `index` (0:
   * the first record): flip a bit in it, drop it, send it twice, or send it
   * after the next one. The other faults do not apply then.
   */
  tamperRecord?: { tamper: RecordTamper; index: number };
}

export type RecordTamper = "flip" | "drop" | "duplicate" | "reorder";

export class FaultProxy {
  #listener: Deno.TcpListener;
  #conns = new Set<Deno.TcpConn>();
  #tasks = new Set<Promise<void>>();
  #released: () => void = () => {};
  #release = new Promise<void>((r) => this.#released = r);
  #accepting: Promise<void>;
  /** Every byte that went through, each way, when constructed with `capture`. */
  readonly captured = { up: [] as Uint8Array[], down: [] as Uint8Array[] };
  #capture = false;
  /** Connections accepted so far. */
  connections = 0;
  /** Upstream bytes forwarded, over all connections. */
  forwarded = 0;

  /** `faults` may depend on the connection's number (1, 2, ...). */
  constructor(
    readonly target: number,
    readonly faults: Faults | ((n: number) => Faults),
    opts: { capture?: boolean } = {},
  ) {
    this.#capture = opts.capture ?? false;
    this.#listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    this.#accepting = this.#accept();
  }

  get port(): number {
    return (this.#listener.addr as Deno.NetAddr).port;
  }

  /** Lets stalled connections go on. */
  release(): void {
    this.#released();
  }

  async #accept(): Promise<void> {
    for (;;) {
      let client: Deno.TcpConn;
      try {
        client = await this.#listener.accept();
      } catch {
        return;
      }
      const n = ++this.connections;
      const faults = typeof this.faults === "function" ? this.faults(n) : this.faults;
      const task = this.#pair(client, faults);
      this.#tasks.add(task);
      task.finally(() => this.#tasks.delete(task));
    }
  }

  async #pair(client: Deno.TcpConn, faults: Faults): Promise<void> {
    let server: Deno.TcpConn;
    try {
      server = await Deno.connect({ hostname: "127.0.0.1", port: this.target });
    } catch {
      client.close();
      return;
    }
    this.#conns.add(client);
    this.#conns.add(server);
    const closeBoth = () => {
      for (const c of [client, server]) {
        try {
          c.close();
        } catch { /* closed */ }
        this.#conns.delete(c);
      }
    };
    const up = faults.tamperRecord
      ? tamperRecords(client, server, faults.tamperRecord)
      : this.#upstream(client, server, faults, closeBoth);
    const down = pipe(server, client, this.#capture ? this.captured.down : null);
    await Promise.race([up, down]);
    closeBoth();
    await Promise.allSettled([up, down]);
  }

  async #upstream(
    from: Deno.TcpConn,
    to: Deno.TcpConn,
    faults: Faults,
    closeBoth: () => void,
  ): Promise<void> {
    const buf = new Uint8Array(64 * 1024);
    const flips = [...(faults.flipAt ?? [])].sort((a, b) => a - b);
    let offset = 0;
    const started = performance.now();
    try {
      for (;;) {
        const n = await from.read(buf);
        if (n === null) {
          await to.closeWrite().catch(() => {});
          return;
        }
        const whole = buf.subarray(0, n);
        for (let i = 0; i < whole.length && flips.length > 0; i++) {
          if (offset + i >= flips[0]! && (faults.flipValue ?? whole[i]) === whole[i]) {
            whole[i]! ^= 0x01;
            flips.shift();
          }
        }
        const limit = faults.cutAfter ?? faults.resetAfter ?? faults.stallAfter;
        const cut = limit !== undefined && offset + n >= limit ? limit - offset : n;
        if (faults.bytesPerSecond) {
          const due = started + ((offset + cut) / faults.bytesPerSecond) * 1000;
          await new Promise((r) => setTimeout(r, Math.max(0, due - performance.now())));
        }
        if (this.#capture) this.captured.up.push(whole.slice(0, cut));
        await writeChunk(to, whole.subarray(0, cut), faults.split ?? false);
        offset += cut;
        this.forwarded += cut;
        if (cut < n || (limit !== undefined && offset >= limit)) {
          if (faults.stallAfter === undefined) {
            closeBoth();
            return;
          }
          await this.#release;
          faults = { ...faults, stallAfter: undefined };
          if (this.#capture) this.captured.up.push(whole.slice(cut));
          await writeChunk(to, whole.subarray(cut), faults.split ?? false);
          offset += n - cut;
          this.forwarded += n - cut;
        }
      }
    } catch { /* a side closed */ }
  }

  async close(): Promise<void> {
    this.#released();
    this.#listener.close();
    await this.#accepting;
    for (const c of this.#conns) {
      try {
        c.close();
      } catch { /* closed */ }
    }
    await Promise.allSettled([...this.#tasks]);
  }
}

/** Forwards the sender's stream unit by unit, tampering with one record (Faults.tamperRecord). */
async function tamperRecords(
  from: Deno.TcpConn,
  to: Deno.TcpConn,
  { tamper, index }: { tamper: RecordTamper; index: number },
): Promise<void> {
  let pending = new Uint8Array(0);
  let units = 0; // preamble, 3 handshake frames, then records
  let record = 0;
  let held: Uint8Array | null = null;
  const buf = new Uint8Array(65536);
  const emit = (unit: Uint8Array) => writeChunk(to, unit, false);
  try {
    for (let n; (n = await from.read(buf)) !== null;) {
      pending = new Uint8Array([...pending, ...buf.subarray(0, n)]);
      for (;;) {
        let size: number;
        if (units === 0) size = 8;
        else if (units <= 3) {
          if (pending.length < 5) break;
          size = 5 + new DataView(pending.buffer, pending.byteOffset + 1, 4).getUint32(0);
        } else {
          if (pending.length < 4) break;
          size = 4 + new DataView(pending.buffer, pending.byteOffset, 4).getUint32(0);
        }
        if (pending.length < size) break;
        const unit = pending.slice(0, size);
        pending = pending.slice(size);
        const isRecord = units > 3;
        units++;
        if (!isRecord) {
          await emit(unit);
          continue;
        }
        const i = record++;
        if (held !== null) {
          await emit(unit);
          await emit(held);
          held = null;
        } else if (i !== index) await emit(unit);
        else if (tamper === "flip") {
          unit[unit.length - 20]! ^= 0x40; // a record: its header and tag are 20 bytes
          await emit(unit);
        } else if (tamper === "duplicate") {
          await emit(unit);
          await emit(unit);
        } else if (tamper === "reorder") held = unit;
        // "drop": nothing
      }
    }
    await to.closeWrite().catch(() => {});
  } catch { /* a side closed */ }
}

async function writeChunk(to: Deno.TcpConn, chunk: Uint8Array, split: boolean): Promise<void> {
  if (!split) {
    let done = 0;
    while (done < chunk.length) done += await to.write(chunk.subarray(done));
    return;
  }
  for (let i = 0; i < chunk.length; i++) await to.write(chunk.subarray(i, i + 1));
}

async function pipe(
  from: Deno.TcpConn,
  to: Deno.TcpConn,
  capture: Uint8Array[] | null,
): Promise<void> {
  const buf = new Uint8Array(64 * 1024);
  try {
    for (;;) {
      const n = await from.read(buf);
      if (n === null) return;
      capture?.push(buf.slice(0, n));
      let done = 0;
      while (done < n) done += await to.write(buf.subarray(done, n));
    }
  } catch { /* a side closed */ }
}
