"""A chunk cut inside a fenced code block, made to read as code on its own: it opens with that block's fence line
(```js) when it starts inside one, and closes with the block's closing fence when it ends inside one. A view that
renders the chunk as markdown then shows its code as code and the prose after it as prose, not inside out."""

from __future__ import annotations

import bisect
from dataclasses import dataclass

from ingest.sections import block_parser, trim_blank_lines


@dataclass(frozen=True)
class Fence:
    first: int  # the opening fence line's number in the section
    last: int  # the closing fence line's number (the section's last line + 1 when the block is never closed)
    opener: str  # the opening fence line as written ("```python")
    closer: str  # the closing fence line as written, or the opener's fence characters where none is


def fences(text: str) -> list[Fence]:
    """The fenced code blocks of a section's markdown (nested in lists and quotes too), as CommonMark reads them."""
    if "```" not in text and "~~~" not in text:
        return []
    lines = text.split("\n")
    out = []
    for tok in block_parser().parse(text):
        if tok.type != "fence" or tok.map is None:
            continue
        first, end = tok.map
        closed = end - 1 > first and lines[end - 1].strip().startswith(tok.markup)
        last = end - 1 if closed else len(lines)
        indent = lines[first][: len(lines[first]) - len(lines[first].lstrip())]
        closer = lines[end - 1] if closed else indent + tok.markup
        out.append(Fence(first, last, lines[first], closer))
    return out


def fenced_pieces(text: str, pieces: list[str]) -> list[str]:
    """`pieces` of `text` (in order, overlapping or not), each that starts inside a fenced code block opened with its
    fence line and each that ends inside one closed with its closing fence. A piece that starts on a block's closing
    fence line loses that line (alone it would open a block of the prose after it), and one that ends on a block's
    opening fence line loses that one (an empty code box); a piece of nothing else goes. A piece not found in
    `text` as written stays as it is."""
    blocks = fences(text)
    if not blocks:
        return pieces
    line_starts = [0] + [i + 1 for i, ch in enumerate(text) if ch == "\n"]
    closers = {f.last for f in blocks if f.last < len(line_starts)}  # a block never closed has no closing line
    openers = {f.first for f in blocks}

    def line_of(at: int) -> int:
        return bisect.bisect_right(line_starts, at) - 1

    out, at = [], 0
    for piece in pieces:
        start = text.find(piece, at)
        if start < 0:
            out.append(piece)
            continue
        at, end = start + 1, start + len(piece)
        if line_of(start) in closers:
            start = line_starts[line_of(start) + 1] if line_of(start) + 1 < len(line_starts) else end
        if start < end and line_of(end - 1) in openers:
            end = max(start, line_starts[line_of(end - 1)] - 1)
        piece = trim_blank_lines(text[start:end])
        if not piece:
            continue
        start += text[start:end].find(piece)
        first, last = line_of(start), line_of(start + len(piece) - 1)
        head = next((f for f in blocks if f.first < first < f.last), None)  # past the opener, before the close
        tail = next((f for f in blocks if f.first <= last < f.last), None)  # ends before the block's closing line
        out.append((f"{head.opener}\n" if head else "") + piece + (f"\n{tail.closer}" if tail else ""))
    return out
