"""Progress on long work: a per-batch bar on a terminal and one summary line per epoch.

Off a terminal (a log file, a pipe, CI) there is no bar at all, only the epoch lines.  tqdm draws
the bar when it is installed; otherwise a single line is redrawn in place.
"""
from __future__ import annotations

import time

from . import optional


class Progress:
    """Per-batch bar and one summary line per epoch on ``stream`` (None: silent).

    On a terminal the bar is tqdm's if installed, else a single line redrawn in place at most
    5 times a second.  Off a terminal (a log file, a pipe, CI) there is no bar at all, only the
    epoch lines: a bar redrawn with '\\r' would write thousands of lines into a log.
    """

    def __init__(self, stream, epochs: int):
        self.stream, self.epochs, self.bar, self.drawn = stream, epochs, None, False
        self.live = stream is not None and getattr(stream, "isatty", lambda: False)()
        tqdm = optional.maybe("tqdm") if self.live else None
        self.tqdm = tqdm.tqdm if tqdm else None

    def start(self, epoch: int, n_batches: int):
        self.desc, self.n, self.last_draw = f"epoch {epoch}/{self.epochs}", n_batches, 0.0
        if self.tqdm is not None:
            self.bar = self.tqdm(total=n_batches, desc=self.desc, file=self.stream, leave=False, unit="batch")

    def update(self, batch: int, loss: float, error: float | None):
        if not self.live:
            return
        stats = f"loss {loss:.4f}" + ("" if error is None else f", acc {1 - error:.2%}")
        if self.bar is not None:
            self.bar.set_postfix_str(stats, refresh=False)
            self.bar.update(1)
        elif batch in (1, self.n) or time.monotonic() - self.last_draw > 0.2:
            self.last_draw, self.drawn = time.monotonic(), True
            filled = 20 * batch // self.n
            self.stream.write(f"\r{self.desc} [{'#' * filled}{'.' * (20 - filled)}] {batch}/{self.n} {stats}")
            self.stream.flush()

    def close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        elif self.drawn:
            self.stream.write("\r\033[K")  # erase the fallback bar's line
            self.drawn = False

    def line(self, text: str):
        if self.stream is not None:
            self.stream.write(text + "\n")
            self.stream.flush()


def epoch_summary(record: dict, epochs: int) -> str:
    def part(name, loss, error):
        return f"{name} loss {loss:.4f}" + ("" if error is None else f", error {error:.2%}")
    parts = [part("train", record["train_loss"], record["train_error"])]
    if "valid_error" in record:
        parts.append(part("valid", record["valid_loss"], record["valid_error"]))
    parts.append(f"lr {record['lr']:.4g} | {record['seconds']:.2f} s")
    return f"epoch {record['epoch']}/{epochs}: " + " | ".join(parts)
