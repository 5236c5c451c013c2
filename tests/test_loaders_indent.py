"""Code keeps its lines as written through loading and chunking: indentation, tabs, "# comment" lines that are no
headings (Markdown, HTML, DOCX), and chunks that start inside a code block."""

import re

from ingest.chunking import split_sections
from ingest.load_types import Section
from ingest.loaders import load_document


def words(text: str) -> int:
    return len(text.split())


PYTHON = """\
```python
def first_true(xs):
    # the first truthy item
    for x in xs:
        if x:
            return x
\treturn None
```"""


def test_markdown_fenced_code_keeps_its_indentation_and_its_comments_are_no_headings(tmp_path):
    md = tmp_path / "guide.md"
    md.write_text(f"# Guide\n\nIntro.\n\n## Example\n\nThe helper:\n\n{PYTHON}\n\nAfter the code.\n")
    secs = load_document(md)
    assert [s.heading for s in secs] == ["Guide", "Guide > Example"]
    assert secs[1].text == f"## Example\n\nThe helper:\n\n{PYTHON}\n\nAfter the code."


def test_markdown_indented_code_block_keeps_its_lines(tmp_path):
    md = tmp_path / "shell.md"
    code = "    # not a heading: an indented code block\n    if true; then\n        echo hi\n    fi"
    md.write_text(f"# Shell\n\nRun:\n\n{code}\n\nDone.\n")
    (sec,) = load_document(md)
    assert sec.heading == "Shell" and f"Run:\n\n{code}\n\nDone." in sec.text


def test_markdown_headings_as_commonmark_reads_them(tmp_path):
    """Setext headings split too; a quoted "# ..." line, an h5, a front matter's "---" start no section; a heading
    alone opens the deeper section after it; no-break spaces are spaces, zero-width ones go, tabs stay."""
    md = tmp_path / "doc.md"
    md.write_text(
        "---\ntitle: Doc\n---\n\n# Top\n\n## Sub\n\nText\u00a0one\u200b.\n\n> # quoted\n\n##### Small\n\n"
        "Setext title\n============\n\nUnder it:\ta tab.\n"
    )
    secs = [(s.heading, s.text) for s in load_document(md)]
    assert secs == [
        ("", "---\ntitle: Doc\n---"),
        ("Top > Sub", "# Top\n\n## Sub\n\nText one.\n\n> # quoted\n\n##### Small"),
        ("Setext title", "Setext title\n============\n\nUnder it:\ta tab."),
    ]


def test_a_chunk_that_starts_inside_a_code_block_keeps_its_indentation():
    body = "\n".join(f"        total += step({i})" for i in range(60))
    text = f"## Loop\n\nSumming:\n\n```python\ndef run():\n    total = 0\n    for i in range(9):\n{body}\n```\n"
    chunks = split_sections([Section(text, "Loop")], chunk_tokens=40, overlap=6, token_length=words)
    assert len(chunks) > 3
    for c in chunks[2:-1]:  # wholly inside the loop's body: its lines between the block's fence lines
        opener, *lines, closer = c.text.split("\n")
        assert (opener, closer) == ("```python", "```") and lines[0].startswith("        total += step(")
        assert all(line.startswith("        total") for line in lines)


def test_chunks_lose_blank_lines_at_their_edges_not_their_first_lines_indentation():
    text = "\n\n   \n    indented first line\n    second\n\n\n"
    (chunk,) = split_sections([Section(text, "")], chunk_tokens=50, overlap=0, token_length=words)
    assert chunk.text == "    indented first line\n    second"


def test_a_heading_over_a_paragraph_too_long_for_its_chunk_is_no_chunk_of_its_own():
    """Blank lines split first: a heading would be cut off alone above a table longer than a chunk; it opens the
    chunk of what follows it, with the text between them as written."""
    rows = "\n".join(f"| row {i} | value {i} |" for i in range(30))
    text = f"## Intro\n\nSome words.\n\n### Troubleshooting\n\n{rows}\n\nAfter the table.\n"
    chunks = split_sections([Section(text, "T")], chunk_tokens=40, overlap=0, token_length=words)
    assert [c.text.split("\n")[0] for c in chunks][:2] == ["## Intro", "### Troubleshooting"]
    assert chunks[1].text.startswith("### Troubleshooting\n\n| row 0 | value 0 |\n")
    assert not any(c.text.startswith("#") and "\n" not in c.text for c in chunks)


def test_html_pre_keeps_its_indentation_in_a_code_fence(tmp_path):
    """A <pre> is a fenced code block of the section, lines as written; its "# comment" starts no section; one
    inside a definition (<dd>) is fenced too; a fence in the code makes a longer fence."""
    page = tmp_path / "page.html"
    page.write_text(
        "<html><body><h1>API</h1><p>Call it:</p>"
        "<pre>def f(x):\n    # double it\n    return 2 * x</pre>"
        "<dl><dt>g</dt><dd><p>Like f:</p><pre>if x:\n    g(x)</pre></dd></dl>"
        "<pre>```\nnested\n```</pre>"
        "<h2>More</h2><p>Text.</p></body></html>"
    )
    secs = load_document(page)
    assert [s.heading for s in secs] == ["API", "API > More"]
    assert "Call it:\n\n```\ndef f(x):\n    # double it\n    return 2 * x\n```" in secs[0].text
    assert "Like f:\n```\nif x:\n    g(x)\n```" in secs[0].text
    assert "````\n```\nnested\n```\n````" in secs[0].text


def test_docx_paragraph_that_looks_like_a_heading_is_text(tmp_path):
    import docx

    d = docx.Document()
    d.add_heading("Setup", level=1)
    d.add_paragraph("# this is a comment, not a heading")
    d.add_paragraph("Install it.")
    table = d.add_table(rows=2, cols=2)
    for r, row in enumerate(table.rows):
        for c, cell in enumerate(row.cells):
            cell.text = f"r{r}c{c}"
    path = tmp_path / "setup.docx"
    d.save(str(path))
    (sec,) = load_document(path)
    assert sec.heading == "Setup"
    assert sec.text == "# Setup\n\n# this is a comment, not a heading\n\nInstall it.\n\nr0c0 | r0c1\nr1c0 | r1c1"


def test_heading_paths_read_as_the_reader_sees_the_titles(tmp_path):
    """A Markdown heading's code spans, links and emphasis lose their marks in the heading path (the sources' labels);
    the section's text keeps the heading as written. An HTML heading's bracketed link ("[src]") is no part of it."""
    md = tmp_path / "events.md"
    md.write_text("# Events\n\n## `emitter.on(name[, fn])` and [*links*](x.md)\n\nText.\n")
    (sec,) = load_document(md)
    assert sec.heading == "Events > emitter.on(name[, fn]) and links"
    assert "## `emitter.on(name[, fn])` and [*links*](x.md)" in sec.text
    page = tmp_path / "stream.html"
    page.write_text(
        '<html><body><h1>Stream<a class="srclink" href="https://example.org/stream.js#L54">[src]</a></h1>'
        '<p>A stream is <a href="#x">[1]</a> data.</p></body></html>'
    )
    (sec,) = load_document(page)
    assert sec.heading == "Stream" and "[src]" not in sec.text and "[1]" in sec.text


def _fence_tokens(text: str) -> list:
    from markdown_it import MarkdownIt

    return [t for t in MarkdownIt("commonmark").parse(text) if t.type == "fence"]


def test_a_chunk_cut_inside_a_fenced_block_reads_as_code_on_its_own():
    """Each chunk of a fenced block cut in several opens with the block's fence line (its language kept) and closes
    with its closing fence, so rendered alone its code is code and the prose after the block is no code; the
    source's own fence lines are not doubled. A block never closed is closed with its own fence characters."""
    code = "\n".join(f"  step{i}(x);" for i in range(40))
    text = f"Intro.\n\n~~~~js\n{code}\n~~~~\n\nAfter the block comes prose."
    chunks = [c.text for c in split_sections([Section(text, "S")], chunk_tokens=20, overlap=4, token_length=words)]
    coded = [c for c in chunks if "step" in c]
    assert len(coded) >= 3
    for c in coded:
        (fence,) = _fence_tokens(c)
        assert fence.info == "js" and c.startswith("~~~~js\n") and c.endswith("\n~~~~")
        assert "prose" not in fence.content and all(ln.startswith("  step") for ln in fence.content.splitlines())
    assert chunks[-1] == "After the block comes prose." and not _fence_tokens(chunks[-1])
    assert "\n".join(c for c in coded).count("step39(x);") == 1
    open_end = split_sections([Section(f"```python\n{code}", "S")], chunk_tokens=20, overlap=4, token_length=words)
    assert all(c.text.startswith("```python\n") and c.text.endswith("\n```") for c in open_end)


def test_a_passage_cut_inside_a_fenced_block_shows_code_as_code_and_prose_as_prose():
    """The bug's shape: a Markdown section cut so that one chunk starts inside its ```js block (at "line2") and one
    ends inside it; each, rendered as the Chat's source view renders it, shows its code in <pre><code> and the
    prose in <p>, with no literal ``` in what the page shows."""
    import html
    import re

    from ui.tab_chat import passage_html

    text = "Some text about reading files.\n\n```js\nline1 a b\nline2 c d\nline3 e f\n```\n\nMore prose after it."
    pieces = ["Some text about reading files.\n\n```js\nline1 a b", "line2 c d\nline3 e f\n```\n\nMore prose after it."]
    from ingest.code_fences import fenced_pieces

    ends_inside, starts_inside = fenced_pieces(text, pieces)
    for chunk, code, prose in (
        (ends_inside, "line1 a b\n", "<p>Some text about reading files.</p>"),
        (starts_inside, "line2 c d\nline3 e f\n", "<p>More prose after it.</p>"),
    ):
        shown = passage_html(type("P", (), {"text": chunk, "section": "S"})())
        assert f'<pre><code class="language-js">{code}</code></pre>' in shown and prose in shown
        assert "```" not in html.unescape(re.sub(r"<[^>]*>", "", shown))


def test_a_chunk_on_a_blocks_fence_line_carries_no_lone_fence():
    """A piece that starts on a block's closing fence line loses it (alone it would open a code block of the prose
    after it); one that ends on a block's opening fence line loses that (an empty code box); a piece of a fence line
    alone goes. Chunked small, no chunk of a section with code blocks is a lone fence or an empty block, and every
    code line is in a block and every prose word out of one."""
    from ingest.code_fences import fenced_pieces

    text = "Intro words.\n\n```js\nrun(a);\nrun(b);\n```\n\nMore prose."
    assert fenced_pieces(text, ["```\n\nMore prose."]) == ["More prose."]
    assert fenced_pieces(text, ["Intro words.\n\n```js"]) == ["Intro words."]
    assert fenced_pieces(text, ["```js", "```"]) == []
    assert fenced_pieces(text, ["run(b);\n```\n\nMore"]) == ["```js\nrun(b);\n```\n\nMore"]
    section = "\n\n".join(
        [
            f"Prose {b} words here.\n\n```js\n" + "\n".join(f"step{b}_{i}(x, y);" for i in range(b + 2)) + "\n```"
            for b in range(4)
        ]
        + ["End words."]
    )
    for size in range(2, 9):
        for overlap in range(size):
            for c in split_sections([Section(section, "S")], chunk_tokens=size, overlap=overlap, token_length=words):
                blocks = _fence_tokens(c.text)
                code = "".join(t.content for t in blocks)
                assert all(t.content for t in blocks), c.text
                assert all(w in code for w in re.findall(r"step\d_\d\(x, y\);", c.text)), c.text
                assert "Prose" not in code and "End" not in code, c.text
