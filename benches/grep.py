#!/usr/bin/env python3
"""The `grep` tool over a 50,000-file tree against ripgrep, whole process each: kiln's
`kiln tool grep` (the same code the model's grep call runs) and `rg -n` on the same
pattern, warm page cache, alternating runs, medians and their ratio.

  python3 benches/grep.py            # builds target/release/kiln first; needs rg
  python3 benches/grep.py --files 5000 --runs 3

Target: kiln within 1.5x of rg.
"""

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KILN = os.path.join(ROOT, "target", "release", "kiln")

WORDS = ("alpha beta gamma delta epsilon value result config handler buffer stream "
         "request response token model session update cancel permission").split()


def make_tree(root, n_files):
    rng = random.Random(7)
    per_dir = 200
    n_hits = 0
    for i in range(n_files):
        d = os.path.join(root, f"pkg{i // per_dir:04d}", f"mod{(i // 20) % 10}")
        os.makedirs(d, exist_ok=True)
        lines = []
        for j in range(40):
            words = " ".join(rng.choice(WORDS) for _ in range(6))
            lines.append(f"    let {rng.choice(WORDS)}_{j} = {words};")
        if i % 500 == 0:
            lines.append("    // FIXME(kiln-bench): needle_7731 lives here")
            n_hits += 1
        with open(os.path.join(d, f"file{i:05d}.rs"), "w") as f:
            f.write("fn main() {\n" + "\n".join(lines) + "\n}\n")
    return n_hits


def timed(cmd):
    start = time.perf_counter()
    out = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start, out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=50_000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--no-build", action="store_true")
    args = ap.parse_args()
    if shutil.which("rg") is None:
        sys.exit("ripgrep is needed: apt-get install ripgrep")
    if not args.no_build:
        subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    pattern = r"needle_\d+ lives"
    with tempfile.TemporaryDirectory() as tmp:
        n_hits = make_tree(tmp, args.files)
        kiln = [KILN, "tool", "grep", json.dumps({"pattern": pattern}), "-C", tmp, "--format", "json"]
        rg = ["rg", "-n", "--no-heading", pattern, tmp]
        for cmd in (kiln, rg):  # warm the page cache
            subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times = {"kiln": [], "rg": []}
        for _ in range(args.runs):
            t, out = timed(kiln)
            text = json.loads(out.stdout)["text"]
            assert text.count("needle_") == n_hits, text[:500]
            times["kiln"].append(t)
            t, out = timed(rg)
            assert out.stdout.count(b"needle_") == n_hits
            times["rg"].append(t)
        k, r = statistics.median(times["kiln"]), statistics.median(times["rg"])
        print(f"$ {' '.join(kiln[:3])} '{kiln[3]}' -C <tree>")
        print(f"$ {' '.join(rg[:3])} '{pattern}' <tree>")
        print(f"grep over {args.files} files ({n_hits} matches), median of {args.runs}: "
              f"kiln {k * 1e3:.0f} ms, rg {r * 1e3:.0f} ms, ratio {k / r:.2f}x (target <= 1.5x)")


if __name__ == "__main__":
    main()
