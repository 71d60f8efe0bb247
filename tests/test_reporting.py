"""Report tables: pandas-rendered HTML (escaped), the small Markdown writer, the page."""

import html.parser

import pytest

from flownet2_core.reporting import html_page, html_table, markdown_table, table_frame


class _Cells(html.parser.HTMLParser):
    """The text of every <th>/<td>, as a browser would show it."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.cells, self.tags, self._in = [], [], None

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag in ("th", "td"):
            self._in = tag
            self.cells.append((tag, ""))

    def handle_endtag(self, tag):
        if tag in ("th", "td"):
            self._in = None

    def handle_data(self, data):
        if self._in:
            tag, text = self.cells[-1]
            self.cells[-1] = (tag, text + data)


def parse(text):
    p = _Cells()
    p.feed(text)
    return p


class TestHtmlTable:
    def test_cells_in_order(self):
        p = parse(html_table(["method", "EPE"], [["tvl1", "1.234"], ["dis", 2]]))
        assert p.cells == [("th", "method"), ("th", "EPE"), ("td", "tvl1"), ("td", "1.234"),
                           ("td", "dis"), ("td", "2")]
        assert p.tags.count("tr") == 3 and "table" in p.tags

    def test_special_characters_are_escaped(self):
        nasty = "<script>alert('x')</script> & \"q\" <b>"
        text = html_table(["a<b", "c&d"], [[nasty, "1 < 2 > 0"]])
        assert "<script>" not in text and "<b>" not in text and "a<b" not in text
        assert "&lt;script&gt;" in text and "&amp;" in text
        # What a browser shows is exactly the cell text.
        assert parse(text).cells == [("th", "a<b"), ("th", "c&d"), ("td", nasty), ("td", "1 < 2 > 0")]
        assert "script" not in parse(text).tags

    def test_numbers_keep_the_callers_formatting(self):
        p = parse(html_table(["x", "y", "z"], [[0.1, "0.100", None]]))
        assert [c for _, c in p.cells[3:]] == ["0.1", "0.100", "None"]

    def test_duplicate_and_empty_headers_no_index_column(self):
        p = parse(html_table(["", ""], [["videos", 3], ["failed", 0]]))
        assert p.cells == [("th", ""), ("th", ""), ("td", "videos"), ("td", "3"), ("td", "failed"), ("td", "0")]

    def test_long_cells_are_not_truncated(self):
        sha = "ab12" * 16
        assert sha in html_table(["sha256"], [[sha]])

    def test_empty_table_and_ragged_rows(self):
        assert parse(html_table(["a"], [])).cells == [("th", "a")]
        with pytest.raises(ValueError, match="row 1 has 3 cells for 2 headers"):
            table_frame(["a", "b"], [[1, 2], [1, 2, 3]])


class TestMarkdownTable:
    def test_plain(self):
        assert markdown_table(["a", "b"], [[1, 2]]) == "| a | b |\n|---|---|\n| 1 | 2 |\n"

    def test_pipes_and_newlines_stay_in_their_cell(self):
        assert markdown_table(["a|b"], [["x | y\nz"]]) == "| a\\|b |\n|---|\n| x \\| y z |\n"


def test_page_escapes_the_title():
    page = html_page("A <b> & c", "<p>body</p>")
    assert "<title>A &lt;b&gt; &amp; c</title>" in page and "<p>body</p>" in page


def test_document_writes_markdown_and_a_self_contained_page(tmp_path):
    import base64

    import cv2
    import numpy as np

    from flownet2_core.reporting import Document

    png = tmp_path / "a.png"
    cv2.imwrite(str(png), np.zeros((4, 5, 3), np.uint8))
    doc = Document("T <1>")
    doc.section("S & co")
    doc.para("x < y")
    doc.table(["h"], [["<b>"]])
    doc.image(png, "cap", "images/a.png")
    doc.code("a<b")
    md, page = doc.markdown(), doc.html()
    assert md.startswith("# T <1>\n") and "## S & co" in md and "![cap](images/a.png)" in md
    assert "```\na<b\n```" in md and "| <b> |" in md
    assert "<h2>S &amp; co</h2>" in page and "<p>x &lt; y</p>" in page and "&lt;b&gt;" in page
    assert "<pre>a&lt;b</pre>" in page and "<title>T &lt;1&gt;</title>" in page
    data = page.split("data:image/png;base64,", 1)[1].split("'", 1)[0]
    assert base64.b64decode(data) == png.read_bytes()
