/**
 * hash-wasm for the browser build (scripts/build_web.ts puts it in its
 * place): the page offers only SHA-256 (src/web/web_send.ts), so xxh128's
 * WebAssembly is left out of the page.
 */
export function createXXHash128(): Promise<never> {
  return Promise.reject(new Error("xxh128 is not available in this page"));
}
