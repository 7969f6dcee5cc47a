// Protocol test of `kiln lsp` driven by vscode-jsonrpc, the JSON-RPC transport that VS Code's
// language client uses. Run it through run.sh (or `KILN_BIN=/path/to/kiln node lsp_client_test.mjs`).
//
// The checks run in order against one server process, because each depends on the state the
// previous ones left (initialized, a document open, ...). The first failure stops the run.
// Environment:
//   KILN_BIN        the kiln binary (required)
//   KILN_TEST_SEED  seed of the edit sequence in check (c) (default: fixed, so runs are repeatable)
//   KILN_TEST_EDITS number of didChange notifications in check (c) (default 1000)

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';

import {
  CancellationTokenSource,
  createMessageConnection,
  ErrorCodes,
  RequestType,
  ResponseError,
  StreamMessageReader,
  StreamMessageWriter,
} from 'vscode-jsonrpc/node.js';
import {
  DidChangeTextDocumentNotification,
  DidCloseTextDocumentNotification,
  DidOpenTextDocumentNotification,
  ExitNotification,
  InitializedNotification,
  InitializeRequest,
  LogMessageNotification,
  LSPErrorCodes,
  MessageType,
  RegistrationRequest,
  ShutdownRequest,
  TextDocumentSyncKind,
} from 'vscode-languageserver-protocol';

import { mulberry32 } from './lib.mjs';

const OVERALL_TIMEOUT_MS = 30_000;
const STEP_TIMEOUT_MS = 10_000;
const EDITS = Number.parseInt(process.env.KILN_TEST_EDITS ?? '1000', 10);
const SEED = Number.parseInt(process.env.KILN_TEST_SEED ?? '20240917', 10);

const KilnRead = new RequestType('kiln/read');
const KilnStatus = new RequestType('kiln/status');

// ---------------------------------------------------------------------------------------------
// Harness: named checks, a summary line, a hard timeout, kiln's stderr shown on failure.

const passed = [];
const ALL_CHECKS = [
  'a initialize',
  'b registerCapability',
  'c incremental sync',
  'd disk read',
  'e missing file',
  'f unknown method',
  'g cancellation',
  'h shutdown/exit',
];
const notes = [];
let child;
let stderrTail = '';

function finish(code, error) {
  const failed = ALL_CHECKS.length - passed.length;
  if (error) {
    console.error(`FAILED after [${passed.join(', ')}]:`);
    console.error(error && error.stack ? error.stack : String(error));
    if (stderrTail.trim()) {
      console.error('--- kiln stderr (tail) ---');
      console.error(stderrTail.trimEnd());
      console.error('--------------------------');
    }
  } else {
    console.log(`passed: ${passed.join('; ')}${notes.length ? ` (${notes.join('; ')})` : ''}`);
  }
  // The plain closing line CI reads.
  console.log(`vscode-jsonrpc: ${passed.length} passed, ${failed} failed`);
  if (child && child.exitCode === null && child.signalCode === null) {
    child.kill('SIGKILL');
  }
  process.exit(code);
}

const hardTimeout = setTimeout(() => {
  finish(1, new Error(`overall timeout: the test did not finish within ${OVERALL_TIMEOUT_MS} ms`));
}, OVERALL_TIMEOUT_MS);

function withTimeout(promise, what, ms = STEP_TIMEOUT_MS) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Awaits a promise that must reject; returns the rejection. */
async function rejection(promise, what) {
  try {
    const value = await withTimeout(promise, what);
    throw new assert.AssertionError({
      message: `${what}: expected an error response, got the result ${JSON.stringify(value)}`,
    });
  } catch (err) {
    if (err instanceof assert.AssertionError) throw err;
    return err;
  }
}

/** Like assert.equal for long strings, but reports where they first differ. */
function assertSameText(actual, expected, what) {
  if (actual === expected) return;
  let i = 0;
  while (i < actual.length && i < expected.length && actual[i] === expected[i]) i++;
  const ctx = (s) => JSON.stringify(s.slice(Math.max(0, i - 30), i + 30));
  throw new assert.AssertionError({
    message:
      `${what}: texts differ at UTF-16 offset ${i} ` +
      `(lengths: actual ${actual.length}, expected ${expected.length})\n` +
      `  actual:   ${ctx(actual)}\n  expected: ${ctx(expected)}`,
  });
}

// ---------------------------------------------------------------------------------------------
// The client-side text model. JS strings are UTF-16, the encoding this test negotiates, so an
// LSP character offset is a plain string index from the start of the line.

/** Offsets where each line starts; lines end at \r\n, \r or \n, as in LSP. */
function lineStarts(text) {
  const starts = [0];
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 13 /* \r */) {
      if (text.charCodeAt(i + 1) === 10) i++;
      starts.push(i + 1);
    } else if (c === 10 /* \n */) {
      starts.push(i + 1);
    }
  }
  return starts;
}

function positionAt(starts, offset) {
  let lo = 0;
  let hi = starts.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (starts[mid] <= offset) lo = mid;
    else hi = mid - 1;
  }
  return { line: lo, character: offset - starts[lo] };
}

function lineCount(text) {
  return lineStarts(text).length;
}

/** A position the protocol can name: not inside a surrogate pair nor inside a \r\n. */
function isBoundary(text, offset) {
  if (offset <= 0 || offset >= text.length) return true;
  const prev = text.charCodeAt(offset - 1);
  const next = text.charCodeAt(offset);
  if (prev >= 0xd800 && prev <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) return false;
  if (prev === 13 && next === 10) return false;
  return true;
}

/** End of the first line's content (before its line break), as an offset. */
function endOfFirstLine(text) {
  const m = /\r\n|\r|\n/.exec(text);
  return m ? m.index : text.length;
}


// Pieces that exercise every UTF-8 length (1-4 bytes), surrogate pairs in UTF-16, a ZWJ
// sequence and combining marks, all three LSP line breaks (a lone \r too, which can join
// with a following \n into one break), and characters that are NOT line breaks in LSP
// although Unicode calls some of them so (U+2028, U+2029, NEL, VT, FF), plus NUL and a BOM.
const PIECES = [
  'a', 'Z', ' ', '.', 'é', 'ß', 'ñ', 'Ω', '中', '文', '字', 'あ', '한', '€',
  '😀', '🎉', '🧪', '𝄞', '👩‍💻', 'e\u0301', '\t', 'x😀y',
  '\r\n', '\n', '\r\n', '\n', '\r',
  '\u2028', '\u2029', '\u0085', '\u000b', '\u000c', '\u0000', '\ufeff',
];

// ---------------------------------------------------------------------------------------------

async function main() {
  const kilnBin = process.env.KILN_BIN;
  if (!kilnBin) throw new Error('KILN_BIN is not set: point it at the kiln binary');
  if (!fs.existsSync(kilnBin)) throw new Error(`KILN_BIN=${kilnBin} does not exist`);

  // A workspace with a file that will be opened (its disk text differs from the buffer's),
  // a closed file whose name needs percent-encoding, and a large file for cancellation.
  const root = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-node-client-')));
  process.on('exit', () => fs.rmSync(root, { recursive: true, force: true }));
  const rootUri = pathToFileURL(root).href;
  const bufferPath = path.join(root, 'buffer.txt');
  const bufferUri = pathToFileURL(bufferPath).href;
  const bufferDiskText = 'on disk, not the buffer: 磁盘 💾\r\n';
  fs.writeFileSync(bufferPath, bufferDiskText);
  const diskPath = path.join(root, 'closed file ü 文件.txt');
  const diskUri = pathToFileURL(diskPath).href;
  const diskText = 'closed file\r\n中文 mixed with émoji 🎉👩‍💻\nno newline at end 𝄞';
  fs.writeFileSync(diskPath, diskText);
  const bigPath = path.join(root, 'big.txt');
  const bigUri = pathToFileURL(bigPath).href;
  fs.writeFileSync(bigPath, '大きいファイル 😀 line\n'.repeat(100_000)); // ~3 MB
  const missingUri = pathToFileURL(path.join(root, 'does-not-exist.txt')).href;

  child = spawn(kilnBin, ['lsp'], { stdio: ['pipe', 'pipe', 'pipe'], cwd: root });
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk) => {
    stderrTail = (stderrTail + chunk).slice(-16_384);
  });
  const childExit = new Promise((resolve) => {
    child.on('exit', (code, signal) => resolve({ code, signal }));
  });
  let expectingExit = false;
  childExit.then(({ code, signal }) => {
    if (!expectingExit) {
      finish(1, new Error(`kiln exited unexpectedly (code ${code}, signal ${signal})`));
    }
  });
  child.on('error', (err) => finish(1, new Error(`cannot start ${kilnBin}: ${err.message}`)));
  child.stdin.on('error', () => {}); // EPIPE after exit is reported through childExit instead.

  const connection = createMessageConnection(
    new StreamMessageReader(child.stdout),
    new StreamMessageWriter(child.stdin),
  );
  const registrations = [];
  let onRegistered;
  const registered = new Promise((resolve) => (onRegistered = resolve));
  connection.onRequest(RegistrationRequest.type, (params) => {
    registrations.push(params);
    onRegistered(params);
    return null;
  });
  const logMessages = [];
  connection.onNotification(LogMessageNotification.type, (params) => logMessages.push(params));
  const otherNotifications = [];
  connection.onUnhandledNotification((msg) => otherNotifications.push(msg.method));
  connection.onError(([err]) => {
    if (!expectingExit) finish(1, new Error(`connection error: ${err && err.message}`));
  });
  connection.listen();

  const errorLogs = () => logMessages.filter((m) => m.type === MessageType.Error);
  const assertNoErrorLogs = (when) =>
    assert.deepEqual(errorLogs(), [], `kiln reported errors through window/logMessage ${when}`);

  // (a) initialize --------------------------------------------------------------------------
  const init = await withTimeout(
    connection.sendRequest(InitializeRequest.type, {
      processId: process.pid,
      clientInfo: { name: 'kiln-node-client-test', version: '0' },
      locale: 'en',
      rootUri,
      workspaceFolders: [{ uri: rootUri, name: path.basename(root) }],
      capabilities: {
        general: { positionEncodings: ['utf-16'] },
        workspace: {
          workspaceFolders: true,
          didChangeWatchedFiles: { dynamicRegistration: true, relativePatternSupport: true },
        },
        textDocument: {
          synchronization: { dynamicRegistration: false, didSave: true },
        },
      },
    }),
    'initialize',
  );
  assert.equal(init.serverInfo?.name, 'kiln');
  assert.equal(typeof init.serverInfo.version, 'string');
  assert.ok(init.serverInfo.version.length > 0, 'serverInfo.version is empty');
  const caps = init.capabilities;
  assert.equal(caps.positionEncoding, 'utf-16');
  assert.deepEqual(caps.textDocumentSync, {
    openClose: true,
    change: TextDocumentSyncKind.Incremental,
    save: { includeText: false },
  });
  assert.equal(caps.workspace?.workspaceFolders?.supported, true);
  assert.ok(Array.isArray(caps.experimental?.kiln?.methods), 'experimental.kiln.methods missing');
  for (const m of ['kiln/read', 'kiln/status']) {
    assert.ok(caps.experimental.kiln.methods.includes(m), `experimental.kiln.methods lacks ${m}`);
  }
  passed.push(`a initialize (kiln ${init.serverInfo.version}, utf-16)`);

  // (b) initialized → client/registerCapability ----------------------------------------------
  await connection.sendNotification(InitializedNotification.type, {});
  await withTimeout(registered, 'client/registerCapability after initialized');
  assert.equal(registrations.length, 1, 'expected exactly one registerCapability request');
  const regs = registrations[0].registrations;
  assert.equal(regs.length, 1);
  assert.equal(regs[0].method, 'workspace/didChangeWatchedFiles');
  assert.equal(typeof regs[0].id, 'string');
  assert.deepEqual(regs[0].registerOptions?.watchers?.map((w) => w.globPattern), ['**/*']);
  const status0 = await withTimeout(connection.sendRequest(KilnStatus, {}), 'kiln/status');
  assert.equal(status0.version, init.serverInfo.version);
  assert.equal(status0.positionEncoding, 'utf-16');
  assert.equal(status0.watching, 'client');
  assert.deepEqual(status0.roots, [root]);
  assert.deepEqual(status0.openDocuments, []);
  passed.push('b registerCapability(**/*)');

  // (c) didOpen + pipelined incremental didChange -------------------------------------------
  // A few kilobytes, so the server's rope has several chunks and edits land on their seams.
  const endings = ['\r\n', '\n', '\r\n', '\r'];
  let model = 'héllo 世界 🎉 first line\r\n第二行 😀 second\r\nthird 🧪 ñ\n';
  for (let i = 0; i < 120; i++) model += `line ${i}: 中文 ${'😀'.repeat(i % 4)} é${endings[i % 4]}`;
  model += 'CRLF and LF mixed 𝄞\r\n\r\nlast';
  let version = 1;
  await connection.sendNotification(DidOpenTextDocumentNotification.type, {
    textDocument: { uri: bufferUri, languageId: 'plaintext', version, text: model },
  });
  const random = mulberry32(SEED);
  const pick = (arr) => arr[Math.floor(random() * arr.length)];
  const randomText = () => {
    let s = '';
    const n = Math.floor(random() * 4);
    for (let i = 0; i < n; i++) s += pick(PIECES);
    return s;
  };
  const randomBoundary = (text) => {
    let o = Math.floor(random() * (text.length + 1));
    while (!isBoundary(text, o)) o++;
    return o;
  };
  /** Applies one edit to `model` and returns the content change that describes it. */
  const edit = (start, end, text) => {
    const starts = lineStarts(model);
    const change = {
      range: { start: positionAt(starts, start), end: positionAt(starts, end) },
      text,
    };
    model = model.slice(0, start) + text + model.slice(end);
    return change;
  };
  const appendToFirstLine = () => {
    const at = endOfFirstLine(model);
    return edit(at, at, pick(PIECES.filter((p) => !/[\r\n]/.test(p))));
  };
  const replaceSomewhere = () => {
    const start = randomBoundary(model);
    // Shrink when the document has grown, so it stays a few thousand code units long.
    const maxDelete = model.length > 6000 ? 40 : 6;
    let end = Math.min(model.length, start + Math.floor(random() * (maxDelete + 1)));
    while (!isBoundary(model, end)) end++;
    return edit(start, end, randomText());
  };
  const kinds = { append: 0, replace: 0, multi: 0 };
  const writes = [];
  for (let i = 0; i < EDITS; i++) {
    const r = random();
    let contentChanges;
    if (r < 0.5) {
      contentChanges = [appendToFirstLine()];
      kinds.append++;
    } else if (r < 0.85) {
      contentChanges = [replaceSomewhere()];
      kinds.replace++;
    } else {
      // Several changes in one notification apply in order, each to the previous result.
      contentChanges = [appendToFirstLine(), replaceSomewhere(), replaceSomewhere()];
      kinds.multi++;
    }
    version++;
    // Not awaited: all notifications are queued back to back, as an editor does while typing.
    writes.push(
      connection.sendNotification(DidChangeTextDocumentNotification.type, {
        textDocument: { uri: bufferUri, version },
        contentChanges,
      }),
    );
  }
  const read = await withTimeout(
    connection.sendRequest(KilnRead, { uri: bufferUri }),
    'kiln/read of the edited buffer',
  );
  await Promise.all(writes);
  assertNoErrorLogs('while applying the edits');
  assert.equal(read.uri, bufferUri);
  assert.deepEqual(read.identity, { kind: 'buffer', version });
  assert.equal(read.languageId, 'plaintext');
  assertSameText(read.text, model, `kiln/read after ${EDITS} didChange (seed ${SEED})`);
  const status1 = await withTimeout(connection.sendRequest(KilnStatus, {}), 'kiln/status');
  assert.deepEqual(status1.openDocuments, [
    {
      uri: bufferUri,
      version,
      languageId: 'plaintext',
      lineCount: lineCount(model),
      byteLength: Buffer.byteLength(model, 'utf8'),
    },
  ]);
  // After didClose the same URI reads from disk again.
  await connection.sendNotification(DidCloseTextDocumentNotification.type, {
    textDocument: { uri: bufferUri },
  });
  const afterClose = await withTimeout(
    connection.sendRequest(KilnRead, { uri: bufferUri }),
    'kiln/read after didClose',
  );
  assert.equal(afterClose.identity.kind, 'disk');
  assert.equal(afterClose.text, bufferDiskText);
  passed.push(
    `c ${EDITS} pipelined didChange (append ${kinds.append}, replace ${kinds.replace}, ` +
      `multi ${kinds.multi}; ${model.length} UTF-16 units, ${lineCount(model)} lines) → v${version}`,
  );

  // (d) kiln/read of a closed file on disk --------------------------------------------------
  const disk = await withTimeout(
    connection.sendRequest(KilnRead, { uri: diskUri }),
    'kiln/read of a closed file',
  );
  assert.equal(disk.uri, diskUri);
  assert.equal(disk.identity.kind, 'disk');
  assert.match(disk.identity.hash, /^[0-9a-f]{16}$/);
  assert.equal(disk.identity.length, Buffer.byteLength(diskText, 'utf8'));
  assert.equal(disk.text, diskText);
  assert.equal(disk.languageId, undefined);
  // Same bytes, same hash.
  const diskAgain = await withTimeout(connection.sendRequest(KilnRead, { uri: diskUri }), 'kiln/read');
  assert.deepEqual(diskAgain.identity, disk.identity);
  passed.push('d disk read (percent-encoded URI)');

  // (e) kiln/read of a missing file -----------------------------------------------------------
  const missing = await rejection(
    connection.sendRequest(KilnRead, { uri: missingUri }),
    'kiln/read of a missing file',
  );
  assert.ok(missing instanceof ResponseError, `expected a ResponseError, got ${missing}`);
  assert.ok(
    missing.message.startsWith('file not found'),
    `message should start with "file not found": ${JSON.stringify(missing.message)}`,
  );
  assert.equal(missing.code, LSPErrorCodes.RequestFailed);
  passed.push('e missing file → -32803 "file not found"');

  // (f) unknown method ---------------------------------------------------------------------------
  const unknown = await rejection(
    connection.sendRequest('kiln/noSuchMethod', {}),
    'an unknown request',
  );
  assert.ok(unknown instanceof ResponseError, `expected a ResponseError, got ${unknown}`);
  assert.equal(unknown.code, ErrorCodes.MethodNotFound);
  passed.push('f unknown method → -32601');

  // (g) cancellation ---------------------------------------------------------------------------
  // Whether the answer or the cancellation wins is a race; either is correct, but the request
  // must settle, and with a correct result when it is a result.
  const outcomes = { result: 0, cancelled: 0 };
  const cancelled = async (uri, expectedText, when) => {
    const source = new CancellationTokenSource();
    if (when === 'before') source.cancel();
    const pending = connection.sendRequest(KilnRead, { uri }, source.token);
    if (when === 'after') source.cancel();
    if (when === 'tick') setImmediate(() => source.cancel());
    try {
      const result = await withTimeout(pending, `cancelled kiln/read (${when})`);
      assert.equal(result.text, expectedText, 'a cancelled request answered with a wrong text');
      outcomes.result++;
    } catch (err) {
      if (!(err instanceof ResponseError)) throw err;
      assert.equal(err.code, LSPErrorCodes.RequestCancelled, `unexpected error ${err.code} ${err.message}`);
      outcomes.cancelled++;
    }
  };
  const bigText = fs.readFileSync(bigPath, 'utf8');
  for (const when of ['before', 'after', 'tick']) {
    await cancelled(diskUri, diskText, when);
    await cancelled(bigUri, bigText, when);
  }
  // Several at once, cancelled together.
  await Promise.all(Array.from({ length: 8 }, (_, i) => cancelled(i % 2 ? bigUri : diskUri, i % 2 ? bigText : diskText, 'after')));
  // The server still answers.
  const status2 = await withTimeout(connection.sendRequest(KilnStatus, {}), 'kiln/status after cancellation');
  assert.equal(status2.version, init.serverInfo.version);
  const stillReads = await withTimeout(connection.sendRequest(KilnRead, { uri: diskUri }), 'kiln/read after cancellation');
  assert.equal(stillReads.text, diskText);
  passed.push(`g cancellation (${outcomes.result} answered, ${outcomes.cancelled} cancelled)`);

  // (h) shutdown + exit ------------------------------------------------------------------------
  assertNoErrorLogs('during the session');
  const shutdown = await withTimeout(connection.sendRequest(ShutdownRequest.type), 'shutdown');
  assert.equal(shutdown, null);
  expectingExit = true;
  await connection.sendNotification(ExitNotification.type);
  const { code, signal } = await withTimeout(childExit, 'kiln to exit after exit');
  assert.equal(signal, null, `kiln was killed by ${signal}`);
  assert.equal(code, 0, 'exit after shutdown must give exit code 0');
  connection.dispose();
  passed.push('h shutdown+exit → 0');

  if (logMessages.length) notes.push(`${logMessages.length} logMessage(s)`);
  if (otherNotifications.length) notes.push(`other notifications: ${[...new Set(otherNotifications)].join(',')}`);
}

main().then(
  () => {
    clearTimeout(hardTimeout);
    finish(0);
  },
  (err) => finish(1, err),
);
