// What the node client tests share: starting kiln with its stderr kept for failure
// reports, a failure that says everything and stops, text positions (LSP lines end at
// \n in these tests' ASCII texts), seeded randomness and bounded waiting.

import { spawn } from 'node:child_process';

import { createMessageConnection, StreamMessageReader, StreamMessageWriter } from 'vscode-jsonrpc/node.js';

const started = [];

/** Starts `kiln ARGS` (KILN_BIN) with piped stdio; `child.stderrTail()` is its last output. */
export function spawnKiln(args) {
  const child = spawn(process.env.KILN_BIN, args, { stdio: ['pipe', 'pipe', 'pipe'], env: process.env });
  let tail = '';
  child.stderr.on('data', (d) => { tail = (tail + d).slice(-12000); });
  child.stderrTail = () => tail;
  started.push(child);
  return child;
}

/** An LSP connection (vscode-jsonrpc) to a started kiln. */
export function lspConnection(child) {
  return createMessageConnection(new StreamMessageReader(child.stdout), new StreamMessageWriter(child.stdin));
}

/** Reports `err` (with `context()` and every kiln's stderr), kills kiln, exits 1. */
export function failWith(context = () => '') {
  return (err) => {
    console.error(err && err.stack ? err.stack : String(err));
    const more = context();
    if (more) console.error(more);
    for (const child of started) {
      const tail = child.stderrTail();
      if (tail.trim()) console.error(`--- kiln stderr ---\n${tail}`);
      child.kill('SIGKILL');
    }
    process.exit(1);
  };
}

/** Fails the run if it is still going after `ms`; returns the timer to clear at the end. */
export function deadline(ms, fail) {
  return setTimeout(() => fail(new Error(`timed out after ${ms} ms`)), ms);
}

export function offsetAt(text, pos) {
  let line = 0;
  let i = 0;
  while (line < pos.line && i < text.length) {
    if (text[i] === '\n') line++;
    i++;
  }
  return i + pos.character;
}

export function positionAt(text, offset) {
  let line = 0;
  let start = 0;
  for (let i = 0; i < offset; i++) {
    if (text[i] === '\n') {
      line++;
      start = i + 1;
    }
  }
  return { line, character: offset - start };
}

/** Applies LSP text edits as an editor does (back to front); returns the new text and
 *  the didChange content changes that report them. */
export function applyEdits(text, edits) {
  const sorted = [...edits].sort((a, b) => offsetAt(text, b.range.start) - offsetAt(text, a.range.start));
  const contentChanges = [];
  for (const e of sorted) {
    const s = offsetAt(text, e.range.start);
    const t = offsetAt(text, e.range.end);
    text = text.slice(0, s) + e.newText + text.slice(t);
    contentChanges.push({ range: e.range, text: e.newText });
  }
  return { text, contentChanges };
}

export function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Polls `pred` until it returns something truthy (which is returned), for `ms` at most. */
export async function waitFor(what, pred, ms = 10_000) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const hit = pred();
    if (hit) return hit;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}
