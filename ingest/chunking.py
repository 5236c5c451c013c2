"""Split sections into token-sized chunks with overlap (langchain text splitters); a chunk keeps the indentation of
its first line (one that starts inside a code block is still code)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

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
        for piece in splitter.split_text(s.text):
            piece = trim_blank_lines(piece)
            if piece:
                chunks.append(Chunk(piece, s.heading, s.page))
    return chunks
