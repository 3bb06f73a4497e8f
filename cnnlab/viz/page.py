"""The report's HTML page: figures and sections in, one self-contained page out.

Every picture is a PNG embedded as a base64 ``data:`` URI and the CSS is inline, so
the page needs no other file and no network.  The page's skeleton and CSS are
``report_template.html`` beside this file (package data); the repeated parts
(navigation, sections, figures, tables) are made here.
"""
from __future__ import annotations

import base64
import html
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from string import Template
from typing import Any

__all__ = ["Figure", "Section", "png_data_uri", "render_html", "html_table"]


@dataclass
class Figure:
    """One picture of a section: a PNG file, a one-sentence caption, display options."""

    path: Path
    caption: str
    pixelated: bool = False      # small pixel-art images: keep hard pixel edges when scaled
    wide: bool = False           # span the whole row of the grid


@dataclass
class Section:
    """A titled block of the report: an explanation, figures, optional HTML extras."""

    title: str
    intro: str
    figures: list[Figure] = field(default_factory=list)
    extra_html: str = ""
    error: str | None = None
    columns: int | None = None   # fixed number of figure columns (default: as many as fit 340 px)
    side_html: str = ""          # a grid cell after the figures (tables beside a picture)


def png_data_uri(path: str | os.PathLike) -> str:
    """``data:image/png;base64,...`` for a PNG file."""
    data = Path(path).read_bytes()
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        raise ValueError(f"png_data_uri: {path} is not a PNG file")
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def _png_size(path: Path) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk."""
    head = Path(path).read_bytes()[16:24]
    return int.from_bytes(head[:4], "big"), int.from_bytes(head[4:], "big")


@lru_cache(maxsize=1)
def _template() -> Template:
    """The page's skeleton and CSS (``report_template.html``, shipped as package data)."""
    text = resources.files("cnnlab.viz").joinpath("report_template.html").read_text(encoding="utf-8")
    return Template(text)


def _figure_html(f: Figure) -> str:
    esc = html.escape
    w, h = _png_size(f.path)
    cls = ' class="px"' if f.pixelated else ""
    wide = ' class="wide"' if f.wide else ""
    return (f'<figure{wide}><img{cls} src="{png_data_uri(f.path)}" width="{w}" height="{h}" '
            f'alt="{esc(f.caption)}"><figcaption>{esc(f.caption)}</figcaption></figure>')


def _section_html(k: int, s: Section) -> str:
    esc = html.escape
    out = [f'<section id="s{k}"><h2>{k}. {esc(s.title)}</h2><p class="intro">{esc(s.intro)}</p>']
    if s.error:
        out.append(f'<div class="error">This section could not be made: {esc(s.error)}</div>')
    if s.figures or s.side_html:
        cols = f' style="grid-template-columns:repeat({s.columns}, minmax(0, 1fr))"' if s.columns else ""
        out.append(f'<div class="grid"{cols}>')
        out.extend(_figure_html(f) for f in s.figures)
        if s.side_html:
            out.append(f'<div class="side">{s.side_html}</div>')
        out.append("</div>")
    out.append(s.extra_html)
    out.append("</section>")
    return "\n".join(out)


def render_html(title: str, subtitle: str, stats: list[tuple[str, str]], sections: list[Section],
                footer: str = "") -> str:
    """The page as one HTML string (images inlined from the figures' PNG files)."""
    esc = html.escape
    return _template().substitute(
        title=esc(title), subtitle=esc(subtitle), footer=esc(footer),
        stats="\n".join(f'<div class="stat"><b>{esc(value)}</b><span>{esc(label)}</span></div>'
                        for label, value in stats),
        nav="\n".join(f'<a href="#s{k}">{k}. {esc(s.title)}</a>' for k, s in enumerate(sections, 1)),
        sections="\n".join(_section_html(k, s) for k, s in enumerate(sections, 1)))


def html_table(head: Sequence[str], rows: Sequence[Sequence[Any]], numeric: Sequence[int] = ()) -> str:
    """A ``<table>`` with a header row and one row per item, every cell escaped; the
    columns listed in ``numeric`` are right-aligned figures."""
    esc = html.escape

    def cell(j: int, v: Any) -> str:
        return f"<td class=num>{esc(str(v))}</td>" if j in numeric else f"<td>{esc(str(v))}</td>"

    return ("<table><tr>" + "".join(f"<th>{esc(h)}</th>" for h in head) + "</tr>"
            + "".join("<tr>" + "".join(cell(j, v) for j, v in enumerate(r)) + "</tr>" for r in rows)
            + "</table>")
