// The person types into an open buffer while the agent proposes and applies an edit to
// it, over `kiln lsp` (vscode-jsonrpc as the editor). Seeded interleavings: keystrokes
// while the permission question waits, while kiln's workspace/applyEdit is in flight (the
// editor then refuses it: the version moved on, as VS Code does), and after the turn.
// Afterwards every keystroke is in the buffer, kiln's copy equals the editor's, and the
// agent's edit is either in the buffer (applied) or was reported to the model as stale.
//
// Started by tests/it/editor_agents.rs, whose scripted model answers each prompt with an
// `edit` of race/N.txt (MARK → DONE) and then a text. Environment: KILN_BIN, KILN_WORKSPACE,
// KILN_RACE_SEEDS (default 1000), KILN_RACE_SEED (the first seed, default 1).

import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';

import { NotificationType, RequestType } from 'vscode-jsonrpc/node.js';

import { applyEdits, deadline, failWith, lspConnection, mulberry32, positionAt, spawnKiln } from './lib.mjs';

const SEEDS = Number.parseInt(process.env.KILN_RACE_SEEDS ?? '1000', 10);
const FIRST = Number.parseInt(process.env.KILN_RACE_SEED ?? '1', 10);
const TIMEOUT_MS = 240_000;
const ws = process.env.KILN_WORKSPACE;
assert.ok(ws, 'KILN_WORKSPACE is not set');

let current = 0;
const fail = failWith(() => `(seed ${current})`);
const timer = deadline(TIMEOUT_MS, fail);
const conn = lspConnection(spawnKiln(['lsp']));

// The editor's state for the seed being run.
let doc = null; // { uri, text, version }
let rand = null;
let plan = null; // keystrokes per phase and the answer
let typed = [];
let appliedEdits = 0;
let refusedEdits = 0;
const updates = [];

/** One keystroke: a unique token at the start of a random line (never inside MARK/DONE). */
function keystroke() {
  const token = `<${current}.${typed.length}>`;
  const starts = [0];
  for (let i = 0; i < doc.text.length; i++) if (doc.text[i] === '\n' && i + 1 < doc.text.length) starts.push(i + 1);
  const at = starts[Math.floor(rand() * starts.length)];
  const pos = positionAt(doc.text, at);
  doc.text = doc.text.slice(0, at) + token + doc.text.slice(at);
  doc.version += 1;
  typed.push(token);
  conn.sendNotification('textDocument/didChange', {
    textDocument: { uri: doc.uri, version: doc.version },
    contentChanges: [{ range: { start: pos, end: pos }, text: token }],
  });
}

conn.onNotification(new NotificationType('kiln/sessionUpdate'), (p) => updates.push(p.update));
conn.onNotification('window/logMessage', () => {});
conn.onRequest(new RequestType('kiln/requestPermission'), async (p) => {
  for (let k = 0; k < plan.whileAsked; k++) keystroke();
  // Let the keystrokes reach kiln before the answer, in some seeds.
  if (rand() < 0.5) await new Promise((r) => setTimeout(r, 0));
  return plan.accept
    ? { outcome: { outcome: 'selected', optionId: 'allow_once' } }
    : { outcome: { outcome: 'selected', optionId: 'reject_once' }, _meta: { kiln: { feedback: 'not now' } } };
});
conn.onRequest('workspace/applyEdit', async (p) => {
  for (let k = 0; k < plan.whileApplying; k++) keystroke();
  const change = p.edit.documentChanges[0];
  assert.equal(change.textDocument.uri, doc.uri);
  if (change.textDocument.version !== doc.version) {
    refusedEdits += 1;
    return { applied: false, failureReason: `the document is at version ${doc.version}` };
  }
  const edited = applyEdits(doc.text, change.edits);
  doc.text = edited.text;
  const contentChanges = edited.contentChanges;
  doc.version += 1;
  appliedEdits += 1;
  conn.sendNotification('textDocument/didChange', { textDocument: { uri: doc.uri, version: doc.version }, contentChanges });
  return { applied: true };
});
conn.listen();

async function main() {
  const rootUri = pathToFileURL(ws).href;
  await conn.sendRequest('initialize', {
    processId: process.pid,
    rootUri,
    workspaceFolders: [{ uri: rootUri, name: 'race' }],
    capabilities: {
      general: { positionEncodings: ['utf-16'] },
      workspace: { applyEdit: true, workspaceEdit: { documentChanges: true } },
      experimental: { kiln: { permissionRequests: true } },
    },
  });
  conn.sendNotification('initialized', {});
  const session = await conn.sendRequest(new RequestType('kiln/newSession'), {});
  fs.mkdirSync(path.join(ws, 'race'), { recursive: true });
  let nApplied = 0;
  let nStale = 0;
  let nRejected = 0;
  for (let seed = FIRST; seed < FIRST + SEEDS; seed++) {
    current = seed;
    rand = mulberry32(seed);
    plan = {
      before: Math.floor(rand() * 3),
      whileAsked: rand() < 0.5 ? Math.floor(rand() * 3) : 0,
      whileApplying: rand() < 0.3 ? 1 + Math.floor(rand() * 2) : 0,
      after: Math.floor(rand() * 2),
      accept: rand() < 0.85,
    };
    typed = [];
    appliedEdits = 0;
    refusedEdits = 0;
    updates.length = 0;
    const file = path.join(ws, 'race', `${seed}.txt`);
    const initial = 'first line\nMARK\nlast line\n';
    fs.writeFileSync(file, initial);
    doc = { uri: pathToFileURL(file).href, text: initial, version: 1 };
    conn.sendNotification('textDocument/didOpen', { textDocument: { uri: doc.uri, languageId: 'plaintext', version: 1, text: initial } });
    for (let k = 0; k < plan.before; k++) keystroke();
    const result = await conn.sendRequest(new RequestType('kiln/prompt'), {
      sessionId: session.sessionId,
      prompt: [{ type: 'text', text: `seed ${seed}: replace MARK` }],
    });
    assert.equal(result.stopReason, 'end_turn', JSON.stringify(result));
    for (let k = 0; k < plan.after; k++) keystroke();

    // Every keystroke is in the buffer, and kiln's copy is the editor's.
    for (const token of typed) assert.ok(doc.text.includes(token), `keystroke ${token} lost: ${JSON.stringify(doc.text)}`);
    const read = await conn.sendRequest(new RequestType('kiln/read'), { uri: doc.uri });
    assert.equal(read.text, doc.text, "kiln's copy follows the editor");
    const done = updates.filter((u) => u.sessionUpdate === 'tool_call_update' && (u.status === 'completed' || u.status === 'failed'));
    assert.equal(done.length, 1, JSON.stringify(updates.map((u) => u.sessionUpdate)));
    const told = JSON.stringify(done[0].content ?? []);
    if (!plan.accept) {
      assert.equal(appliedEdits + refusedEdits, 0, 'a rejected edit never reaches the editor');
      assert.ok(doc.text.includes('MARK') && !doc.text.includes('DONE'));
      nRejected += 1;
    } else if (appliedEdits === 1) {
      // Applied: the hunk is present, on top of everything typed.
      assert.ok(doc.text.includes('DONE') && !doc.text.includes('MARK'), doc.text);
      assert.equal(done[0].status, 'completed', told);
      nApplied += 1;
    } else {
      // Not applied: nothing of it is in the buffer, and the model was told it is stale.
      assert.ok(doc.text.includes('MARK') && !doc.text.includes('DONE'), doc.text);
      assert.equal(done[0].status, 'failed', told);
      assert.match(told, /changed since it was read|did not apply the edit/, told);
      nStale += 1;
    }
    conn.sendNotification('textDocument/didClose', { textDocument: { uri: doc.uri } });
  }
  await conn.sendRequest('shutdown');
  conn.sendNotification('exit');
  clearTimeout(timer);
  console.log(`race: ${SEEDS} seeds: ${nApplied} applied, ${nStale} stale and reported, ${nRejected} rejected; no keystroke lost`);
  assert.ok(nApplied > 0 && nStale > 0 && nRejected > 0, 'every outcome was exercised');
}

main().catch(fail);
