"""Report rendering shared by the demo sections, the proofs and the benchmark reports:
Markdown and HTML tables and a self-contained HTML page (files are written with
:func:`flownet2_core.io.atomic_write_text`).

HTML tables come from :meth:`pandas.DataFrame.to_html` (cell text escaped). Markdown
stays a small writer here: pandas' ``to_markdown`` needs ``tabulate``, which is not a
dependency of the project.
"""

from __future__ import annotations

import html

import pandas as pd

__all__ = ["html_page", "html_table", "markdown_table", "table_frame"]


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
