"""The model's markdown as a chat view shows it, with HTML after it: the block it leaves open closed (so the cut
notice, route line and sources after it are not read as its code), HTML that markdown passes on as one raw block,
and changes made only to what shows as prose (not inside its code)."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, Callable

_PROBE = "lorag-probe"  # a paragraph put after a text to see whether a block of the text takes it in
_MAY_STAY_OPEN = re.compile(r"```|~~~|<")  # what a block that only its own closing mark ends starts with
# what ends a raw HTML block that only its closing mark ends (CommonMark's kinds 1-5): <pre>, <script>, <style>,
# <textarea>, a comment, a processing instruction, a declaration, CDATA
_HTML_CLOSERS = (
    (re.compile(r"\s*<(pre|script|style|textarea)(?=[\s>]|$)", re.I), None),
    (re.compile(r"\s*<!--"), "-->"),
    (re.compile(r"\s*<\?"), "?>"),
    (re.compile(r"\s*<!\[CDATA\["), "]]>"),
    (re.compile(r"\s*<![A-Za-z]"), ">"),
)


@lru_cache(maxsize=1)
def _blocks() -> Any:
    """A CommonMark parser of blocks alone (a tenth of the time of a whole parse: an answer is parsed as it
    streams), raw HTML read as a Markdown view reads it."""
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark").disable(["inline", "text_join"])


def closed_markdown(text: str) -> str:
    """The model's markdown with the block it leaves open at its end closed, so that what a view puts after it (a
    blank line, then the cut notice, the route line, the sources as HTML) is not read as part of it: a code fence
    never closed (one written as "    ```python", indented as code, and a "```" at the line's start later opens
    one) gets its closing fence; a raw HTML block that only its closing mark ends (<pre>, a comment, ...) gets
    that mark. Blocks are read as CommonMark reads them (markdown-it): a fence inside a list item or a quote ends
    with it, and nothing is added for it."""
    if not _MAY_STAY_OPEN.search(text):  # most answers while they stream: no parse
        return text
    for _ in range(3):  # one block closed is the whole of it; the bound only guards against a parser surprise
        last = _blocks().parse(f"{text}\n\n{_PROBE}")[-1]  # the block that the probe paragraph ends in
        if last.type == "fence":
            text = f"{text}\n{last.markup}"
        elif last.type == "html_block":
            closer = next((end or f"</{m[1]}>" for rx, end in _HTML_CLOSERS if (m := rx.match(last.content))), None)
            if closer is None:
                return text
            text = f"{text}\n{closer}"
        else:
            return text
    return text


def one_html_block(html_text: str) -> str:
    """HTML that markdown passes on whole, as one raw HTML block: a blank line (in a passage's code, say) would
    end the block there and what follows would be read as markdown (an indented line as code, the rest as a
    paragraph), so each blank line's line break is written as the character reference &#10;, which the page
    reads as the same line break."""
    return re.sub(r"\n([ \t]*)\n", lambda m: f"\n{m[1]}&#10;", html_text)


# `code`, ``a ` b``: shown as written (over a line break, not over a blank line: a paragraph's end)
_CODE_SPAN = re.compile(r"(?<!`)(`+)(?!`)(?:(?!\n[ \t]*\n).)+?(?<!`)\1(?!`)", re.S)


def outside_code(text: str, change: Callable[[str], str]) -> str:
    """`text` (markdown) with `change` made to what it shows as prose: its code blocks (fenced or indented, as
    CommonMark reads them, inside a list too) and `code` spans, which show as written, are left as they are (a
    badge's HTML there would show as its tags)."""
    lines = re.findall(r"[^\n]*\n|[^\n]+$", text)  # as the parser counts them
    code = [False] * len(lines)
    for tok in _blocks().parse(text):
        if tok.type in ("fence", "code_block") and tok.map:
            code[tok.map[0] : tok.map[1]] = [True] * (tok.map[1] - tok.map[0])
    out, prose = [], []

    def flush() -> None:
        run, at = "".join(prose), 0
        for m in _CODE_SPAN.finditer(run):
            out.extend((change(run[at : m.start()]), m[0]))
            at = m.end()
        out.append(change(run[at:]))
        prose.clear()

    for line, is_code in zip(lines, code):
        if is_code:
            flush()
            out.append(line)
        else:
            prose.append(line)
    flush()
    return "".join(out)
