"""What a terminal shows of a program's output: enough of a VT100 for rich's live displays (carriage return, line
feed, erase line, cursor up and down, colours ignored), with lines wrapping at the terminal's width."""

from __future__ import annotations

import io
import re

_CSI = re.compile(r"\x1b\[([0-9;?]*)([A-Za-z])")


class Tty(io.StringIO):
    """A stream that says it is a terminal (stdout and stderr can share one, as on a screen)."""

    def isatty(self) -> bool:
        return True


def screen(output: str, width: int = 80) -> list[str]:
    """The lines on the screen once `output` is written to a terminal `width` columns wide (a line feed also
    returns the carriage, as a terminal's output processing does)."""
    rows: list[list[str]] = [[]]
    row = col = 0
    at = 0
    while at < len(output):
        m = _CSI.match(output, at)
        if m:
            arg, cmd = m.groups()
            at = m.end()
            n = int(arg) if arg.isdigit() else 1
            if cmd == "A":
                row = max(row - n, 0)
            elif cmd == "B":
                row += n
            elif cmd == "G":
                col = n - 1
            elif cmd == "K":
                while len(rows) <= row:
                    rows.append([])
                rows[row] = [] if arg == "2" else rows[row][:col]
            continue
        ch = output[at]
        at += 1
        if ch == "\r":
            col = 0
        elif ch == "\n":
            row, col = row + 1, 0
        elif ch >= " ":
            if col >= width:
                row, col = row + 1, 0
            while len(rows) <= row:
                rows.append([])
            line = rows[row]
            line.extend(" " * (col + 1 - len(line)))
            line[col] = ch
            col += 1
        while len(rows) <= row:
            rows.append([])
    return ["".join(r).rstrip() for r in rows]
