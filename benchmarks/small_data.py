"""Small-data accuracy, Varga, Csiszárik & Zombori's setting (arXiv 1712.09936): clean test error of
plain training against the input-gradient penalties, when the training set is small.

Runs ``python -m minigrad compare`` once per seed (same members, same flags, ``--seed`` s, one BLAS
thread; results in OUT/seed<s>/, reused by a rerun as compare reuses them), then prints one table:
clean test error in percent, mean ± sample standard deviation over the seeds, each seed's value, the
FGSM (ε = 0.1) error and the mean training time.  Extra flags after ``--`` go to compare unchanged.

    python benchmarks/small_data.py                      # digits, 300 training examples, seeds 0 1 2
    python benchmarks/small_data.py --seeds 0 1 2 3 4 -- --epochs 60
"""
from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from minigrad import cli  # noqa: E402

MEMBERS = ["plain", "double-backprop", "jacreg", "spectreg"]


def run(args, extra) -> dict:
    """member → list of (clean %, fgsm ε = 0.1 %, train s), one per seed."""
    rows = {}
    for seed in args.seeds:
        out = pathlib.Path(args.out) / f"seed{seed}"
        argv = ["compare", "--data", args.data, "--train-size", str(args.train_size), "--members", *args.members,
                "--seed", str(seed), "--threads", "1", "--quiet", "--out", str(out), *extra]
        print("python -m minigrad " + " ".join(argv), file=sys.stderr, flush=True)
        if cli.main(argv) != 0:
            raise SystemExit(f"compare failed for seed {seed}")
        for r in json.loads((out / "results.json").read_text())["results"]:
            rows.setdefault(r["member"], []).append(
                (100 * r["clean_error"], 100 * r["attacks"]["fgsm"].get("0.1", np.nan), r["train_seconds"]))
    return rows


def table(rows: dict) -> str:
    lines = ["| member | clean error % (mean ± sd) | per seed | FGSM ε=0.1 % | train s |", "|---|---|---|---|---|"]
    for member, values in rows.items():
        v = np.array(values)
        sd = v[:, 0].std(ddof=1) if len(v) > 1 else float("nan")
        lines.append(f"| {member} | {v[:, 0].mean():.2f} ± {sd:.2f} | {' / '.join(f'{e:.1f}' for e in v[:, 0])} "
                     f"| {v[:, 1].mean():.1f} | {v[:, 2].mean():.1f} |")
    return "\n".join(lines)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default="digits")
    p.add_argument("--train-size", type=int, default=300)
    p.add_argument("--members", nargs="+", default=MEMBERS)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--out", default="runs/small_data")
    args = p.parse_args(argv[:argv.index("--")] if "--" in argv else argv)
    start = time.perf_counter()
    rows = run(args, extra)
    print(table(rows))
    print(f"\n{args.data}, first {args.train_size} training examples, seeds {args.seeds}; "
          f"{time.perf_counter() - start:.0f} s in all")


if __name__ == "__main__":
    main()
