/**
 * `deno task check` fails on an import cycle (as denoland/std's `lint:circular` does):
 * reads the module graph of main.ts and the scripts with `deno info --json`, keeps this
 * repository's own files, and prints every strongly connected group of more than one file
 * (type-only imports count: a cycle of types is still two files that cannot be understood
 * apart). Exit codes: 0 no cycle, 1 cycles found.
 */
import { relative } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const ENTRIES = [
  "main.ts",
  "scripts/compile.ts",
  "scripts/check_cycles.ts",
  "scripts/bench/main.ts",
  "scripts/install.ts",
];

interface InfoModule {
  specifier: string;
  dependencies?: { code?: { specifier: string }; type?: { specifier: string } }[];
}

/** Edges between this repository's files, from `deno info --json ENTRY`. */
async function graphOf(entry: string, edges: Map<string, Set<string>>): Promise<void> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", entry],
    cwd: ROOT,
    stdout: "piped",
    stderr: "inherit",
  }).output();
  if (!out.success) throw new Error(`deno info ${entry} failed`);
  const info = JSON.parse(new TextDecoder().decode(out.stdout)) as { modules: InfoModule[] };
  const own = (specifier: string) =>
    specifier.startsWith("file://") && !specifier.includes("/node_modules/")
      ? relative(ROOT, fileURLToPath(specifier))
      : null;
  for (const module of info.modules) {
    const from = own(module.specifier);
    if (from === null || from.startsWith("..")) continue;
    const targets = edges.get(from) ?? new Set<string>();
    edges.set(from, targets);
    for (const dep of module.dependencies ?? []) {
      for (const target of [dep.code?.specifier, dep.type?.specifier]) {
        const to = target === undefined ? null : own(target);
        if (to !== null && !to.startsWith("..") && to.endsWith(".ts")) targets.add(to);
      }
    }
  }
}

/** Tarjan's strongly connected components; returns those with more than one file. */
export function cycles(edges: Map<string, Set<string>>): string[][] {
  let counter = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (node: string) => {
    index.set(node, counter);
    low.set(node, counter++);
    stack.push(node);
    onStack.add(node);
    for (const next of edges.get(node) ?? []) {
      if (!index.has(next)) {
        visit(next);
        low.set(node, Math.min(low.get(node)!, low.get(next)!));
      } else if (onStack.has(next)) {
        low.set(node, Math.min(low.get(node)!, index.get(next)!));
      }
    }
    if (low.get(node) === index.get(node)) {
      const group: string[] = [];
      let member: string;
      do {
        member = stack.pop()!;
        onStack.delete(member);
        group.push(member);
      } while (member !== node);
      if (group.length > 1) found.push(group.sort());
    }
  };
  for (const node of [...edges.keys()].sort()) if (!index.has(node)) visit(node);
  return found;
}

if (import.meta.main) {
  const edges = new Map<string, Set<string>>();
  for (const entry of ENTRIES) await graphOf(entry, edges);
  const found = cycles(edges);
  if (found.length === 0) {
    console.log(`no import cycle among ${edges.size} files`);
  } else {
    for (const group of found) console.error(`import cycle: ${group.join(" ↔ ")}`);
    Deno.exit(1);
  }
}
