#!/usr/bin/env python3
"""A scripted OpenAI-compatible model for tests/editors/helix/agent.sh (stdlib only).

    scripted_llm.py PORT_FILE LOG_FILE [LIFETIME_SECONDS]

Listens on 127.0.0.1 (a free port, written to PORT_FILE once it listens) and answers
POST /v1/chat/completions with an SSE stream, replaying the replies below in order:
  1. a tool call `edit` of src/app.js ("goodbye" -> "GOODBYE"), arguments in two fragments;
  2. the text "Made the farewell loud.".
Further requests get a short text reply. GET /v1/models lists the one model. Every request
is logged (one JSON line each) to LOG_FILE. The server exits by itself after LIFETIME_SECONDS
(default 120), so it never outlives a test whose cleanup did not run.
"""
import json
import re
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODEL = "scripted-coder"
EDIT_ARGS = json.dumps(
    {"path": "src/app.js", "old_string": '"goodbye"', "new_string": '"GOODBYE"'}
)


def chunk(delta, finish=None):
    body = {
        "id": "chatcmpl-scripted",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": MODEL,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return f"data: {json.dumps(body)}\n\n"


def usage_chunk(prompt, completion):
    body = {
        "id": "chatcmpl-scripted",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": MODEL,
        "choices": [],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        },
    }
    return f"data: {json.dumps(body)}\n\n"


def tool_call_reply():
    mid = len(EDIT_ARGS) // 2
    first = {
        "tool_calls": [
            {
                "index": 0,
                "id": "call_1",
                "type": "function",
                "function": {"name": "edit", "arguments": EDIT_ARGS[:mid]},
            }
        ]
    }
    second = {"tool_calls": [{"index": 0, "function": {"arguments": EDIT_ARGS[mid:]}}]}
    return [
        chunk({"role": "assistant", "content": None}),
        chunk(first),
        chunk(second),
        chunk({}, "tool_calls"),
        usage_chunk(150, 30),
        "data: [DONE]\n\n",
    ]


def text_reply(text):
    out = [chunk({"role": "assistant", "content": ""})]
    out += [chunk({"content": word}) for word in re.findall(r"\S+\s*", text)]
    out += [chunk({}, "stop"), usage_chunk(120, 12), "data: [DONE]\n\n"]
    return out


REPLIES = [tool_call_reply, lambda: text_reply("Made the farewell loud.")]
lock = threading.Lock()
served = 0


def log(entry):
    with lock, open(LOG_FILE, "a", encoding="utf-8") as f:
        f.write(json.dumps(entry) + "\n")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"  # one request per connection: the reply ends at close

    def log_message(self, fmt, *args):  # no stderr chatter
        pass

    def _json(self, status, obj):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        log({"method": "GET", "path": self.path})
        if self.path.rstrip("/").endswith("/models"):
            self._json(200, {"object": "list", "data": [{"id": MODEL, "object": "model"}]})
        else:
            self._json(404, {"error": {"message": f"no {self.path}"}})

    def do_POST(self):
        global served
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            request = json.loads(raw or b"null")
        except ValueError:
            request = None
        if not self.path.rstrip("/").endswith("/chat/completions"):
            log({"method": "POST", "path": self.path, "status": 404})
            self._json(404, {"error": {"message": f"no {self.path}"}})
            return
        with lock:
            n = served
            served += 1
        reply = REPLIES[n]() if n < len(REPLIES) else text_reply("Nothing more is scripted.")
        messages = (request or {}).get("messages") if isinstance(request, dict) else None
        log(
            {
                "method": "POST",
                "path": self.path,
                "reply": n + 1,
                "messages": len(messages or []),
                "last": (messages or [{}])[-1],
            }
        )
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        for piece in reply:
            self.wfile.write(piece.encode())
            self.wfile.flush()


if __name__ == "__main__":
    port_file, LOG_FILE = sys.argv[1], sys.argv[2]
    lifetime = float(sys.argv[3]) if len(sys.argv) > 3 else 120.0
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    tmp = port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(server.server_address[1]))
    os.replace(tmp, port_file)  # the port file appears whole
    threading.Timer(lifetime, server.shutdown).start()
    server.serve_forever(poll_interval=0.2)
    server.server_close()
