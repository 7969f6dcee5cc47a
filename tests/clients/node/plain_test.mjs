// The plain LSP path as Helix 25.01 meets it: this client sends exactly the `initialize`
// params real Helix 25.01 sends (tests/fixtures/helix-25.01-initialize.json, captured from
// hx) and answers like Helix: applyEdit applied, showDocument opens the file,
// showMessageRequest refused with MethodNotFound. Started by tests/it/editor_agents.rs with a scripted model:
//   1. an `edit` of src/app.js, 2. a text, 3. `bash ls src`, 4. a text, 5. a text.
// Environment: KILN_BIN, KILN_WORKSPACE; provider and data-dir variables from the Rust test.

import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';

import { ResponseError } from 'vscode-jsonrpc/node.js';

import { applyEdits, deadline, failWith, lspConnection, spawnKiln, waitFor } from './lib.mjs';

const TIMEOUT_MS = 40_000;
const HELIX_TIMEOUT_MS = 20_000; // Helix gives up on a request after 20 s
const here = path.dirname(new URL(import.meta.url).pathname);
const ws = process.env.KILN_WORKSPACE;
assert.ok(ws, 'KILN_WORKSPACE is not set');
const rootUri = pathToFileURL(ws).href;
const appPath = path.join(ws, 'src', 'app.js');
const appUri = pathToFileURL(appPath).href;
const chatPath = path.join(ws, '.kiln', 'chat.md');
const chatUri = pathToFileURL(chatPath).href;

const fail = failWith(() => `--- events ---\n${events.slice(-40).join('\n')}`);
const timer = deadline(TIMEOUT_MS, fail);
const conn = lspConnection(spawnKiln(['lsp']));

// The editor: open buffers with versions, as Helix keeps them.
const docs = new Map(); // uri → { text, version }
const events = [];
const diagnostics = new Map();
const messages = [];
const progress = [];

function open(uri, text) {
  docs.set(uri, { text, version: 0 });
  conn.sendNotification('textDocument/didOpen', { textDocument: { uri, languageId: 'plaintext', version: 0, text } });
}

function type(uri, newText) {
  const doc = docs.get(uri);
  doc.text = newText;
  doc.version += 1;
  conn.sendNotification('textDocument/didChange', { textDocument: { uri, version: doc.version }, contentChanges: [{ text: newText }] });
}

conn.onRequest('workspace/applyEdit', (p) => {
  for (const change of p.edit.documentChanges) {
    const doc = docs.get(change.textDocument.uri);
    assert.ok(doc, `applyEdit on an open document: ${change.textDocument.uri}`);
    if (change.textDocument.version !== doc.version) return { applied: false, failureReason: 'version mismatch' };
    doc.text = applyEdits(doc.text, change.edits).text;
    doc.version += 1;
    events.push(`applyEdit ${path.basename(change.textDocument.uri)} v${doc.version}`);
    conn.sendNotification('textDocument/didChange', { textDocument: { uri: change.textDocument.uri, version: doc.version }, contentChanges: [{ text: doc.text }] });
  }
  return { applied: true };
});
conn.onRequest('window/showMessageRequest', () => {
  events.push('showMessageRequest → MethodNotFound');
  throw new ResponseError(-32601, 'Method not found');
});
// Helix 25.01 advertises no window.showDocument but acts on it: it opens the file.
conn.onRequest('window/showDocument', (p) => {
  events.push(`showDocument ${p.uri}`);
  const file = new URL(p.uri).pathname;
  if (!docs.has(p.uri)) open(p.uri, fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '');
  return { success: true };
});
conn.onRequest('window/workDoneProgress/create', () => null);
conn.onRequest('client/registerCapability', () => null);
conn.onNotification('$/progress', (p) => { progress.push(p.value.kind); events.push(`progress ${p.value.kind} ${p.value.title ?? p.value.message ?? ''}`); });
conn.onNotification('textDocument/publishDiagnostics', (p) => { diagnostics.set(p.uri, p.diagnostics); events.push(`diagnostics ${path.basename(p.uri)} ${p.diagnostics.length}`); });
conn.onNotification('window/showMessage', (p) => { messages.push(p.message); events.push(`showMessage ${p.message}`); });
conn.onNotification('window/logMessage', () => {});
conn.listen();


async function actions(uri, line, diags = []) {
  const started = Date.now();
  const list = await conn.sendRequest('textDocument/codeAction', {
    textDocument: { uri },
    range: { start: { line, character: 0 }, end: { line, character: 0 } },
    context: { diagnostics: diags, triggerKind: 1 },
  });
  assert.ok(Date.now() - started < HELIX_TIMEOUT_MS);
  for (const a of list) assert.ok(!a.command, `Helix resolves: no command needed (${a.title})`);
  return list;
}

async function run(action) {
  const started = Date.now();
  const resolved = await conn.sendRequest('codeAction/resolve', action);
  const took = Date.now() - started;
  assert.ok(took < 2_000, `${action.title} resolved in ${took} ms: the work runs in the background`);
  return resolved;
}

async function main() {
  const fixture = fs.readFileSync(path.join(here, '../../fixtures/helix-25.01-initialize.json'), 'utf8')
    .replaceAll('${ROOT_URI}', rootUri)
    .replaceAll('${ROOT_PATH}', ws);
  const init = await conn.sendRequest('initialize', JSON.parse(fixture));
  assert.equal(init.capabilities.codeActionProvider.resolveProvider, true);
  assert.ok(init.capabilities.executeCommandProvider.commands.includes('kiln.prompt'));
  conn.sendNotification('initialized', {});
  const disk = fs.readFileSync(appPath, 'utf8');
  open(appUri, disk);
  const farewellLine = disk.split('\n').findIndex((l) => l.includes('farewell'));

  // The editor asking by itself (a light bulb) gets nothing while nothing waits.
  const automatic = await conn.sendRequest('textDocument/codeAction', {
    textDocument: { uri: appUri },
    range: { start: { line: 0, character: 0 }, end: { line: 0, character: 0 } },
    context: { diagnostics: [], triggerKind: 2 },
  });
  assert.deepEqual(automatic, []);

  // 1. A code action on a diagnostic starts the fix; the proposal shows as diagnostics.
  const lint = { range: { start: { line: farewellLine, character: 0 }, end: { line: farewellLine, character: 5 } }, severity: 2, source: 'lint', message: 'the farewell should be loud' };
  const list = await actions(appUri, farewellLine, [lint]);
  const titles = list.map((a) => a.title);
  for (const t of ['kiln: explain', 'kiln: fix this', 'kiln: refactor…']) assert.ok(titles.includes(t), titles.join(' | '));
  await run(list.find((a) => a.title === 'kiln: fix this'));
  const hints = await waitFor('the proposal diagnostic', () => diagnostics.get(appUri)?.length && diagnostics.get(appUri));
  assert.equal(hints[0].severity, 4, 'a Hint');
  assert.equal(hints[0].range.start.line, farewellLine);
  assert.match(hints[0].message, /kiln proposal 1/);
  const diffFile = path.join(ws, '.kiln', 'proposals', '1.diff');
  assert.match(fs.readFileSync(diffFile, 'utf8'), /^-const farewell = "goodbye";$/m);
  await waitFor('the diff is shown', () => docs.has(pathToFileURL(diffFile).href));
  assert.match(docs.get(pathToFileURL(diffFile).href).text, /^\+const farewell = "GOODBYE";$/m);
  assert.ok(progress.includes('begin'), 'progress began');

  // 2. Accepting it changes the buffer through a versioned applyEdit.
  const decide = await actions(appUri, farewellLine);
  const accept = decide.find((a) => a.title.startsWith('kiln: accept proposal 1'));
  assert.ok(accept, decide.map((a) => a.title).join(' | '));
  assert.match(accept.title, /\(\+1 −1\)/);
  assert.ok(decide.some((a) => a.title.startsWith('kiln: accept hunk 1')));
  await run(accept);
  await waitFor('the buffer changed', () => docs.get(appUri).text.includes('const farewell = "GOODBYE";'));
  await waitFor('the proposal diagnostics cleared', () => diagnostics.get(appUri)?.length === 0);
  await waitFor('the turn ended', () => progress.filter((k) => k === 'end').length === 1);
  assert.equal(fs.readFileSync(appPath, 'utf8'), disk, 'the editor owns the buffer: the disk is untouched');
  assert.ok(!fs.existsSync(diffFile), 'the decided proposal file is gone');

  // 3. The chat file: the fix is on record; a question below "## You" is sent.
  const chat = await waitFor('the chat file', () => fs.existsSync(chatPath) && fs.readFileSync(chatPath, 'utf8').includes('Made the farewell loud') && fs.readFileSync(chatPath, 'utf8')).catch((e) => { throw new Error(`${e.message}: ${fs.existsSync(chatPath) ? fs.readFileSync(chatPath, 'utf8') : 'no file'}`); });
  assert.match(chat, /## You\n\nFix this in `src\/app\.js`: line \d+: the farewell should be loud/);
  open(chatUri, chat);
  type(chatUri, `${chat}what is in src?\n`);
  const chatActions = await actions(chatUri, chat.split('\n').length);
  await run(chatActions.find((a) => a.title === 'kiln: send'));

  // 4. A command needs approval; Helix cannot answer showMessageRequest, so it waits
  //    as a pending approval with code actions.
  await waitFor('the pending approval', () => messages.some((m) => m.includes('kiln: allow')));
  const approvals = await actions(appUri, 0);
  const allow = approvals.find((a) => a.title.startsWith('kiln: allow'));
  assert.ok(allow, approvals.map((a) => a.title).join(' | '));
  await run(allow);
  const answered = await waitFor('the answer in the open chat buffer', () => docs.get(chatUri).text.includes('Listed the files.') && docs.get(chatUri).text);
  const lastYou = answered.lastIndexOf('## You');
  assert.ok(answered.indexOf('Listed the files.') < lastYou, 'the answer sits above the last "## You" heading');
  assert.ok(answered.indexOf('what is in src?') < answered.indexOf('Listed the files.'));
  await waitFor('the second turn ended', () => progress.filter((k) => k === 'end').length === 2);

  // 5. Explain shows the chat (already open here) and streams into the buffer.
  const explain = (await actions(appUri, 0)).find((a) => a.title === 'kiln: explain');
  await run(explain);
  const explained = await waitFor('the explanation', () => docs.get(chatUri).text.includes('It greets.') && docs.get(chatUri).text);
  assert.match(explained, /Explain `src\/app\.js` line 1:\n\n```\nconst greeting = "hello";\n```/);
  assert.ok(explained.indexOf('It greets.') < explained.lastIndexOf('## You'));
  await waitFor('the third turn ended', () => progress.filter((k) => k === 'end').length === 3);

  // 6. executeCommand works for clients that bind commands.
  await assert.rejects(conn.sendRequest('workspace/executeCommand', { command: 'kiln.accept', arguments: [] }), /no proposal is pending/);

  await conn.sendRequest('shutdown');
  conn.sendNotification('exit');
  clearTimeout(timer);
  console.log(`plain LSP path with Helix 25.01's capabilities: ok (${events.length} events)`);
}

main().catch(fail);
