/**
 * The benchmark lives in scripts/bench/ (`deno task bench` runs scripts/bench/main.ts). This
 * module only re-exports what tests/v8_flags_test.ts still imports from here; it can go once
 * that test imports denoArgs from scripts/bench/peers.ts.
 */
export { denoArgs } from "./bench/peers.ts";
export { busyCpuSeconds, parseBusyCpuSeconds } from "./bench/processes.ts";
