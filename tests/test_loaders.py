import csv
import json

import pytest

from ingest.chunking import split_sections
from ingest.load_types import BadFileError, LoadNotes
from ingest.loaders import load_document
from tests.conftest import write_pdf


def texts(path):
    return [(s.heading, s.text) for s in load_document(path)]


def test_markdown_sections_follow_headings(corpus):
    secs = texts(corpus / "leave.md")
    assert [h for h, _ in secs] == ["Leave policy > Annual leave", "Leave policy > Sick leave"]
    assert "27 days" in secs[0][1] and "3 consecutive" in secs[1][1]


def test_html_headings_become_sections(corpus):
    secs = texts(corpus / "security.html")
    assert ("Security > Badges",) == (secs[0][0],)
    assert any("red lanyard" in t and h.endswith("Visitors") for h, t in secs)


def test_html_menus_buttons_and_code_comments_are_not_text_or_headings(tmp_path):
    page = tmp_path / "page.html"
    page.write_text(
        "<html><head><title>T</title></head><body>"
        "<div class='menu mainmenu'><ul><li><a href='/'>Home</a></li><li>Download</li></ul></div>"
        "<div role='navigation'><ul><li>previous</li></ul></div>"
        "<h1>Guide</h1><p>Intro text.</p>"
        "<p><b>select-stmt:</b><button>hide</button></p>"
        "<dl><dt>How?</dt><dd><p>Like this:</p><pre># a shell comment\nls -l</pre></dd></dl>"
        "<pre>## another comment\nmake</pre>"
        "<h2>Next</h2><p>After the code.</p></body></html>"
    )
    secs = texts(page)
    assert [h for h, _ in secs] == ["Guide", "Guide > Next"]
    body = "\n".join(t for _, t in secs)
    assert "Home" not in body and "Download" not in body and "previous" not in body and "hide" not in body
    assert "# a shell comment" in secs[0][1] and "## another comment" in secs[0][1]


def test_html_no_break_spaces_and_tabs_keep_words_apart(tmp_path):
    page = tmp_path / "expr.html"
    page.write_text(
        "<html><body><h1>Operators</h1><p>IS&nbsp;NOT and IS&#8201;DISTINCT</p><pre>a\tb</pre></body></html>"
    )
    (sec,) = load_document(page)
    assert "IS NOT and IS DISTINCT" in sec.text and "a\tb" in sec.text  # a tab is kept as written (code's indent)


def test_html_inline_elements_do_not_break_words_and_blocks_stay_apart(tmp_path):
    """Texinfo's and Sphinx's markup (bash's and Python's manuals): words and punctuation next to <code>, <small>,
    <a>, <em>, <var> read as a browser shows them, not "POSIX -conformant" or "(see Pattern Matching )"; block
    elements and <br> keep their text apart; a paragraph's line breaks are spaces; <pre> keeps its lines."""
    page = tmp_path / "bashref.html"
    page.write_text(
        "<html><body><h2>Definitions</h2>"
        "<p>Bash is <small>POSIX</small>-conformant and has a <code>csh</code>-like directory\n   stack.\n"
        "A ‘<code>*</code>’ is regarded as a <em>pattern</em>, (see <a href='#Pattern-Matching'>Pattern Matching"
        "</a>); <var>n</var>th word of <samp>--<var>name</var></samp>.</p>"
        "<ul><li>first<ul><li>nested</li></ul></li></ul>"
        "<table><tr><td>left<br>cell</td><td><div>one</div><div>two</div></td></tr></table>"
        '<pre><span class="n">a</span> <span class="o">=</span> <span class="mi">1</span>\n'
        '<span class="nb">print</span>(a)</pre></body></html>'
    )
    (sec,) = load_document(page)
    assert (
        "Bash is POSIX-conformant and has a csh-like directory stack. A ‘*’ is regarded as a pattern, "
        "(see Pattern Matching); nth word of --name." in sec.text
    )
    assert "first" in sec.text and "nested" in sec.text and "firstnested" not in sec.text
    assert "leftcell" not in sec.text and "onetwo" not in sec.text
    assert "a = 1\nprint(a)" in sec.text


def test_html_loose_text_is_read_in_its_section(tmp_path):
    """man2html's pages (bash.html) hold most of their text directly in <body>, between <h2> headings and <dl>
    lists, outside any <p>: each run of it is a paragraph of its section, split at block elements and <br>."""
    page = tmp_path / "bash.html"
    page.write_text(
        "Content-type: text/html; charset=UTF-8\n\n"
        '<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 4.01 Transitional//EN">\n'
        "<HTML><HEAD><TITLE>Man page of BASH</TITLE></HEAD><BODY>\n<H1>BASH</H1>\n"
        "Section: User Commands (1)<BR>Updated: 2022 September 19<HR>\n"
        '<A NAME="lbAB">&nbsp;</A>\n<H2>NAME</H2>\n\nbash - GNU Bourne-Again SHell\n'
        '<A NAME="lbAC">&nbsp;</A>\n<H2>SYNOPSIS</H2>\n\n<B>bash</B>\n\n[options]\n[command_string | file]\n'
        "<H2>DESCRIPTION</H2>\n\n<B>Bash</B>\n\nis an <B>sh</B>-compatible command language interpreter.\n"
        "<DL COMPACT>\n<DT><B>-c</B>\n<DD>Commands are read from the first argument.\n</DL>\n"
        "Loose again after the list.<div>A division's own text<div>and one nested</div>after it.</div>\n"
        "<section>Section text<h5>A fifth-level title</h5></section>\n"
        "<P>\nA paragraph.\n</BODY></HTML>"
    )
    secs = {s.heading: [ln.strip() for ln in s.text.splitlines() if ln.strip()] for s in load_document(page)}
    assert secs["BASH"] == ["# BASH", "Section: User Commands (1)", "Updated: 2022 September 19"]
    assert secs["BASH > NAME"] == ["## NAME", "bash - GNU Bourne-Again SHell"]
    assert secs["BASH > SYNOPSIS"] == ["## SYNOPSIS", "bash [options] [command_string | file]"]
    assert secs["BASH > DESCRIPTION"] == [
        "## DESCRIPTION",
        "Bash is an sh-compatible command language interpreter.",
        "-c",
        "Commands are read from the first argument.",
        "Loose again after the list.",
        "A division's own text",
        "and one nested",
        "after it.",
        "Section text",
        "A fifth-level title",
        "A paragraph.",
    ]
    assert "Content-type" not in str(secs) and "Man page of BASH" not in str(secs)


def test_html_loose_text_of_page_chrome_is_not_read(tmp_path):
    """Loose text in a page's chrome stays out: <nav>, <header>, <footer>, <aside>, <form>, <template>, <script>,
    and the footers, banners and tables of contents that generators write as <div>s (Sphinx's div.footer,
    asciidoc's div#footer, SQLite's div.tagline and div.fancy_toc, a role="contentinfo")."""
    page = tmp_path / "page.html"
    page.write_text(
        "<html><body><header>Site banner<br>tagline</header><nav>Home | Docs</nav>"
        "<div class='tagline desktoponly'>Small. Fast.</div>"
        "<div class='fancy_toc'><a>Table Of Contents</a><div><a href='#o'>1. Overview</a></div></div>"
        "<h1>Guide</h1>Loose guide text.<aside>Related links</aside>"
        "<form>Search:<input name='q'><button>Go</button></form><template>Hidden template</template>"
        "<script>var loose = 1;</script><noscript>Enable scripts</noscript>"
        "<div role='contentinfo'>Landmark footer</div><div id='footer'>Last updated today</div>"
        "<div class='footer'>&copy; Copyright 2001-2026<br>Created using Sphinx.</div>"
        "<footer>Page footer text</footer></body></html>"
    )
    secs = load_document(page)
    assert [(s.heading, s.text.split("\n")[-1].strip()) for s in secs] == [("Guide", "Loose guide text.")]


def test_html_nested_thousands_deep_is_read(tmp_path):
    page = tmp_path / "deep.html"
    page.write_text("<html><body><p>" + "<span>" * 5000 + "deep text" + "</span>" * 5000 + "</p></body></html>")
    assert [s.text for s in load_document(page)] == ["deep text"]


def test_html_permalinks_are_not_text(tmp_path):
    """The ¶ (or #) link that texinfo, Sphinx and site generators put after headings and definition terms is
    dropped: bashref.html's 357 of them read "@ ¶ ($@) Expands..." and Python's headings "Sorting ¶"; a "#" that
    links elsewhere, or a pilcrow that is not a link, is text."""
    page = tmp_path / "manual.html"
    page.write_text(
        "<html><head><title>Manual</title></head><body>"
        '<h2 id="sp"><span>3.4.2 Special Parameters<a class="copiable-link" href="#sp"> &para;</a></span></h2>'
        "<dl><dt id='index-_0040'><span><code>@</code><a href='#index-_0040' class='copiable-anchor'> &para;</a>"
        "</span></dt><dd><p>($@) Expands to the positional parameters.</p></dd></dl>"
        '<section id="sorting"><h3>Sorting<a class="headerlink" href="#sorting" title="Link to this heading">¶'
        "</a></h3><p>Use sorted().</p></section>"
        '<h3 id="hugo">Hugo <a class="anchor" href="#hugo">#</a></h3><p>The <a href="ops.html#hash">#</a> operator'
        " and the ¶ sign.</p></body></html>"
    )
    secs = load_document(page)
    assert [s.heading for s in secs] == [
        "3.4.2 Special Parameters",
        "3.4.2 Special Parameters > Sorting",
        "3.4.2 Special Parameters > Hugo",
    ]
    lines = [line.strip() for line in secs[0].text.splitlines() if line.strip()]
    assert lines[1:] == ["@", "($@) Expands to the positional parameters."]
    assert "¶" not in secs[0].text + secs[1].text
    assert "The # operator and the ¶ sign." in secs[2].text


def test_pdf_keeps_pages(corpus):
    secs = load_document(corpus / "travel.pdf")
    assert [s.page for s in secs] == [1, 2]
    assert "140 euros" in secs[1].text


def test_docx_headings(corpus):
    secs = texts(corpus / "remote.docx")
    assert any(h == "Remote work > Equipment" and "300 euros" in t for h, t in secs)


def test_csv_rows_keep_their_columns(corpus):
    (sec,) = load_document(corpus / "codes.csv")
    assert "code: E-42; meaning: door open during scan" in sec.text


def test_json_is_flattened(corpus):
    (sec,) = load_document(corpus / "faq.json")
    assert "answer: The team lead approves overtime." in sec.text


@pytest.mark.parametrize(
    "name, content, reason",
    [
        ("empty.txt", b"", "empty"),
        ("binary.txt", b"abc\x00\x01\x02def", "binary"),
        ("cyrillic.md", "Привет мир".encode("cp1251"), "not valid UTF-8.*could not be told"),  # too short to tell
        ("broken.pdf", b"%PDF-1.4 this is not really a pdf", "PDF"),
        ("broken.docx", b"PK\x03\x04 not a zip at all", "DOCX"),
        ("bad.json", b'{"a": 1,,}', "invalid JSON at line 1"),
        ("image.png", b"\x89PNG....", "unsupported format"),
    ],
)
def test_bad_files_name_the_reason(tmp_path, name, content, reason):
    p = tmp_path / name
    p.write_bytes(content)
    with pytest.raises(BadFileError, match=reason):
        load_document(p)


def test_encrypted_pdf_is_reported(tmp_path):
    p = write_pdf(tmp_path / "secret.pdf", ["top secret"], encrypt="hunter2")
    with pytest.raises(BadFileError, match="encrypted"):
        load_document(p)


def test_chunks_respect_token_budget_and_overlap():
    from ingest.load_types import Section

    words = [f"w{i}" for i in range(300)]
    chunks = split_sections(
        [Section(" ".join(words), "H")], chunk_tokens=50, overlap=10, token_length=lambda t: len(t.split())
    )
    assert all(len(c.text.split()) <= 50 for c in chunks)
    assert len(chunks) >= 6
    # neighbouring chunks overlap, and together they cover every word
    assert set(chunks[0].text.split()) & set(chunks[1].text.split())
    assert set(words) == {w for c in chunks for w in c.text.split()}
    assert chunks[0].embed_text.startswith("H\n")


def test_rst_sections_follow_title_adornments(tmp_path):
    """Sphinx sources (`*.rst.txt`) split at section titles; levels in order of first use, overlines too."""
    doc = tmp_path / "faq.rst.txt"
    doc.write_text(
        "=======\nThe FAQ\n=======\n\nIntro text.\n\nGeneral\n=======\n\n"
        "How do I exit?\n--------------\n\nCall sys.exit().\n\n"
        "Is a line of dashes in code a title?\n------------------------------------\n\n"
        "    ----\n\nNo: it is indented.\n\nLibrary\n=======\n\nWhy?\n----\n\nBecause.\n"
    )
    from ingest.formats import file_format

    assert file_format(doc) == "rst"
    got = [(s.heading, s.text.splitlines()[-1]) for s in load_document(doc)]
    assert got == [
        ("The FAQ", "Intro text."),
        ("The FAQ > General", "General"),
        ("The FAQ > General > How do I exit?", "Call sys.exit()."),
        ("The FAQ > General > Is a line of dashes in code a title?", "No: it is indented."),
        ("The FAQ > Library", "Library"),
        ("The FAQ > Library > Why?", "Because."),
    ]


@pytest.mark.parametrize(
    "encoding, bom",
    [
        ("utf-16-le", b"\xff\xfe"),
        ("utf-16-be", b"\xfe\xff"),
        ("utf-32-le", b"\xff\xfe\x00\x00"),
        ("utf-32-be", b"\x00\x00\xfe\xff"),
        ("utf-8", b"\xef\xbb\xbf"),
    ],
)
def test_text_with_a_byte_order_mark_is_decoded(tmp_path, encoding, bom):
    """UTF-16/32 text has NUL bytes; its BOM says how to read it (not "binary content")."""
    md = tmp_path / "leave.md"
    md.write_bytes(bom + "# Leave\n\nStaff receive 27 days (café).\n".encode(encoding))
    ((heading, text),) = texts(md)
    assert heading == "Leave" and text.endswith("Staff receive 27 days (café).")
    table = tmp_path / "codes.csv"
    table.write_bytes(bom + "code,meaning\nE-42,door open\n".encode(encoding))
    assert load_document(table)[0].text == "code: E-42; meaning: door open"


def test_a_named_text_encoding_reads_what_detection_would_guess_wrong(tmp_path):
    """Czech saved as ISO 8859-2 reads as cp1250 to the detector (a few letters differ); ingest.text_encoding names
    the encoding, and UTF-8 files next to it are still read as UTF-8. Bytes the named encoding lacks are an error
    naming it and the byte, not a guess."""
    from ingest.load_types import Limits

    text = "Čeština: žluťoučký kůň úpěl ďábelské ódy. Zaměstnanci mají nárok na 25 dní dovolené."
    p = tmp_path / "dovolena.txt"
    p.write_bytes(text.encode("iso8859_2"))
    notes = LoadNotes()
    (sec,) = load_document(p, Limits(text_encoding="iso8859_2"), notes)
    assert sec.text == text and notes.encoding == "iso8859_2" and notes.warnings == []
    (guessed,) = load_document(p)
    assert guessed.text != text  # what 'auto' reads: the reason for the setting
    u = tmp_path / "utf8.txt"
    u.write_text(text, encoding="utf-8")
    notes = LoadNotes()
    assert load_document(u, Limits(text_encoding="iso8859_2"), notes)[0].text == text and notes.encoding == "utf-8"
    p.write_bytes(b"Dovolen\x81 25 dn\xed")  # 0x81: no character in cp1250
    with pytest.raises(BadFileError, match=r"text is neither UTF-8 nor cp1250 \(ingest.text_encoding\): .* at byte 7"):
        load_document(p, Limits(text_encoding="cp1250"))


def test_bom_with_undecodable_text_names_the_encoding(tmp_path):
    p = tmp_path / "odd.txt"
    p.write_bytes(b"\xff\xfe" + "hello".encode("utf-16-le") + b"\x00")  # odd byte count
    with pytest.raises(BadFileError, match="not valid UTF-16"):
        load_document(p)


def test_binary_behind_a_byte_order_mark_is_still_binary(tmp_path):
    p = tmp_path / "blob.txt"
    p.write_bytes(b"\xff\xfe" + b"A\x00\x00\x00" * 8)  # "A", NUL, "A", NUL ...
    with pytest.raises(BadFileError, match="binary content"):
        load_document(p)


@pytest.mark.parametrize(
    "content",
    [
        "[" * 10000 + "]" * 10000,  # the JSON parser's own recursion limit
        '{"a": ' * 990 + "1" + "}" * 990,  # parsing or flattening it overflows the stack
    ],
)
def test_deeply_nested_json_is_a_bad_file(tmp_path, content):
    p = tmp_path / "deep.json"
    p.write_text(content)
    with pytest.raises(BadFileError, match="nested too deeply"):
        load_document(p)


def test_rows_records_and_pages_over_the_limits(tmp_path):
    from ingest.load_types import Limits, OverLimitError

    rows = tmp_path / "rows.csv"
    rows.write_text("id,name\n" + "".join(f"{i},n{i}\n" for i in range(5)))
    assert load_document(rows, Limits(max_rows=5))[0].text.count("\n") == 4
    with pytest.raises(OverLimitError, match=r"5 rows > ingest.max_rows 4"):
        load_document(rows, Limits(max_rows=4))
    records = tmp_path / "records.json"
    records.write_text(json.dumps({"items": [{"id": i} for i in range(5)], "more": [{"x": 1}]}))
    with pytest.raises(OverLimitError, match=r"6 records > ingest.max_rows 5"):
        load_document(records, Limits(max_rows=5))
    pdf = write_pdf(tmp_path / "long.pdf", ["one", "two", "three"])
    assert len(load_document(pdf, Limits(max_pages=3))) == 3
    with pytest.raises(OverLimitError, match=r"3 pages > ingest.max_pages 2"):
        load_document(pdf, Limits(max_pages=2))


def test_sections_of_headings_alone_are_left_out(tmp_path):
    """A page banner heading with no text under it (206 identical '## SQLite C Interface' chunks in
    the SQLite docs) is not a passage."""
    from ingest.markup_loaders import load_html, load_markdown

    md = tmp_path / "a.md"
    md.write_text("# Title\n\n## Banner\n\n## Real section\n\nSome text that says something.\n")
    assert [s.heading for s in load_markdown(md)] == ["Title > Real section"]
    page = tmp_path / "p.html"
    page.write_text("<html><body><h2>SQLite C Interface</h2><h2>Open A Database</h2><p>Opens a file.</p></body></html>")
    assert [s.heading for s in load_html(page)] == ["Open A Database"]


FRENCH = "Congés payés : 27 jours"


@pytest.mark.parametrize(
    "name, template",
    [
        ("latin1.txt", "{}\n"),
        ("leave.md", "# Leave\n\n{}\n"),
        ("leave.rst", "Leave\n=====\n\n{}\n"),
        ("leave.csv", "topic,rule\nleave,{}\n"),
        ("leave.json", '{{"rule": "{}"}}'),
        ("leave.html", "<html><body><h1>Leave</h1><p>{}</p></body></html>"),
    ],
)
@pytest.mark.parametrize("encoding", ["cp1252", "latin-1"])
def test_text_saved_in_a_windows_western_encoding_is_read(tmp_path, name, template, encoding):
    """French saved on Windows (cp1252, or latin-1) is read in every text format, with a warning naming the encoding
    the text was read in."""
    p = tmp_path / name
    p.write_bytes(template.format(FRENCH).encode(encoding))
    notes = LoadNotes()
    assert FRENCH in "\n".join(s.text for s in load_document(p, notes=notes))
    assert notes.encoding == "cp1252"
    assert notes.warnings == [
        "not UTF-8: read as cp1252 (detected; if the text looks wrong, re-save it as UTF-8 or name its encoding in "
        "ingest.text_encoding)"
    ]


@pytest.mark.parametrize(
    "text, encoding",
    [
        ("Smart “quotes” – and 5 €", "cp1252"),
        ("Ação e coração não", "cp1252"),
        (
            "Сотрудники получают 27 дней оплачиваемого отпуска в год. Больничный оформляется через отдел кадров.",
            "cp1251",
        ),
        ("Οι εργαζόμενοι λαμβάνουν 27 ημέρες άδεια.", "cp1253"),
        ("従業員は年間27日の有給休暇を取得できます。", "shift_jis"),
    ],
)
def test_legacy_encodings_detected_with_confidence(tmp_path, text, encoding):
    p = tmp_path / "a.txt"
    p.write_bytes(text.encode(encoding))
    notes = LoadNotes()
    assert load_document(p, notes=notes)[0].text == text
    assert text.encode(notes.encoding) == text.encode(encoding)  # shift_jis is read as its superset cp932


def test_utf8_text_gets_no_warning_and_names_its_encoding(tmp_path):
    p = tmp_path / "a.md"
    p.write_text(f"# Leave\n\n{FRENCH}\n", encoding="utf-8")
    notes = LoadNotes()
    load_document(p, notes=notes)
    assert (notes.encoding, notes.warnings) == ("utf-8", [])


def _zip(members: dict[str, str]) -> bytes:
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


@pytest.mark.parametrize(
    "name, content, message",
    [
        (
            "report.md",
            b"%PDF-1.7\n1 0 obj << >> endobj\n",
            "this looks like a PDF file, not Markdown text: rename it to report.pdf",
        ),
        (
            "scan.md",
            b"%PDF-1.4\n\xe2\xe3\xcf\xd3\n",
            "this looks like a PDF file, not Markdown text: rename it to scan.pdf",
        ),
        (
            "notes.txt",
            _zip({"word/document.xml": "<w/>"}),
            "this looks like a DOCX document, not plain text: rename it to notes.docx",
        ),
        (
            "table.csv",
            _zip({"xl/workbook.xml": "<x/>"}),
            "this looks like an XLSX spreadsheet, not CSV text: save it as CSV",
        ),
        ("data.json", _zip({"a.txt": "a"}), "this looks like a ZIP archive, not JSON text: extract it first"),
        ("page.html", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "this looks like a PNG image, not HTML"),
        ("photo.txt", b"\xff\xd8\xff\xe0\x00\x10JFIF", "this looks like a JPEG image, not plain text"),
        ("anim.rst", b"GIF89a\x01\x00\x01\x00", "this looks like a GIF image, not reStructuredText"),
        (
            "logs.txt",
            __import__("gzip").compress(b"hello"),
            "this looks like a gzip-compressed file, not plain text: decompress",
        ),
    ],
)
def test_a_binary_file_with_a_text_suffix_is_named_for_what_it_is(tmp_path, name, content, message):
    p = tmp_path / name
    p.write_bytes(content)
    with pytest.raises(BadFileError) as e:
        load_document(p)
    assert str(e.value).startswith(message)


@pytest.mark.parametrize(
    "name, content, message",
    [
        (
            "data.docx",
            "Rollback: run falcon deploy --rollback.\nCafé ouvert à 7h30.\n".encode(),
            "this looks like plain text, not a DOCX document: rename it to data.txt",
        ),
        (
            "notes.pdf",
            b"# Notes\n\nplain markdown\n",
            "this looks like plain text, not a PDF file: rename it to notes.txt",
        ),
        (
            "scan.docx",
            b"%PDF-1.7\n1 0 obj << >> endobj\n",
            "this looks like a PDF file, not a DOCX document: rename it",
        ),
        ("photo.pdf", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "this looks like a PNG image, not a PDF file"),
        ("broken.docx", b"\x00\x01\x02 binary garbage \xff\xfe", "corrupt or unreadable DOCX"),
    ],
)
def test_a_document_format_file_that_is_not_one_is_named_for_what_it_is(tmp_path, name, content, message):
    """The reverse of the above: a .docx or .pdf that holds text (a file renamed, or saved with the wrong suffix)
    or another known format says so; one that is neither stays 'corrupt or unreadable'."""
    p = tmp_path / name
    p.write_bytes(content)
    with pytest.raises(BadFileError) as e:
        load_document(p)
    assert str(e.value).startswith(message), str(e.value)


def test_csv_rows_that_do_not_fit_the_header_lose_nothing_and_are_reported(tmp_path):
    """An extra field is kept as "column N", and an unclosed quote no longer swallows the rest of the file: its line
    and the ones after it are read with the quote as a character; each is a warning with its line numbers."""
    p = tmp_path / "broken.csv"
    p.write_bytes(b'a,b\n1,2,3\n"unclosed,4\n')
    notes = LoadNotes()
    (sec,) = load_document(p, notes=notes)
    assert sec.text == 'a: 1; b: 2; column 3: 3\na: "unclosed; b: 4'
    assert notes.warnings == [
        "unclosed quote at line 3: the line was read with quote characters as text",
        'rows with more fields than the header\'s 2 (the extra ones kept as "column 3"): line 2',
    ]
    p.write_bytes(b'id,name,note\n1,a\n\n2,b,"two\nlines"\n3\n4,"open,x\n5,e,f\n')
    notes = LoadNotes()
    (sec,) = load_document(p, notes=notes)
    assert sec.text.splitlines() == [
        "id: 1; name: a",
        "id: 2; name: b; note: two lines",
        "id: 3",
        'id: 4; name: "open; note: x',
        "id: 5; name: e; note: f",
    ]
    assert notes.warnings == [
        "unclosed quote at line 7: lines 7-8 were read with quote characters as text",
        "rows with fewer fields than the header's 3: lines 2, 6",
    ]


def test_a_well_formed_csv_gets_no_warning(tmp_path):
    p = tmp_path / "ok.csv"
    p.write_text('code,meaning,,\nE-1,"door, open",x,\nE-2,"multi\nline",,y\n')
    notes = LoadNotes()
    (sec,) = load_document(p, notes=notes)
    assert notes.warnings == []
    assert sec.text == "code: E-1; meaning: door, open; column 3: x\ncode: E-2; meaning: multi line; column 4: y"


def test_a_csv_delimited_by_semicolons_or_tabs_keeps_its_columns(tmp_path):
    """Spreadsheets in locales with a decimal comma write semicolons; tab-separated exports use tabs: each is read
    by its own delimiter, decimal commas and quoting included, while a comma file whose text holds semicolons
    stays a comma file."""
    p = tmp_path / "prices.csv"
    p.write_text('name;price;note\nApple;1,5;"red; sweet"\nPear;2,0;\n')
    notes = LoadNotes()
    (sec,) = load_document(p, notes=notes)
    assert sec.text.splitlines() == ["name: Apple; price: 1,5; note: red; sweet", "name: Pear; price: 2,0"]
    assert notes.warnings == [] and sec.heading == "table: name, price, note"
    for name in ("cities.csv", "cities.tsv"):
        t = tmp_path / name
        t.write_text("id\tcity\n1\tOslo, Norway\n2\tLyon\n")
        (sec,) = load_document(t)
        assert sec.text.splitlines() == ["id: 1; city: Oslo, Norway", "id: 2; city: Lyon"], name
    p.write_text("term,meaning\nsemicolon,a mark; used in lists\ncomma,a mark\n")
    (sec,) = load_document(p)
    assert sec.text.splitlines() == ["term: semicolon; meaning: a mark; used in lists", "term: comma; meaning: a mark"]


def test_rows_longer_than_the_csv_field_limit_do_not_trouble_the_delimiter_choice(tmp_path):
    """Each candidate delimiter reads the first lines; one the file does not use must not make a long row one field
    over csv's size limit (the file then failed as malformed)."""
    limit = csv.field_size_limit()
    n = limit // 3
    p = tmp_path / "wide.csv"
    p.write_text(",".join(f"c{i}" for i in range(n)) + "\n" + ",".join(["val"] * n) + "\n")
    assert min(len(line) for line in p.read_text().splitlines()) > limit
    (sec,) = load_document(p)
    assert sec.text.startswith("c0: val; c1: val") and sec.text.count("val") == n


def test_an_unclosed_quote_in_a_semicolon_csv_is_read_by_its_delimiter(tmp_path):
    p = tmp_path / "broken.csv"
    p.write_text('a;b\n1;2\n"open;3\n4;5\n')
    notes = LoadNotes()
    (sec,) = load_document(p, notes=notes)
    assert sec.text.splitlines() == ["a: 1; b: 2", 'a: "open; b: 3', "a: 4; b: 5"]
    assert notes.warnings == ["unclosed quote at line 3: lines 3-4 were read with quote characters as text"]


def test_an_unclosed_quote_before_more_than_the_csv_field_limit_is_read_with_a_warning(tmp_path):
    """csv's field size limit (128 KB) is reached inside the unclosed quote before the end of the file: the file is
    still read, the quote's line and the ones after it with quote characters as text, as for a small file."""
    limit = csv.field_size_limit()
    rows = [f"{i},name {i},{'x' * 100}" for i in range(3, 2000)]
    p = tmp_path / "big.csv"
    p.write_text('id,name,note\n1,alpha,"broken\n' + "\n".join(rows) + "\n")
    assert p.stat().st_size > limit
    notes = LoadNotes()
    (sec,) = load_document(p, notes=notes)
    assert notes.warnings == [
        f"unclosed quote at line 2: lines 2-{len(rows) + 2} were read with quote characters as text"
    ]
    lines = sec.text.splitlines()
    assert lines[0] == 'id: 1; name: alpha; note: "broken'
    assert lines[1:] == [f"id: {r.split(',')[0]}; name: {r.split(',')[1]}; note: {r.split(',')[2]}" for r in rows]


def test_a_closed_quoted_field_over_the_csv_field_limit_is_still_refused(tmp_path):
    p = tmp_path / "huge.csv"
    p.write_text('id,note\n1,"' + "y\n" * csv.field_size_limit() + '"\n2,b\n')
    with pytest.raises(BadFileError, match="malformed CSV \\(field larger than field limit"):
        load_document(p)


def test_pdf_bullets_read_as_bullets_and_no_control_character_reaches_the_text():
    """pypdf gives a list bullet whose glyph maps to no character as DEL (\\x7f), on its own line before the item:
    the loader joins it to the item as "• "; a control character elsewhere is a space (none at a line's end)."""
    from pathlib import Path

    from ingest.pdf_docx_loaders import pdf_text

    secs = load_document(Path(__file__).parent.parent / "samples/corpus/handbook/expenses-and-travel.pdf")
    text = "\n".join(s.text for s in secs)
    assert not any(ch < " " and ch not in "\n\t" or "\x7f" <= ch <= "\x9f" for ch in text)
    assert "9. Expenses that are not reimbursed\n• Hotel minibar items and in-room films.\n• Traffic fines" in text
    assert pdf_text(" \x7f\nItem one\n\x7fItem two\na\x07b \x7f\n\x7f\n\x7f\nLast\n") == (
        "• Item one\n• Item two\na b\n\n• Last\n"
    )
    assert pdf_text("tabs\tstay  and  spaces  too\r\n") == "tabs\tstay  and  spaces  too\r\n"


def _vera_canvas(path):
    """A reportlab canvas with reportlab's own Bitstream Vera font registered: a TrueType font whose PDF maps its
    glyphs back to text, the ﬁ and ﬂ ligatures included."""
    from pathlib import Path

    import reportlab
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont
    from reportlab.pdfgen import canvas

    pdfmetrics.registerFont(TTFont("Vera", str(Path(reportlab.__file__).parent / "fonts" / "Vera.ttf")))
    return canvas.Canvas(str(path))


def test_pdf_ligatures_read_as_their_letters(tmp_path):
    """Groff and TeX PDFs give "ﬁle" with U+FB01: keyword search for "file" would miss it (992 in bash.pdf). The
    presentation-form ligatures are expanded; other compatibility characters ("10²") stay as they are."""
    from ingest.pdf_docx_loaders import pdf_text

    c = _vera_canvas(tmp_path / "lig.pdf")
    c.setFont("Vera", 12)
    c.drawString(50, 800, "Read the ﬁle, then ﬂag it: 10² m")
    c.showPage()
    c.save()
    (sec,) = load_document(tmp_path / "lig.pdf")
    assert "Read the file, then flag it: 10² m" in sec.text
    assert pdf_text("oﬀ eﬃcient baﬄe ﬅ ﬆ ½") == "off efficient baffle st st ½"


def test_pdf_words_broken_at_line_ends_are_joined(tmp_path):
    """A hyphen ending a line before a lowercase word (or capitals after capitals) is a word broken by the
    typesetter: it joins ("tradi-/tional" -> "traditional"). The document decides compounds: one it writes
    hyphenated elsewhere keeps its hyphen, as does one after a digit or before another hyphenated part."""
    lines = [
        "Bash keeps the tradi-",
        "tional behaviour; the",
        "exit status is non-",
        "zero on error (see ARITHMETIC EVALUA-",
        "TION). It is accord-",
        "ingly a 512-",
        "byte block for the most-",
        "recently-killed text, not the Unix-",
        "Like systems. A non-zero status",
    ]
    pdf = write_pdf(tmp_path / "manual.pdf", ["\n".join(lines), "Bash is tradi-\ntional too."])
    first, second = load_document(pdf)
    assert first.text.strip().split("\n") == [
        "Bash keeps the traditional behaviour; the",
        "exit status is non-zero on error (see ARITHMETIC EVALUATION). It is accordingly a 512-byte block for the "
        "most-recently-killed text, not the Unix-",
        "Like systems. A non-zero status",
    ]
    assert second.text.strip() == "Bash is traditional too."


def test_pdf_words_split_by_letter_spacing_are_whole_and_columns_stay_apart(tmp_path):
    """groff justifies a line by word spacing and places the next letters by position: pypdf's default reading
    gives "the v ariable" (bash.pdf: "e xecutes", "v alue"...), its layout mode "the variable". The layout reading
    is taken only where it reads the same characters in the same order: a two-column page, which layout mode
    would read across the columns line by line, keeps the default reading, column after column."""
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.pdfbase.pdfmetrics import stringWidth
    from reportlab.platypus import BaseDocTemplate, Frame, FrameBreak, PageTemplate, Paragraph

    c = _vera_canvas(tmp_path / "man.pdf")
    text = c.beginText(50, 800)
    text.setFont("Vera", 12)
    text.setWordSpace(3)  # the space in "the v" is 3 points wider, and "ariable" placed after it
    text.textOut("the v")
    text.setWordSpace(0)
    text.moveCursor(stringWidth("the v", "Vera", 12) + 3, 0)
    text.textOut("ariable is set")
    c.drawText(text)
    c.showPage()
    c.save()
    (sec,) = load_document(tmp_path / "man.pdf")
    assert sec.text.strip() == "the variable is set"

    doc = BaseDocTemplate(str(tmp_path / "paper.pdf"))
    half = (doc.width - 20) / 2
    left = Frame(doc.leftMargin, doc.bottomMargin, half, doc.height)
    right = Frame(doc.leftMargin + half + 20, doc.bottomMargin, half, doc.height)
    doc.addPageTemplates([PageTemplate(frames=[left, right])])
    style = getSampleStyleSheet()["BodyText"]
    doc.build([Paragraph("Apples grow on trees. " * 30, style), FrameBreak(), Paragraph("Bananas " * 60, style)])
    (sec,) = load_document(tmp_path / "paper.pdf")
    assert "Bananas" not in sec.text[: sec.text.rindex("Apples")]


CODE = "```python\ndef f(x):\n    return 2 * x\n```"


def test_gzip_compressed_text_files_are_read_as_their_inner_format(tmp_path):
    """Debian ships documentation gzipped ("api.md.gz"): a text format's .gz is read as that format; a .gz of a
    format lorag does not read is left out; a corrupt one is a bad file naming why; a gzip's bytes under a
    text suffix are still refused as binary."""
    import gzip

    import pytest

    from ingest.formats import file_format
    from ingest.load_types import BadFileError

    md = tmp_path / "events.md.gz"
    md.write_bytes(gzip.compress(f"# Events\n\n## Example\n\n{CODE}\n".encode()))
    secs = load_document(md)
    assert [s.heading for s in secs] == ["Events > Example"] and CODE in secs[0].text
    rst = tmp_path / "intro.rst.txt.gz"
    rst.write_bytes(gzip.compress(b"Intro\n=====\n\nText.\n"))
    assert file_format(rst) == "rst" and load_document(rst)[0].heading == "Intro"
    assert file_format(tmp_path / "changelog.Debian.gz") == "gz"
    (tmp_path / "bad.txt.gz").write_bytes(b"\x1f\x8bnot really")
    with pytest.raises(BadFileError, match="gzip"):
        load_document(tmp_path / "bad.txt.gz")
    (tmp_path / "packed.md").write_bytes(gzip.compress(b"# x\n"))
    with pytest.raises(BadFileError, match="gzip-compressed"):
        load_document(tmp_path / "packed.md")
