"""What loading a file gives and raises: its sections, notes and per-file limits, and the load errors."""

from __future__ import annotations

from dataclasses import dataclass, field


class BadFileError(Exception):
    """This file cannot be ingested; the message is the reason (shown with the path)."""


class OverLimitError(BadFileError):
    """The file is over a per-file limit of the settings; the message says which (the file is skipped)."""


class EmptyFileError(BadFileError):
    """The file has nothing to index: 0 bytes, or no text once parsed (the file is skipped, not failed)."""


@dataclass(frozen=True)
class Limits:
    """Per-file limits checked while loading (None: no limit), and the legacy text encoding to read; the pipeline
    passes ingest.max_rows / max_pages / text_encoding."""

    max_rows: int | None = None  # csv rows, json records
    max_pages: int | None = None  # pdf pages
    text_encoding: str = "auto"  # of text that is not UTF-8 and has no byte order mark: 'auto' detects it

    def check(self, n: int, what: str, setting: str) -> None:
        limit = getattr(self, setting)
        if limit is not None and n > limit:
            raise OverLimitError(f"{n} {what} > ingest.{setting} {limit}")


NO_LIMITS = Limits()


@dataclass
class Section:
    text: str
    heading: str = ""  # "Top > Sub" path of the headings above this text
    page: int | None = None


@dataclass
class LoadNotes:
    """What loading a file noticed without failing it: warnings shown with its result, and the text encoding read."""

    warnings: list[str] = field(default_factory=list)
    encoding: str = ""  # the codec the text was decoded with ("utf-8", "utf-16-le", "cp1252"...); "" for pdf/docx
