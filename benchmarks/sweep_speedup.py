"""The process pool's speed-up on a 16-cell sweep: the same cells serially and in a pool of
``--workers`` processes, wall time of each command, and a check that both gave the same results.

    python benchmarks/sweep_speedup.py                 # digits, 30 epochs, 2 workers (about a minute)
    python benchmarks/sweep_speedup.py --epochs 3      # smoke run

Only meaningful on a quiet machine: it prints the share of idle CPU before and after (other work on
the cores slows the pool's workers, not the serial run's single process, once the cores are full).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def idle_share(seconds=3.0) -> float:
    def sample():
        fields = [int(v) for v in open("/proc/stat").readline().split()[1:9]]
        return fields[3] + fields[4], sum(fields)
    (i1, t1), _ = sample(), time.sleep(seconds)
    i2, t2 = sample()
    return (i2 - i1) / max(t2 - t1, 1)


def sweep(out, epochs, *extra) -> float:
    flags = ["--members", "plain", "adv-pinf", "datagrad-l1", "gp-q1", "--strengths", "0.05", "--seeds", "4",
             "--epochs", str(epochs), "--quiet", "--out", str(out), *extra]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "minigrad", "sweep", *flags], env=env, check=True,
                   stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def results(out):
    return {p.name: json.dumps(json.loads(p.read_text())["result"], sort_keys=True) for p in (out / "cells").glob("*")}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--workers", type=int, default=2)
    args = p.parse_args()
    if os.path.exists("/proc/stat"):
        print(f"idle CPU before: {idle_share():.0%}")
    with tempfile.TemporaryDirectory() as tmp:
        serial = sweep(Path(tmp) / "serial", args.epochs, "--serial")
        pool = sweep(Path(tmp) / "pool", args.epochs, "--workers", str(args.workers))
        same = results(Path(tmp) / "serial") == results(Path(tmp) / "pool")
    if os.path.exists("/proc/stat"):
        print(f"idle CPU after: {idle_share():.0%}")
    print(f"16 cells, {args.epochs} epochs: serial {serial:.1f} s, pool of {args.workers} {pool:.1f} s, "
          f"ratio {pool / serial:.2f}; identical results: {same}")


if __name__ == "__main__":
    main()
