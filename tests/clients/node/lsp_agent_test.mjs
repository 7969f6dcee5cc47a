// The rich LSP path (`kiln/*`) driven by vscode-jsonrpc, the transport of VS Code's
// language client. Started by tests/it/editor_agents.rs, which runs the scripted model:
// its first reply rewrites two distant lines of src/app.js (an open, unsaved buffer), its
// second ends the turn. The test answers the permission request with the first hunk only
// and applies kiln's workspace/applyEdit to its own copy of the buffer, as an editor does.
//
// Environment: KILN_BIN (the binary), KILN_WORKSPACE (the project folder); the provider and
// data-dir variables are inherited from the Rust test.

import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';

import { NotificationType, RequestType } from 'vscode-jsonrpc/node.js';
import {
  ApplyWorkspaceEditRequest,
  DidChangeTextDocumentNotification,
  DidOpenTextDocumentNotification,
  ExitNotification,
  InitializedNotification,
  InitializeRequest,
  ShutdownRequest,
} from 'vscode-languageserver-protocol';

import Ajv2020 from 'ajv/dist/2020.js';

import { applyEdits, deadline, failWith, lspConnection, spawnKiln } from './lib.mjs';

const TIMEOUT_MS = 30_000;
const here = path.dirname(new URL(import.meta.url).pathname);

// Results are validated against protocol/schema/kiln.json (generated from kiln's types) and
// every update against ACP's SessionUpdate from the SDK's schema: one client library reads
// both transports.
const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: false });
ajv.addSchema(JSON.parse(fs.readFileSync(path.join(here, '../../../protocol/schema/kiln.json'), 'utf8')), 'kiln');
ajv.addSchema(JSON.parse(fs.readFileSync(path.join(here, 'node_modules/@agentclientprotocol/sdk/schema/v1/schema.json'), 'utf8')), 'acp');
const acpUpdate = ajv.getSchema('acp#/$defs/SessionUpdate');
let nValidated = 0;
function checkAgainst(ref, value, what) {
  const validate = ajv.getSchema(ref) ?? ajv.compile({ $ref: ref });
  if (!validate(value)) {
    throw new Error(`${what} does not match ${ref}: ${ajv.errorsText(validate.errors)}\n${JSON.stringify(value)}`);
  }
  nValidated += 1;
}
async function call(method, params) {
  const key = method.replace('/', '~1');
  checkAgainst(`kiln#/methods/${key}/params`, params, `${method} params`);
  const result = await conn.sendRequest(new RequestType(method), params);
  if (method !== 'kiln/cancel') checkAgainst(`kiln#/methods/${key}/result`, result, `${method} result`);
  return result;
}
const ws = process.env.KILN_WORKSPACE;
assert.ok(ws, 'KILN_WORKSPACE is not set');
const file = path.join(ws, 'src', 'app.js');
const uri = pathToFileURL(file).href;

const fail = failWith();
const timer = deadline(TIMEOUT_MS, fail);
const conn = lspConnection(spawnKiln(['lsp']));

// The editor's copy of the buffer: unsaved text that differs from the disk.
const disk = fs.readFileSync(file, 'utf8');
let buffer = disk.replace('const greeting', 'const greeting /* unsaved */');
let version = 1;

const updates = [];
const permissionRequests = [];
const applied = [];
conn.onNotification(new NotificationType('kiln/sessionUpdate'), (p) => {
  try {
    checkAgainst('kiln#/methods/kiln~1sessionUpdate/params', p, 'kiln/sessionUpdate');
    if (!p.update.sessionUpdate.startsWith('_kiln_') && !acpUpdate(p.update)) {
      throw new Error(`an update is not an ACP SessionUpdate: ${ajv.errorsText(acpUpdate.errors)}\n${JSON.stringify(p.update)}`);
    }
  } catch (e) {
    fail(e);
  }
  updates.push(p);
});
conn.onNotification('window/logMessage', () => {});
const notesUri = pathToFileURL(path.join(ws, 'notes.txt')).href;
let onCommand = null;
conn.onRequest(new RequestType('kiln/requestPermission'), async (p) => {
  permissionRequests.push(p);
  if (p.toolCall.kind === 'execute') return onCommand(p);
  // While kiln waits for this answer it keeps reading: a change to another buffer is
  // applied and visible before the answer is given.
  conn.sendNotification(DidChangeTextDocumentNotification.type, {
    textDocument: { uri: notesUri, version: 2 },
    contentChanges: [{ text: 'typed while kiln waited\n' }],
  });
  const notes = await conn.sendRequest(new RequestType('kiln/read'), { uri: notesUri });
  assert.equal(notes.text, 'typed while kiln waited\n', 'didChange is not stalled by a pending approval');
  const diff = p.toolCall.content.find((c) => c.type === 'diff');
  assert.ok(diff, `the permission request carries a diff: ${JSON.stringify(p.toolCall)}`);
  const hunks = diff._meta.kiln.hunks;
  assert.equal(hunks.length, 2, `two hunks: ${JSON.stringify(hunks)}`);
  assert.deepEqual(p.options.map((o) => o.kind), ['allow_once', 'allow_always', 'reject_once', 'reject_always']);
  return {
    outcome: { outcome: 'selected', optionId: 'allow_once' },
    _meta: { kiln: { acceptedHunks: [hunks[0].id], feedback: 'keep the farewell as it is' } },
  };
});
conn.onRequest(ApplyWorkspaceEditRequest.type, (p) => {
  applied.push(p);
  const change = p.edit.documentChanges[0];
  assert.equal(change.textDocument.uri, uri);
  if (change.textDocument.version !== version) {
    return { applied: false, failureReason: `version ${change.textDocument.version} is not ${version}` };
  }
  const edited = applyEdits(buffer, change.edits);
  buffer = edited.text;
  const contentChanges = edited.contentChanges;
  version += 1;
  conn.sendNotification(DidChangeTextDocumentNotification.type, {
    textDocument: { uri, version },
    contentChanges,
  });
  return { applied: true };
});
conn.listen();

async function main() {
  const init = await conn.sendRequest(InitializeRequest.type, {
    processId: process.pid,
    rootUri: pathToFileURL(ws).href,
    workspaceFolders: [{ uri: pathToFileURL(ws).href, name: 'project' }],
    capabilities: {
      general: { positionEncodings: ['utf-16'] },
      workspace: { applyEdit: true, workspaceEdit: { documentChanges: true } },
      experimental: { kiln: { permissionRequests: true } },
    },
  });
  const methods = init.capabilities.experimental.kiln.methods;
  for (const m of ['kiln/newSession', 'kiln/prompt', 'kiln/loadSession', 'kiln/restoreCheckpoint']) {
    assert.ok(methods.includes(m), `${m} is advertised: ${methods}`);
  }
  conn.sendNotification(InitializedNotification.type, {});
  conn.sendNotification(DidOpenTextDocumentNotification.type, {
    textDocument: { uri, languageId: 'javascript', version, text: buffer },
  });
  conn.sendNotification(DidOpenTextDocumentNotification.type, {
    textDocument: { uri: notesUri, languageId: 'plaintext', version: 1, text: 'notes\n' },
  });

  const session = await call('kiln/newSession', {});
  assert.match(session.sessionId, /^ses_/);
  assert.equal(session.modes.currentModeId, 'code');
  assert.ok(session.modes.availableModes.some((m) => m.id === 'ask'));
  assert.match(session.models.currentModelId, /scripted-coder$/);

  const result = await call('kiln/prompt', {
    sessionId: session.sessionId,
    prompt: [{ type: 'text', text: 'make the messages louder' }],
  });
  assert.equal(result.stopReason, 'end_turn', JSON.stringify(result));
  assert.equal(permissionRequests.length, 1);
  assert.equal(applied.length, 1, 'one applyEdit');

  // Only the accepted hunk reached the buffer, on top of the person's unsaved text.
  assert.ok(buffer.includes('const greeting /* unsaved */ = "HELLO";'), buffer);
  assert.ok(buffer.includes('"goodbye"'), `the rejected hunk stayed out: ${buffer}`);
  assert.equal(fs.readFileSync(file, 'utf8'), disk, 'the disk is untouched: the editor owns the buffer');
  const read = await conn.sendRequest(new RequestType('kiln/read'), { uri });
  assert.equal(read.text, buffer, "kiln's copy follows the editor");
  assert.deepEqual(read.identity, { kind: 'buffer', version });

  const kinds = updates.map((u) => u.update.sessionUpdate);
  assert.ok(kinds.includes('agent_message_chunk'), kinds.join());
  assert.ok(kinds.includes('tool_call'), kinds.join());
  const done = updates.find((u) => u.update.sessionUpdate === 'tool_call_update' && u.update.status === 'completed');
  assert.ok(done, `the edit completed: ${kinds.join()}`);
  assert.ok(updates.every((u) => u.sessionId === session.sessionId));

  // kiln/cancel while a command waits for approval ends the turn as cancelled.
  onCommand = async () => {
    await conn.sendRequest(new RequestType('kiln/cancel'), { sessionId: session.sessionId });
    return { outcome: { outcome: 'cancelled' } };
  };
  const stopped = await call('kiln/prompt', {
    sessionId: session.sessionId,
    prompt: [{ type: 'text', text: 'clean up the build folder' }],
  });
  assert.equal(stopped.stopReason, 'cancelled');
  assert.ok(fs.existsSync(path.join(ws, 'build', 'keep.txt')), 'the cancelled command did not run');

  const modes = await call('kiln/setMode', { sessionId: session.sessionId, modeId: 'ask' });
  assert.equal(modes.currentModeId, 'ask');
  assert.ok(updates.some((u) => u.update.sessionUpdate === 'current_mode_update' && u.update.currentModeId === 'ask'));
  await assert.rejects(
    conn.sendRequest(new RequestType('kiln/setMode'), { sessionId: session.sessionId, modeId: 'nope' }),
    /nope/,
  );
  const models = await call('kiln/listModels', { sessionId: session.sessionId });
  assert.equal(models.currentModelId, session.models.currentModelId);

  const listed = await call('kiln/listSessions', {});
  assert.ok(listed.sessions.some((s) => s.sessionId === session.sessionId), JSON.stringify(listed));
  const cps = await call('kiln/checkpoints', {});
  assert.ok(cps.checkpoints.length >= 1, JSON.stringify(cps));

  await assert.rejects(
    conn.sendRequest(new RequestType('kiln/prompt'), { sessionId: 'ses_missing', prompt: [{ type: 'text', text: 'x' }] }),
    /no session ses_missing/,
  );

  await conn.sendRequest(ShutdownRequest.type);
  conn.sendNotification(ExitNotification.type);

  // kiln/loadSession in a new process replays the conversation before it answers.
  const again = lspConnection(spawnKiln(['lsp']));
  const replayed = [];
  again.onNotification(new NotificationType('kiln/sessionUpdate'), (p) => replayed.push(p.update));
  again.onNotification('window/logMessage', () => {});
  again.onRequest('client/registerCapability', () => null);
  again.listen();
  await again.sendRequest(InitializeRequest.type, {
    processId: process.pid,
    rootUri: pathToFileURL(ws).href,
    capabilities: { experimental: { kiln: {} } },
  });
  again.sendNotification(InitializedNotification.type, {});
  const loaded = await again.sendRequest(new RequestType('kiln/loadSession'), { sessionId: session.sessionId });
  checkAgainst('kiln#/methods/kiln~1loadSession/result', loaded, 'kiln/loadSession result');
  assert.equal(loaded.sessionId, session.sessionId);
  const said = replayed.filter((u) => u.sessionUpdate === 'user_message_chunk').map((u) => u.content.text);
  assert.deepEqual(said, ['make the messages louder', 'clean up the build folder']);
  assert.ok(replayed.some((u) => u.sessionUpdate === 'tool_call' && u.kind === 'edit'));
  await again.sendRequest(ShutdownRequest.type);
  again.sendNotification(ExitNotification.type);
  clearTimeout(timer);
  assert.ok(nValidated > 10, `validated ${nValidated} messages`);
  console.log(`kiln/* over vscode-jsonrpc: session, prompt, updates, hunk subset, applyEdit: ok (${nValidated} messages valid)`);
}

main().catch(fail);
