/**
 * The test harness, one concept a file; this file re-exports them all:
 * - _temp_dir.ts: temporary folders that remove themselves (`await using`)
 * - _in_process.ts: a server and a sender in the test's process
 * - _cli.ts: the real CLI as a child process (runCli, spawnCli, spawnServe)
 * - _raw_client.ts: a raw protocol client for adversarial tests
 * - _tree.ts: writing a tree from a description, and snapshots to compare
 * - _random.ts: random bytes, and a seeded generator
 * - _wait.ts: waiting for a condition, named
 * - _net.ts: free TCP and UDP ports
 * - _expect.ts: defined(), a check that narrows (the untyped assert() does not)
 * Others, imported on their own: fault_proxy.ts (a TCP proxy that injects
 * faults), _terminal.ts (tmux), _ndjson.ts (--json output), _mounts.ts,
 * _libraries.ts (which native library paths exist here).
 */
export * from "./_temp_dir.ts";
export * from "./_in_process.ts";
export * from "./_cli.ts";
export * from "./_raw_client.ts";
export * from "./_tree.ts";
export * from "./_random.ts";
export * from "./_wait.ts";
export * from "./_net.ts";
export * from "./_expect.ts";
