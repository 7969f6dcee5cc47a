#!/usr/bin/env python3
"""Whole-process benchmarks of the real `kiln` binary, each printed with its command and,
where there is a reference, the ratio against it measured in the same run.

  python3 benches/compare.py            # builds target/release/kiln first
  python3 benches/compare.py --quick    # smaller inputs, fewer runs

Measures: didChange throughput over stdio and request latency after a burst; spawn →
`initialize` answered; idle RSS and RSS with 1,000 open documents; `kiln diff` against
`git diff --no-index --histogram` on the same files.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KILN = os.path.join(ROOT, "target", "release", "kiln")


def frame(obj):
    body = json.dumps(obj, separators=(",", ":")).encode()
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


class Server:
    """`kiln lsp` over pipes, with a reader thread that collects responses by id."""

    def __init__(self):
        self.proc = subprocess.Popen(
            [KILN, "lsp"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            env=dict(os.environ, KILN_LOG_LEVEL="error"),
        )
        self.responses = {}
        self.cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()
        self.next_id = 1

    def _read(self):
        out = self.proc.stdout
        while True:
            header = b""
            while not header.endswith(b"\r\n\r\n"):
                byte = out.read(1)
                if not byte:
                    return
                header += byte
            length = int(header.split(b":")[1].split(b"\r")[0])
            msg = json.loads(out.read(length))
            if "id" in msg and "method" not in msg:
                with self.cond:
                    self.responses[msg["id"]] = (time.perf_counter(), msg)
                    self.cond.notify_all()

    def send(self, data):
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def request_bytes(self, method, params):
        rid = self.next_id
        self.next_id += 1
        return rid, frame({"jsonrpc": "2.0", "id": rid, "method": method, "params": params})

    def wait(self, rid, timeout=60):
        with self.cond:
            ok = self.cond.wait_for(lambda: rid in self.responses, timeout)
            if not ok:
                raise RuntimeError("no response to request %d" % rid)
            return self.responses.pop(rid)

    def request(self, method, params):
        rid, data = self.request_bytes(method, params)
        self.send(data)
        return self.wait(rid)[1]

    def initialize(self):
        self.request("initialize", {"capabilities": {}, "processId": None, "rootUri": None})
        self.send(frame({"jsonrpc": "2.0", "method": "initialized", "params": {}}))

    def rss_kb(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return -1

    def close(self):
        self.request("shutdown", None)
        self.send(frame({"jsonrpc": "2.0", "method": "exit"}))
        self.proc.wait(10)


def did_change_frames(uri, n, first_version):
    frames = []
    for i in range(n):
        col = i % 80
        frames.append(frame({
            "jsonrpc": "2.0", "method": "textDocument/didChange",
            "params": {
                "textDocument": {"uri": uri, "version": first_version + i},
                "contentChanges": [{"range": {"start": {"line": i % 1000, "character": col},
                                              "end": {"line": i % 1000, "character": col}}, "text": "x"}],
            },
        }))
    return b"".join(frames)


def bench_did_change(n):
    server = Server()
    server.initialize()
    uri = "file:///bench/doc.rs"
    text = "".join("line %d of the benchmark document, with some text\n" % i for i in range(1000))
    server.send(frame({"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {
        "textDocument": {"uri": uri, "languageId": "rust", "version": 0, "text": text}}}))
    server.request("kiln/status", {})

    # Sustained throughput: n notifications written as fast as the pipe takes them, then a
    # request; the clock stops when it is answered (so every change has been applied).
    burst = did_change_frames(uri, n, 1)
    rid, req = server.request_bytes("kiln/read", {"uri": uri})
    t0 = time.perf_counter()
    server.send(burst + req)
    t1, _ = server.wait(rid)
    rate = n / (t1 - t0)

    # Latency after a burst of 10,000: time from the last byte of burst + request written to
    # the answer, and the latency of a request once the server has caught up.
    burst = did_change_frames(uri, 10_000, n + 1)
    rid, req = server.request_bytes("kiln/status", {})
    server.send(burst)
    t_sent = time.perf_counter()
    server.send(req)
    t_answer, _ = server.wait(rid)
    after_burst_ms = (t_answer - t_sent) * 1000
    lat = []
    for _ in range(200):
        rid, req = server.request_bytes("kiln/status", {})
        t = time.perf_counter()
        server.send(req)
        t_answer, _ = server.wait(rid)
        lat.append((t_answer - t) * 1000)
    server.close()
    return rate, after_burst_ms, statistics.median(lat)


def bench_startup(runs):
    times = []
    idle = []
    for _ in range(runs):
        t = time.perf_counter()
        server = Server()
        server.request("initialize", {"capabilities": {}, "processId": None, "rootUri": None})
        times.append((time.perf_counter() - t) * 1000)
        server.send(frame({"jsonrpc": "2.0", "method": "initialized", "params": {}}))
        time.sleep(0.05)
        idle.append(server.rss_kb())
        server.close()
    return statistics.median(times), statistics.median(idle)


def bench_memory(n_docs, doc_bytes):
    server = Server()
    server.initialize()
    line = "    let value = compute(input, &config)?; // 日本語 😀\n"
    text = (line * (doc_bytes // len(line.encode()) + 1))
    text = text.encode()[:doc_bytes].decode("utf-8", "ignore")
    total = 0
    for i in range(n_docs):
        server.send(frame({"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {
            "textDocument": {"uri": "file:///bench/f%d.rs" % i, "languageId": "rust", "version": 1, "text": text}}}))
        total += len(text.encode())
    server.request("kiln/status", {})
    rss = server.rss_kb() * 1024
    server.close()
    return total, rss


def timed(cmd, runs):
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def write_pair(directory, name, n_lines, changed_every, different=False):
    old = os.path.join(directory, name + ".old")
    new = os.path.join(directory, name + ".new")
    with open(old, "w") as fo, open(new, "w") as fn:
        for i in range(n_lines):
            if different:
                fo.write("old content line %d %d\n" % (i, i * 7919 % 10007))
                fn.write("new content row %d %d\n" % (i, i * 104729 % 10009))
                continue
            base = "    let value_%d = compute(input_%d, &config)?;\n" % (i, i % 97)
            fo.write(base)
            if changed_every and i % changed_every == changed_every // 2:
                fn.write("    let value_%d = compute_changed(input_%d, &config)?;\n" % (i, i % 97))
            else:
                fn.write(base)
    return old, new


def bench_diff(quick):
    rows = []
    with tempfile.TemporaryDirectory() as d:
        cases = [
            ("20,000 lines, 200 changed", 20_000, 100, False, 20 if not quick else 5),
            # git's histogram is quadratic in the number of scattered changes here (over a
            # minute), so this case runs once.
            ("1,000,000 lines, 1% changed", 1_000_000 if not quick else 200_000, 100, False, 1),
            ("50,000 lines, completely different", 50_000, 0, True, 7 if not quick else 3),
        ]
        for label, n, every, different, runs in cases:
            old, new = write_pair(d, label.split()[0].replace(",", ""), n, every, different)
            kiln_cmd = [KILN, "diff", "--color", "never", old, new]
            git_cmd = ["git", "diff", "--no-index", "--histogram", "--no-color", old, new]
            # Warm the page cache, then alternate so both see the same machine state.
            timed(kiln_cmd, 1)
            t_kiln = timed(kiln_cmd, runs)
            t_git = timed(git_cmd, runs)
            t_myers = timed(git_cmd[:3] + git_cmd[4:], runs)
            rows.append((label, t_kiln, t_git, t_myers))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller inputs and fewer runs")
    parser.add_argument("--no-build", action="store_true", help="use the existing target/release/kiln")
    args = parser.parse_args()
    if not args.no_build:
        subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)

    print("kiln benchmarks (%s)\n" % subprocess.run([KILN, "--version"], capture_output=True, text=True).stdout.strip())

    n = 30_000 if args.quick else 100_000
    rate, after_burst_ms, idle_latency_ms = bench_did_change(n)
    print("didChange over stdio   %8.0f notifications/s  (target >= 30,000: %s)  [%d incremental edits, then kiln/read]"
          % (rate, "met" if rate >= 30_000 else "NOT met", n))
    print("request after 10k burst %7.2f ms from the last byte written (includes applying the burst)" % after_burst_ms)
    print("request once caught up  %7.3f ms median over 200 kiln/status (target < 5 ms: %s)"
          % (idle_latency_ms, "met" if idle_latency_ms < 5 else "NOT met"))

    startup_ms, idle_kb = bench_startup(10 if args.quick else 30)
    print("spawn -> initialize     %7.2f ms median (target < 15 ms: %s)  [kiln lsp, initialize]"
          % (startup_ms, "met" if startup_ms < 15 else "NOT met"))
    print("idle RSS                %7.1f MB (target < 10 MB: %s)"
          % (idle_kb / 1024, "met" if idle_kb < 10 * 1024 else "NOT met"))

    n_docs = 200 if args.quick else 1000
    total, rss = bench_memory(n_docs, 50_000)
    print("RSS with %d docs        %7.1f MB for %.1f MB of text: %.2fx (target < 2x: %s)"
          % (n_docs, rss / 2**20, total / 2**20, rss / total, "met" if rss < 2 * total else "NOT met"))

    print()
    print("kiln diff OLD NEW  vs  git diff --no-index --histogram OLD NEW  (and git's default Myers)")
    for label, t_kiln, t_git, t_myers in bench_diff(args.quick):
        print("%-36s kiln %8.1f ms   git --histogram %9.1f ms   ratio %.3fx   (git myers %8.1f ms, ratio %.2fx)"
              % (label, t_kiln * 1000, t_git * 1000, t_kiln / t_git, t_myers * 1000, t_kiln / t_myers))


if __name__ == "__main__":
    sys.exit(main())
