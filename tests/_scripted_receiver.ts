/**
 * A scripted receiver for tests of the sender, on the plain channel: it
 * answers as its script says, hostile or not (WELCOME's features, each
 * batch's decisions, each Ack, the answer to a LIST), and records what the
 * sender sent after HELLO. `sendTo` runs `ferry send` against it through
 * the CLI.
 */
import { decodeFileEnd, encodeFrame, FrameType } from "../src/protocol/frame.ts";
import { Channel, encodePreamble, PREAMBLE_BYTES } from "../src/protocol/preamble.ts";
import { FrameReader } from "../src/transport/frame_io.ts";
import { runCli } from "./_cli.ts";

/** What a scripted receiver answers: WELCOME's features, each batch's decisions, each Ack. */
export interface Script {
  features: string[];
  /** NOOP frames sent before each PLAN (a receiver comparing files for a while). */
  noops?: number;
  decide(entry: Record<string, unknown>): Record<string, unknown>;
  ack?(entry: Record<string, unknown>): Record<string, unknown>;
  /** The LISTING payloads that answer a LIST (feature "listing"); none answers it. */
  list?(list: { salt: string; roots: string[] }): Uint8Array[];
  /** LISTING payloads sent right after WELCOME, asked for or not. */
  unasked?: Uint8Array[] | undefined;
}

/**
 * A receiver on the plain channel that answers as `script` says, hostile or not, and records
 * the frame types the sender sent after HELLO.
 */
export function scriptedReceiver(
  script: Script,
): { port: number; frames: Promise<number[]>; announced: string[] } {
  const announced: string[] = [];
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const encoder = new TextEncoder();
  const json = (type: number, value: unknown) =>
    encodeFrame(type as never, encoder.encode(JSON.stringify(value)));
  const frames = (async () => {
    const conn = await listener.accept();
    listener.close();
    const seen: number[] = [];
    const write = async (bytes: Uint8Array) => {
      for (let at = 0; at < bytes.length;) at += await conn.write(bytes.subarray(at));
    };
    try {
      const reader = new FrameReader(conn);
      if ((await reader.readRaw(PREAMBLE_BYTES)) === null) return seen;
      await reader.next(); // HELLO
      await write(encodePreamble({ version: 1, channel: Channel.plain }));
      await write(json(FrameType.WELCOME, {
        software: "ferry/scripted",
        digest: "sha256",
        features: script.features,
        limits: { maxBatchEntries: 4096, maxFrame: 1048576, maxPathBytes: 4096 },
      }));
      for (const payload of script.unasked ?? []) {
        await write(encodeFrame(FrameType.LISTING, payload));
      }
      const byId = new Map<number, Record<string, unknown>>();
      for (;;) {
        const frame = await reader.next().catch(() => null);
        if (frame === null) break;
        seen.push(frame.type);
        if (frame.type === FrameType.ANNOUNCE) {
          const announce = JSON.parse(new TextDecoder().decode(frame.payload));
          const decisions = announce.entries.map((e: Record<string, unknown>) => {
            byId.set(e.id as number, e);
            announced.push(e.path as string);
            return { id: e.id, ...script.decide(e) };
          });
          for (let i = 0; i < (script.noops ?? 0); i++) {
            await write(encodeFrame(FrameType.NOOP, new Uint8Array(0)));
          }
          await write(json(FrameType.PLAN, { batch: announce.batch, decisions }));
        } else if (frame.type === FrameType.FILE_END) {
          const { id } = decodeFileEnd(frame.payload);
          const entry = byId.get(id)!;
          const ack = script.ack?.(entry) ?? { ok: true, name: entry.path };
          await write(json(FrameType.ACK, { acks: [{ id, ...ack }] }));
        } else if (frame.type === FrameType.LIST && script.list) {
          const list = JSON.parse(new TextDecoder().decode(frame.payload));
          for (const payload of script.list(list)) {
            await write(encodeFrame(FrameType.LISTING, payload));
          }
        } else if (frame.type === FrameType.DONE) {
          await write(json(FrameType.BYE, { files: 0, bytes: 0, failed: 0 }));
        }
      }
    } finally {
      try {
        conn.close();
      } catch { /* closed */ }
    }
    return seen;
  })();
  return { port: (listener.addr as Deno.NetAddr).port, frames, announced };
}

/** `ferry send ARGS... --plaintext` to a scripted receiver, with no code. */
export async function sendTo(
  script: Script,
  args: string[],
  stdin?: Uint8Array,
): Promise<
  { code: number; stdout: string; stderr: string; frames: number[]; announced: string[] }
> {
  const receiver = scriptedReceiver(script);
  const result = await runCli(
    ["send", ...args, "--plaintext", "--retries", "0", "--to", `127.0.0.1:${receiver.port}`],
    { env: { FERRY_CODE: "" }, ...(stdin ? { stdin } : {}) },
  );
  return { ...result, frames: await receiver.frames, announced: receiver.announced };
}
