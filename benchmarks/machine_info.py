"""What a timing was measured on: the CPU model, the BLAS with the kernel it runs, the OS kernel and the
date, one line each; every benchmark prints them above its table (BENCHMARKS.md names them the same way)."""
from __future__ import annotations

import datetime
import platform
import subprocess


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        return next((line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name")),
                    platform.processor() or "unknown CPU")
    except OSError:
        return platform.processor() or "unknown CPU"


def blas() -> str:
    """'openblas 0.3.31 (SkylakeX kernel, 2 threads)' for each BLAS threadpoolctl finds."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "unknown (threadpoolctl not installed)"
    return "; ".join(f"{i.get('internal_api')} {i.get('version')} ({i.get('architecture', '?')} kernel, "
                     f"{i.get('num_threads')} threads)" for i in threadpool_info()
                     if i.get("user_api") == "blas") or "none found"


def lines(threads=None, with_blas=True) -> list:
    out = [f"CPU: {cpu_model()}"] + ([f"BLAS: {blas()}"] if with_blas else []) + [
        f"OS: {platform.system()} {platform.release()}"]
    if threads is not None:
        out.append(f"threads: {threads}")
    out.append(f"date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC")
    return out
