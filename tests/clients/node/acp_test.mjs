// `kiln acp` driven by the official ACP SDK (@agentclientprotocol/sdk) as the client, the
// way Zed drives an agent. Started by tests/it/editor_agents.rs, which scripts the model:
//   1. an `edit` of src/app.js ("hello" → "HELLO"), 2. a closing text,
//   3. a `bash` call (`rm -rf build`) that the test cancels while it waits for permission.
// The client keeps an unsaved buffer of src/app.js and serves fs/read_text_file and
// fs/write_text_file from it. Every message kiln sends is validated against the
// schema/v1/schema.json the SDK ships (the SDK itself does not validate responses).
//
// Environment: KILN_BIN, KILN_WORKSPACE; provider and data-dir variables from the Rust test.

import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PassThrough, Readable, Writable } from 'node:stream';

import * as acp from '@agentclientprotocol/sdk';
import Ajv2020 from 'ajv/dist/2020.js';

import { deadline, failWith, spawnKiln, waitFor } from './lib.mjs';

const TIMEOUT_MS = 40_000;
const ws = process.env.KILN_WORKSPACE;
assert.ok(ws, 'KILN_WORKSPACE is not set');
const file = path.join(ws, 'src', 'app.js');
const disk = fs.readFileSync(file, 'utf8');

// ---------------------------------------------------------------------------------------
// Schema validation of everything kiln sends.

const schemaPath = path.join(path.dirname(new URL(import.meta.url).pathname), 'node_modules/@agentclientprotocol/sdk/schema/v1/schema.json');
const schema = JSON.parse(fs.readFileSync(schemaPath, 'utf8'));
const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: false });
ajv.addSchema(schema, 'acp');
const def = (name) => {
  assert.ok(schema.$defs[name], `the SDK's schema has ${name}`);
  return ajv.getSchema(`acp#/$defs/${name}`);
};
const RESULT_DEF = {
  initialize: 'InitializeResponse',
  'session/new': 'NewSessionResponse',
  'session/load': 'LoadSessionResponse',
  'session/list': 'ListSessionsResponse',
  'session/prompt': 'PromptResponse',
  'session/set_mode': 'SetSessionModeResponse',
  'session/set_config_option': 'SetSessionConfigOptionResponse',
};
const PARAMS_DEF = {
  'session/update': 'SessionNotification',
  'session/request_permission': 'RequestPermissionRequest',
  'fs/read_text_file': 'ReadTextFileRequest',
  'fs/write_text_file': 'WriteTextFileRequest',
  // Sent when a cancelled turn drops its pending permission request.
  '$/cancel_request': 'CancelRequestNotification',
};
const sentByClient = new Map(); // id → method
const validated = { messages: 0, byMethod: {} };

function validate(msg, methodOfResponse) {
  let name;
  let value;
  let method;
  if (msg.method) {
    method = msg.method;
    name = PARAMS_DEF[msg.method];
    value = msg.params;
    assert.ok(name, `kiln sent ${msg.method}, which this client does not know`);
  } else {
    method = methodOfResponse;
    if (msg.error) return; // errors are checked by the steps that expect them
    name = RESULT_DEF[method];
    value = msg.result;
    assert.ok(name, `a response to ${method}`);
  }
  const check = def(name);
  if (!check(value)) {
    throw new Error(`kiln's ${method} (${name}) does not match the ACP schema: ${ajv.errorsText(check.errors)}\n${JSON.stringify(value)}`);
  }
  validated.messages += 1;
  validated.byMethod[method] = (validated.byMethod[method] ?? 0) + 1;
}

function lines(onLine) {
  let buf = '';
  return (chunk) => {
    buf += chunk.toString('utf8');
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i).trim();
      buf = buf.slice(i + 1);
      if (line) onLine(JSON.parse(line));
    }
  };
}

// ---------------------------------------------------------------------------------------
// A kiln acp process with its stdio tapped.

const fail = failWith();
const timer = deadline(TIMEOUT_MS, fail);

function startKiln() {
  const child = spawnKiln(['acp']);
  const toKiln = new PassThrough();
  toKiln.on('data', lines((m) => { if (m.method && m.id !== undefined) sentByClient.set(m.id, m.method); }));
  toKiln.pipe(child.stdin);
  const fromKiln = new PassThrough();
  child.stdout.on('data', lines((m) => {
    try {
      validate(m, m.method ? undefined : sentByClient.get(m.id));
    } catch (e) {
      fail(e);
    }
  }));
  child.stdout.pipe(fromKiln);
  return { child, stream: acp.ndJsonStream(Writable.toWeb(toKiln), Readable.toWeb(fromKiln)) };
}

// ---------------------------------------------------------------------------------------
// The editor's state.

let buffer = disk.replace('const greeting', 'const greeting /* unsaved */');
const updates = [];
const reads = [];
const writes = [];
const permissions = [];
let onPermission = null;

function clientApp() {
  return acp
    .client({ name: 'kiln-acp-test' })
    .onNotification(acp.methods.client.session.update, ({ params }) => { updates.push(params); })
    .onRequest(acp.methods.client.session.requestPermission, async ({ params }) => {
      permissions.push(params);
      return onPermission(params);
    })
    .onRequest(acp.methods.client.fs.readTextFile, async ({ params }) => {
      reads.push(params.path);
      if (params.path === file) return { content: buffer };
      return { content: fs.readFileSync(params.path, 'utf8') };
    })
    .onRequest(acp.methods.client.fs.writeTextFile, async ({ params }) => {
      writes.push(params);
      if (params.path === file) buffer = params.content;
      else fs.writeFileSync(params.path, params.content);
      return {};
    });
}


async function main() {
  const first = startKiln();
  let sessionId;
  await clientApp().connectWith(first.stream, async (agent) => {
    const init = await agent.request(acp.methods.agent.initialize, {
      protocolVersion: acp.PROTOCOL_VERSION,
      clientCapabilities: { fs: { readTextFile: true, writeTextFile: true }, terminal: false },
    });
    assert.equal(init.protocolVersion, 1);
    assert.equal(init.agentCapabilities.loadSession, true);
    assert.deepEqual(init.authMethods, []);
    assert.equal(init.agentCapabilities.promptCapabilities.embeddedContext, true);

    const session = await agent.request(acp.methods.agent.session.new, { cwd: ws, mcpServers: [] });
    sessionId = session.sessionId;
    assert.equal(session.modes.currentModeId, 'code');
    const ids = session.configOptions.map((o) => o.id);
    assert.deepEqual(ids, ['mode', 'model']);
    const commands = await waitFor('available_commands_update', () =>
      updates.find((u) => u.update.sessionUpdate === 'available_commands_update'));
    assert.deepEqual(commands.update.availableCommands.map((c) => c.name), ['undo', 'checkpoints', 'mode']);

    // 1. initialize → new → prompt → permission → fs/write_text_file → end_turn
    onPermission = (p) => {
      assert.deepEqual(p.options.map((o) => o.kind).sort(), ['allow_always', 'allow_once', 'reject_always', 'reject_once']);
      const diff = p.toolCall.content.find((c) => c.type === 'diff');
      assert.ok(diff, 'the edit carries a diff');
      assert.equal(diff.path, file);
      assert.ok(diff._meta.kiln.hunks.length === 1, JSON.stringify(diff._meta));
      return { outcome: { outcome: 'selected', optionId: 'allow_once' } };
    };
    const done = await agent.request(acp.methods.agent.session.prompt, {
      sessionId,
      prompt: [{ type: 'text', text: 'make the greeting louder' }],
    });
    assert.equal(done.stopReason, 'end_turn');
    assert.ok(reads.includes(file), `kiln read the file through the client: ${reads}`);
    assert.equal(writes.length, 1, 'one fs/write_text_file');
    assert.equal(writes[0].sessionId, sessionId);
    assert.ok(buffer.includes('const greeting /* unsaved */ = "HELLO";'), `the write built on the unsaved buffer: ${buffer}`);
    assert.equal(fs.readFileSync(file, 'utf8'), disk, 'kiln wrote through the client, not behind its back');
    const call = updates.find((u) => u.update.sessionUpdate === 'tool_call');
    assert.equal(call.update.kind, 'edit');
    assert.equal(call.update.locations[0].path, file);
    assert.ok(updates.some((u) => u.update.sessionUpdate === 'tool_call_update' && u.update.status === 'completed'));
    assert.ok(updates.some((u) => u.update.sessionUpdate === 'agent_message_chunk'));

    // 2. cancel during a permission request
    let cancelled = false;
    onPermission = async (p) => {
      assert.equal(p.toolCall.kind, 'execute');
      await agent.notify(acp.methods.agent.session.cancel, { sessionId });
      cancelled = true;
      return { outcome: { outcome: 'cancelled' } };
    };
    const stopped = await agent.request(acp.methods.agent.session.prompt, {
      sessionId,
      prompt: [{ type: 'text', text: 'clean the build folder' }],
    });
    assert.ok(cancelled, 'the permission request arrived');
    assert.equal(stopped.stopReason, 'cancelled');
    assert.ok(fs.existsSync(path.join(ws, 'build', 'keep.txt')), 'the cancelled command did not run');

    // 3. modes, config options, slash commands, list
    const before = updates.length;
    await agent.request(acp.methods.agent.session.setMode, { sessionId, modeId: 'ask' });
    await waitFor('current_mode_update', () =>
      updates.slice(before).find((u) => u.update.sessionUpdate === 'current_mode_update' && u.update.currentModeId === 'ask'));
    const set = await agent.request(acp.methods.agent.session.setConfigOption, { sessionId, configId: 'mode', value: 'code' });
    assert.equal(set.configOptions.find((o) => o.id === 'mode').currentValue, 'code');
    await assert.rejects(
      agent.request(acp.methods.agent.session.setConfigOption, { sessionId, configId: 'model', value: 'nonsense' }),
    );
    const slash = await agent.request(acp.methods.agent.session.prompt, {
      sessionId,
      prompt: [{ type: 'text', text: '/checkpoints' }],
    });
    assert.equal(slash.stopReason, 'end_turn');
    const listed = updates.filter((u) => u.update.sessionUpdate === 'agent_message_chunk').map((u) => u.update.content.text).join('');
    assert.match(listed, /before-turn/);
    const sessions = await agent.request(acp.methods.agent.session.list, { cwd: ws });
    assert.ok(sessions.sessions.some((s) => s.sessionId === sessionId), JSON.stringify(sessions));
  });
  first.child.stdin.end();

  // 4. session/load in a new process replays the history before it answers.
  updates.length = 0;
  const second = startKiln();
  await clientApp().connectWith(second.stream, async (agent) => {
    await agent.request(acp.methods.agent.initialize, {
      protocolVersion: acp.PROTOCOL_VERSION,
      clientCapabilities: { fs: { readTextFile: true, writeTextFile: true } },
    });
    const loaded = await agent.request(acp.methods.agent.session.load, { sessionId, cwd: ws, mcpServers: [] });
    assert.ok(loaded.modes, 'modes come with the loaded session');
    const users = updates.filter((u) => u.update.sessionUpdate === 'user_message_chunk').map((u) => u.update.content.text);
    assert.ok(users.includes('make the greeting louder'), `replayed: ${users}`);
    assert.ok(updates.some((u) => u.update.sessionUpdate === 'tool_call' && u.update.kind === 'edit'));
  });
  second.child.stdin.end();

  for (const m of ['initialize', 'session/new', 'session/prompt', 'session/update', 'session/request_permission', 'fs/read_text_file', 'fs/write_text_file', 'session/load', 'session/list', 'session/set_config_option']) {
    assert.ok(validated.byMethod[m] > 0, `validated at least one ${m}: ${JSON.stringify(validated.byMethod)}`);
  }
  clearTimeout(timer);
  console.log(`kiln acp with @agentclientprotocol/sdk: ok; ${validated.messages} messages valid against schema/v1/schema.json`);
}

main().catch(fail);
