/**
 * The sender's path calls on POSIX systems (src/client/source_path.ts):
 * the same results as node:path's, which they stand in for.
 */
import { assertEquals } from "@std/assert";
import { posix } from "node:path";
import { POSIX_PATH_CALLS } from "../src/client/source_path.ts";

const ARGS = [
  "",
  ".",
  "..",
  "../..",
  "a",
  "a/",
  "a//b",
  "./a/./b/",
  "a/../b",
  "a/b/../../..",
  "/",
  "//",
  "/a",
  "/a/",
  "/a/b/c",
  "/../a",
  "/a/../../b",
  "//a//b//",
  "/a/./b/.",
  "photos 2026/ünïcödé.jpg",
  "...",
  "a/.../b",
  ".ferry/tmp",
];

Deno.test("POSIX_PATH_CALLS.resolve() gives node:path's resolve, from the working folder", () => {
  for (const arg of ARGS) assertEquals(POSIX_PATH_CALLS.resolve(arg), posix.resolve(arg), arg);
});

Deno.test("POSIX_PATH_CALLS basename, dirname and join give node:path's on resolved paths", () => {
  for (const arg of ARGS) {
    const path = posix.resolve(arg);
    assertEquals(POSIX_PATH_CALLS.basename(path), posix.basename(path), path);
    assertEquals(POSIX_PATH_CALLS.dirname(path), posix.dirname(path), path);
    for (const name of ["x", ".ferry", "tmp"]) {
      assertEquals(POSIX_PATH_CALLS.join(path, name), posix.join(path, name), `${path} ${name}`);
    }
  }
});
