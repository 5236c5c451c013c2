"""Split sections into token-sized chunks with overlap (langchain text splitters); a chunk keeps the indentation of
its first line (one that starts inside a code block is still code), and one cut inside a fenced code block gets
that block's fence lines (ingest/code_fences.py)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

from ingest.code_fences import fenced_pieces
from ingest.load_types import Section
from ingest.sections import trim_blank_lines


@dataclass
class Chunk:
    text: str
    heading: str
    page: int | None

    @property
    def embed_text(self) -> str:
        """What gets embedded: the heading path gives a chunk its context."""
        if self.heading and self.heading.split(" > ")[-1] not in self.text[:200]:
            return f"{self.heading}\n{self.text}"
        return self.text


def split_sections(
    sections: list[Section], *, chunk_tokens: int, overlap: int, token_length: Callable[[str], int]
) -> list[Chunk]:
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    splitter = RecursiveCharacterTextSplitter(
        chunk_size=chunk_tokens,
        chunk_overlap=overlap,
        length_function=token_length,
        separators=["\n\n", "\n", ". ", "; ", ", ", " ", ""],
        keep_separator="end",
        strip_whitespace=False,  # trim_blank_lines below: blank lines go, indentation stays
    )
    chunks: list[Chunk] = []
    for s in sections:
        pieces = [p for p in map(trim_blank_lines, splitter.split_text(s.text)) if p]
        chunks += [Chunk(p, s.heading, s.page) for p in fenced_pieces(s.text, _headings_joined(s.text, pieces))]
    return chunks


_HEADING_LINE = re.compile(r" {0,3}#{1,6}(?:[ \t]|$)")


def _headings_at_end(piece: str) -> int:
    """Where the heading lines (markdown's "# ...", blank lines between them) that end `piece` start; len(piece)
    when its last line is none."""
    lines = piece.split("\n")
    keep = len(lines)
    while keep and (not lines[keep - 1].strip() or _HEADING_LINE.match(lines[keep - 1])):
        keep -= 1
    return len(piece) if keep == len(lines) else len("\n".join(lines[:keep])) + (1 if keep else 0)


def _headings_joined(text: str, pieces: list[str]) -> list[str]:
    """`pieces` of `text` (in order) with the headings that end one (or make all of it) moved to the start of the
    next, with what stands between them in `text`: a blank line splits first, so a heading over a paragraph too
    long to go with it would end a chunk, or be one of its own, apart from the text it heads."""
    out: list[str] = []
    at, held = 0, None  # where the search for the next piece starts; held headings and where they start
    for i, piece in enumerate(pieces):
        start = text.find(piece, at)
        if start < 0:  # not found as written (never expected): as it is
            out += [held[1], piece] if held else [piece]
            held = None
            continue
        at = start + 1
        if held:
            first = min(held[0], start)  # the next piece may hold them already (the chunks' overlap)
            piece, start, held = trim_blank_lines(text[first : start + len(piece)]), first, None
        cut = _headings_at_end(piece) if i + 1 < len(pieces) else len(piece)
        if cut < len(piece):
            held = (start + cut, piece[cut:])
            piece = piece[:cut].rstrip()
        if piece:
            out.append(piece)
    return out
