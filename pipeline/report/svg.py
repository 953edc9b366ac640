"""A tiny SVG writer: charts are built as element trees, so every label is escaped by construction.

The report inlines the result in its HTML, so a chart needs no script, font or file to display.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET

from markupsafe import Markup

from pipeline.scrub import mask_text

FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif"


def _attribute(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.1f}".rstrip("0").rstrip(".")
    return str(value)


class Canvas:
    """One <svg> with a title (for screen readers and hover) and helpers that add shapes to it."""

    def __init__(self, width: float, height: float, *, element_id: str, title: str) -> None:
        self.element_id = element_id
        self.root = ET.Element(
            "svg",
            {
                "xmlns": "http://www.w3.org/2000/svg",
                "id": element_id,
                "class": "chart",
                "viewBox": f"0 0 {_attribute(float(width))} {_attribute(float(height))}",
                "width": _attribute(float(width)),
                "height": _attribute(float(height)),
                "role": "img",
                "aria-labelledby": f"{element_id}-title",
                "font-family": FONT,
                "font-size": "12",
            },
        )
        ET.SubElement(self.root, "title", id=f"{element_id}-title").text = title

    def add(
        self, tag: str, text: str | None = None, parent: ET.Element | None = None, **attributes: object
    ) -> ET.Element:
        """Add an element; `stroke_width=2` becomes `stroke-width="2"`; text is scrubbed of secrets."""
        element = ET.SubElement(
            self.root if parent is None else parent,
            tag,
            {key.rstrip("_").replace("_", "-"): _attribute(value) for key, value in attributes.items()},
        )
        if text is not None:
            element.text = mask_text(str(text))
        return element

    def text(
        self, x: float, y: float, text: str, *, parent: ET.Element | None = None, **attributes: object
    ) -> ET.Element:
        return self.add("text", text, parent, x=x, y=y, **attributes)

    def arrow_marker(self) -> str:
        """Define an arrowhead marker and return the url() to reference it."""
        marker_id = f"{self.element_id}-arrow"
        defs = ET.Element("defs")
        self.root.insert(1, defs)
        marker = self.add(
            "marker",
            parent=defs,
            id=marker_id,
            viewBox="0 0 10 10",
            refX=9,
            refY=5,
            markerWidth=7,
            markerHeight=7,
            orient="auto-start-reverse",
        )
        self.add("path", parent=marker, d="M 0 0 L 10 5 L 0 10 z", fill="#57606a")
        return f"url(#{marker_id})"

    def markup(self) -> Markup:
        return Markup(ET.tostring(self.root, encoding="unicode"))


def nice_ticks(maximum: float, count: int = 5) -> list[float]:
    """Round tick values from 0 to at least `maximum` (steps of 1, 2 or 5 times a power of ten)."""
    if maximum <= 0 or not math.isfinite(maximum):
        return [0.0, 1.0]
    raw_step = maximum / count
    magnitude = 10 ** math.floor(math.log10(raw_step))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw_step)
    ticks = [0.0]
    while ticks[-1] < maximum - 1e-9:
        ticks.append(round(ticks[-1] + step, 10))
    return ticks


def tick_label(value: float) -> str:
    return f"{value:g}" if abs(value) < 1e6 else f"{value:.2e}"
