"""minigrad's own errors, and the exit code each one gives on the command line.

Every failure that minigrad detects and can explain is a ``MinigradError``: the command line prints
its message as one line on stderr and exits with its ``exit_code``.  Anything else that escapes is a
bug, and keeps its traceback.

    exit  meaning
    0     success
    1     a bug: an unexpected exception (its traceback is shown)
    2     usage: a bad flag, argument or value (argparse uses 2 as well)
    3     data: a dataset is missing, unreadable or invalid
    4     files: a checkpoint is damaged or does not fit, or an output directory cannot be used
    5     the run diverged (NaN or inf); the last good checkpoint is kept
    130   interrupted (Ctrl-C); the last good checkpoint is kept, ``--resume`` continues
    143   terminated (SIGTERM), handled exactly as Ctrl-C

Each class also derives from the built-in exception a Python caller would expect (ValueError,
FileNotFoundError, FloatingPointError), so ``except ValueError`` keeps working.
"""
from __future__ import annotations


class MinigradError(Exception):
    """Base of the errors minigrad explains in one line."""
    exit_code = 1


class InvalidArgument(MinigradError, ValueError):
    """A bad value for an argument or a flag: names the function, the argument, what was expected."""
    exit_code = 2


class InvalidDType(MinigradError, TypeError):
    """A value that cannot meet a Tensor's dtype without silently changing (2.5 into an int64 Tensor)."""
    exit_code = 2


class MissingDependency(MinigradError, ImportError):
    """An optional package (an extra) that a feature needs is not installed: names the pip command."""
    exit_code = 2


class DataError(MinigradError, ValueError):
    """A dataset that is unreadable or invalid: names the file or the first bad index."""
    exit_code = 3


class DataNotFound(MinigradError, FileNotFoundError):
    """A dataset that is not where it was looked for: says where to put it."""
    exit_code = 3


class CheckpointError(MinigradError, ValueError):
    """Not a readable minigrad checkpoint, or one that does not fit the model: names the file."""
    exit_code = 4


class OutputError(MinigradError, OSError):
    """An output directory that cannot be used (not a directory, not writable, holds a run)."""
    exit_code = 4


class Diverged(MinigradError, FloatingPointError):
    """Training produced NaN or inf."""
    exit_code = 5


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised by the command line's handler: handled wherever Ctrl-C is (every finished result
    kept, a checkpoint never torn), but the command exits with 143 instead of 130."""
