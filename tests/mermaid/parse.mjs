// Parse Mermaid diagrams with Mermaid's own parser (the one GitHub and JupyterLab render with).
// stdin: a JSON list of {"where": ..., "source": ...}; stdout: a JSON list of
// {"where": ..., "ok": true, "type": ...} or {"where": ..., "ok": false, "error": ...}.
import { readFileSync } from "node:fs";
import { JSDOM } from "jsdom";

// Mermaid cleans labels with DOMPurify, which needs a browser window: jsdom gives it one,
// and it must exist before mermaid (and DOMPurify with it) is first imported.
const dom = new JSDOM("<!doctype html><html><body></body></html>");
globalThis.window = dom.window;
globalThis.document = dom.window.document;

const { default: mermaid } = await import("mermaid");
mermaid.initialize({ startOnLoad: false });

const blocks = JSON.parse(readFileSync(0, "utf8"));
const results = [];
for (const { where, source } of blocks) {
  try {
    const parsed = await mermaid.parse(source);     // throws on a diagram Mermaid cannot read
    results.push({ where, ok: true, type: parsed.diagramType });
  } catch (error) {
    results.push({ where, ok: false, error: String(error && error.message || error) });
  }
}
process.stdout.write(JSON.stringify(results));
