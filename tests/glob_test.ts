/**
 * The glob matcher of `--exclude` (src/cli/glob.ts): shell-glob patterns, and
 * which paths of a source they leave out. The CLI end of it is in
 * send_exclusion_test.ts.
 */
import { assert, assertEquals } from "@std/assert";
import { compileGlob, Excluder } from "../src/cli/glob.ts";
import { UsageError } from "../src/errors.ts";

Deno.test("compileGlob() matches *, **, ?, [...] and escapes like a shell glob", () => {
  const yes = (pattern: string, path: string) =>
    assert(compileGlob(pattern).regex.test(path), `${pattern} should match ${path}`);
  const no = (pattern: string, path: string) =>
    assert(!compileGlob(pattern).regex.test(path), `${pattern} should not match ${path}`);
  yes("*.tmp", "a.tmp");
  yes("*.tmp", ".tmp");
  no("*.tmp", "a.tmp.bak");
  no("*.tmp", "dir/a.tmp");
  yes("a?c", "abc");
  no("a?c", "a/c");
  no("a?c", "abbc");
  yes("**/*.o", "x.o");
  yes("**/*.o", "a/b/c/x.o");
  yes("src/**/test", "src/test");
  yes("src/**/test", "src/a/b/test");
  no("src/**/test", "lib/src/test");
  yes("build/**", "build");
  yes("build/**", "build/a/b");
  no("build/**", "builder");
  yes("a**z", "a/b/z");
  yes("[abc].txt", "b.txt");
  no("[abc].txt", "d.txt");
  yes("[!abc].txt", "d.txt");
  no("[!abc].txt", "a.txt");
  yes("[^a-c].txt", "x.txt");
  yes("file[0-9]", "file7");
  no("file[0-9]", "filex");
  no("[!a]", "/");
  yes("[]]", "]");
  yes("[a-]", "-");
  yes("\\*.txt", "*.txt");
  no("\\*.txt", "a.txt");
  yes("(x)+.{y}$^|", "(x)+.{y}$^|");
  yes("日本*.txt", "日本語.txt");
  assertEquals(compileGlob("cache/").dirOnly, true);
  assertEquals(compileGlob("a/b").anchored, true);
  assertEquals(compileGlob("ab").anchored, false);
  for (const bad of ["", "[abc", "a\\"]) {
    let threw = false;
    try {
      compileGlob(bad);
    } catch (err) {
      threw = err instanceof UsageError;
    }
    assert(threw, `'${bad}' is a usage error`);
  }
});

Deno.test("Excluder.excludes() matches names anywhere, paths from the top or inside the source", () => {
  const ex = new Excluder(["*.tmp", "node_modules", "logs/", "tree/build/**", "docs/draft.md"]);
  assert(ex.excludes("tree/a.tmp", "a.tmp", false));
  assert(ex.excludes("tree/deep/er/b.tmp", "deep/er/b.tmp", false));
  assert(ex.excludes("tree/x/node_modules", "x/node_modules", true));
  assert(ex.excludes("tree/logs", "logs", true));
  assert(!ex.excludes("tree/logs", "logs", false), "logs/ is for folders only");
  assert(ex.excludes("tree/build", "build", true));
  assert(ex.excludes("tree/build/out.o", "build/out.o", false));
  assert(ex.excludes("tree/docs/draft.md", "docs/draft.md", false), "relative to the source");
  assert(!ex.excludes("tree/sub/docs/draft.md", "sub/docs/draft.md", false));
  assert(!ex.excludes("tree/a.txt", "a.txt", false));
  assert(new Excluder([]).empty);
});
