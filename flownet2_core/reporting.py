"""Report rendering shared by the demo sections, the proofs and the benchmark reports:
Markdown and HTML tables and a self-contained HTML page (files are written with
:func:`flownet2_core.io.atomic_write_text`).

HTML tables come from :meth:`pandas.DataFrame.to_html` (cell text escaped). Markdown
stays a small writer here: pandas' ``to_markdown`` needs ``tabulate``, which is not a
dependency of the project.
"""

from __future__ import annotations

import base64
import html
import os

import pandas as pd

__all__ = ["Document", "html_figure", "html_page", "html_table", "markdown_table", "table_frame"]


def table_frame(headers: list[str], rows: list[list]) -> pd.DataFrame:
    """``rows`` under ``headers`` as a DataFrame of strings (``str`` of each cell, so numbers
    keep the caller's formatting and ``None`` reads ``None``)."""
    rows = [list(r) for r in rows]
    bad = [i for i, r in enumerate(rows) if len(r) != len(headers)]
    if bad:
        raise ValueError(f"table row {bad[0]} has {len(rows[bad[0]])} cells for {len(headers)} headers")
    return pd.DataFrame([[str(c) for c in r] for r in rows], columns=[str(h) for h in headers], dtype=object)


def _md_cell(c) -> str:
    # A '|' would end the cell and a newline the row.
    return str(c).replace("|", "\\|").replace("\r\n", " ").replace("\n", " ")


def markdown_table(headers: list[str], rows: list[list]) -> str:
    """A GitHub-flavoured Markdown table (numbers formatted by the caller)."""
    lines = ["| " + " | ".join(map(_md_cell, headers)) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(map(_md_cell, r)) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def html_table(headers: list[str], rows: list[list]) -> str:
    """An HTML ``<table>`` (``DataFrame.to_html``: no index column, cells escaped)."""
    return table_frame(headers, rows).to_html(index=False, escape=True, border=0, na_rep="")


_CSS = ("body{font-family:sans-serif;max-width:1200px;margin:2em auto;padding:0 1em}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;"
        "text-align:right}th{background:#f4f4f4}img{max-width:100%}figure{display:inline-block;"
        "margin:4px;text-align:center}figcaption{font-size:80%}")


def html_page(title: str, body: str) -> str:
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>{body}</body></html>\n")


def html_figure(path: str | os.PathLike, caption: str) -> str:
    """A ``<figure>`` with the PNG at ``path`` embedded (base64), so a page stays one file."""
    with open(path, "rb") as fh:
        data = base64.b64encode(fh.read()).decode("ascii")
    return (f"<figure><img src='data:image/png;base64,{data}' alt='{html.escape(caption)}'>"
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


class Document:
    """A report written twice at once: Markdown (images linked) and a self-contained HTML
    page (images embedded). Text is escaped for HTML; Markdown takes it as is."""

    def __init__(self, title: str) -> None:
        self.title = title
        self._md, self._html = [f"# {title}\n"], []

    def section(self, name: str, level: int = 2) -> None:
        self._md.append(f"\n{'#' * level} {name}\n")
        self._html.append(f"<h{level}>{html.escape(name)}</h{level}>")

    def para(self, text: str) -> None:
        self._md.append(text + "\n")
        self._html.append(f"<p>{html.escape(text)}</p>")

    def table(self, headers: list[str], rows: list[list]) -> None:
        self._md.append(markdown_table(headers, rows))
        self._html.append(html_table(headers, rows))

    def image(self, path: str | os.PathLike, caption: str, link: str) -> None:
        """The PNG at ``path``, linked from the Markdown as ``link`` (relative to it)."""
        self._md.append(f"![{caption}]({link})\n")
        self._html.append(html_figure(path, caption))

    def code(self, text: str) -> None:
        self._md.append("```\n" + text + "\n```\n")
        self._html.append(f"<pre>{html.escape(text)}</pre>")

    def raw(self, markdown: str = "", html_text: str = "") -> None:
        """Pieces written as given (either may be empty)."""
        if markdown:
            self._md.append(markdown)
        if html_text:
            self._html.append(html_text)

    def markdown(self) -> str:
        return "\n".join(self._md)

    def html(self) -> str:
        return html_page(self.title, "".join(self._html))
