import json

import pytest

from ingest.chunking import split_sections
from ingest.loaders import BadFileError, load_document
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
    assert "IS NOT and IS DISTINCT" in sec.text and "a b" in sec.text


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
        ("latin1.md", "caf\xe9 cr\xe8me".encode("latin-1"), "not valid UTF-8"),
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
    from ingest.loaders import Section

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
    from ingest.loaders import file_format

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
    from ingest.loaders import Limits, OverLimitError

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
    from ingest.loaders import load_html, load_markdown

    md = tmp_path / "a.md"
    md.write_text("# Title\n\n## Banner\n\n## Real section\n\nSome text that says something.\n")
    assert [s.heading for s in load_markdown(md)] == ["Title > Real section"]
    page = tmp_path / "p.html"
    page.write_text("<html><body><h2>SQLite C Interface</h2><h2>Open A Database</h2><p>Opens a file.</p></body></html>")
    assert [s.heading for s in load_html(page)] == ["Open A Database"]
