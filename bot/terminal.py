"""Where the command line writes: a rich Console fit for a terminal or for a pipe."""

from __future__ import annotations

import re
import sys
from typing import TextIO, cast

from rich.console import Console

#: Spaces at the end of a line: rich pads a rendered line to the console's width.
_TRAILING = re.compile(r"[ \t]+(?=\n)")


def output_console(stderr: bool = False) -> Console:
    """A Console for standard output (or error). On a terminal it is as wide as the
    terminal; written to a pipe or a file, its lines are neither wrapped at 80 columns
    nor padded with spaces, so that scripts and ``grep`` get each line whole."""
    console = Console(highlight=False, stderr=stderr)
    if console.is_terminal:
        return console
    stream = sys.stderr if stderr else sys.stdout
    return Console(highlight=False, file=cast(TextIO, _Unpadded(stream)), soft_wrap=True)


class _Unpadded:
    """A text stream that drops the spaces at the end of each line written to it."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        return self._stream.write(_TRAILING.sub("", text))

    @property
    def encoding(self) -> str:
        return getattr(self._stream, "encoding", None) or "utf-8"

    def flush(self) -> None:
        self._stream.flush()

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        return self._stream.fileno()
