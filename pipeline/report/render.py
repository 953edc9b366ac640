"""Render a `Report` into the HTML page and the Markdown summary with Jinja2.

HTML autoescapes everything. Markdown has a filter per context, and every interpolated value goes
through one: `md` for text and table cells, `code` for a code span, `html` inside an HTML tag such
as `<summary>`. Every value that reaches either output is also masked (`mask_text`), so a secret
that slipped into an artifact does not leave the run. A chart whose data is malformed is left out
with a note rather than failing the report.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from html import escape as escape_html
from typing import Any

import jinja2
from markupsafe import Markup, escape

from pipeline.contracts import LoadPoint
from pipeline.report import charts, formats
from pipeline.report.collect import Report
from pipeline.scrub import mask_text
from pipeline.status import look

#: How many failed tests or scan findings the Markdown names in one list; report.html has them all.
MARKDOWN_LIST_LIMIT = 10


def _finalize(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, str) and not isinstance(value, Markup):
        return mask_text(value)
    return value


#: Characters that start Markdown syntax inside a line: emphasis, code, links, images, HTML, cells.
_MARKDOWN_PUNCTUATION = re.compile(r"([\\`*_~\[\]|])")
#: "@name" and "#12", which GitHub makes a mention (it notifies) and an issue link, even when
#: escaped with a backslash or an entity; an empty HTML comment after the sign keeps them text.
_GITHUB_REFERENCE = re.compile(r"(?<![\w&])(@(?=\w)|#(?=\d))")


def _one_line(value: Any) -> str:
    return " ".join(mask_text(str("" if value is None else value)).split())


def _md(value: Any) -> str:
    """A value as literal Markdown text (a table cell too): no HTML, links, emphasis, mentions or
    column breaks (a bare URL is still shown as a link, its address in plain sight)."""
    return _unreferenced(_MARKDOWN_PUNCTUATION.sub(r"\\\1", escape_html(_one_line(value), quote=False)))


def _code(value: Any) -> str:
    """A value as one code span, verbatim: fenced by more backticks than any run inside it."""
    text = _one_line(value) or "–"  # noqa: RUF001 (the report's dash for "none")
    fence = "`" * (max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    padded = f" {text} " if text.startswith("`") or text.endswith("`") else text
    return f"{fence}{padded}{fence}"


def _html(value: Any) -> str:
    """A value as text inside an HTML element of the Markdown (`<summary>`): escaped, one line."""
    return _unreferenced(str(escape(_one_line(value))))


def _unreferenced(markdown: str) -> str:
    return _GITHUB_REFERENCE.sub(r"\1<!-- -->", markdown)


@functools.cache
def make_environment() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("pipeline.report", "templates"),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",), default_for_string=True),
        undefined=jinja2.ChainableUndefined,
        finalize=_finalize,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    environment.filters.update(
        number=formats.number,
        seconds=formats.seconds,
        size=formats.size,
        percent=formats.percent,
        change=formats.change,
        clock=formats.clock,
        short=formats.short,
        replica_counts=formats.replica_counts,
        setting_values=formats.setting_values,
        demo_verdict=formats.demo_verdict,
        md=_md,
        code=_code,
        html=_html,
    )
    environment.globals["look"] = look
    return environment


def _safely(
    problems: list[str], name: str, draw: Callable[..., str], *args: Any, **kwargs: Any
) -> str | None:
    """Draw a chart, or note why it could not be drawn (malformed data) and go on without it."""
    try:
        return draw(*args, **kwargs)
    except (TypeError, ValueError, KeyError, AttributeError, ZeroDivisionError) as error:
        problems.append(f"the {name} could not be drawn: {type(error).__name__}: {error}")
        return None


def _history_series(history: list[LoadPoint], key: str, label: str, colour: str) -> charts.Series:
    points = [(float(row.t), float(value)) for row in history if (value := getattr(row, key)) is not None]
    return charts.Series(label, colour, points)


def draw_charts(report: Report) -> tuple[dict[str, str | None], list[str]]:
    """Each chart as SVG markup (Mermaid source for the Markdown Gantt), or None; and why any is missing."""
    problems: list[str] = []
    drawn: dict[str, str | None] = {
        "gantt": _safely(
            problems, "Gantt chart", charts.gantt, report.jobs, report.run_start, report.generated_at
        ),
        "mermaid_gantt": _safely(problems, "Mermaid Gantt chart", charts.mermaid_gantt, report.jobs),
        **dict.fromkeys(("environment", "latency", "throughput", "drift")),
    }
    if report.cluster.ok:
        drawn["environment"] = _safely(
            problems, "environment diagram", charts.environment, report.cluster.data
        )
    if report.load.ok and (history := report.load.data.history):
        latency = [
            _history_series(history, "p50_ms", "p50", "#0969da"),
            _history_series(history, "p95_ms", "p95", "#bc4c00"),
        ]
        throughput = [_history_series(history, "rps", "requests/s", "#1a7f37")]
        for name, series, title, unit in (
            ("latency", [line for line in latency if line.points], "Latency over the load test (ms)", "ms"),
            ("throughput", throughput, "Requests per second over the load test", "requests/s"),
        ):
            drawn[name] = _safely(
                problems,
                f"{name} chart",
                charts.line_chart,
                series,
                element_id=f"{name}-chart",
                title=title,
                x_label="seconds into the load test",
                y_label=unit,
            )
    if report.timeline.ok:
        drawn["drift"] = _safely(
            problems, "drift timeline", charts.drift_timeline, report.timeline.data.drifts
        )
    return drawn, problems


def render(report: Report) -> tuple[str, str]:
    """The report as (HTML, Markdown)."""
    environment = make_environment()
    drawn, problems = draw_charts(report)
    context = {"report": report, "run": report.run, "charts": drawn, "chart_problems": problems}
    html = environment.get_template("report.html.j2").render(context)
    markdown = environment.get_template("report.md.j2").render(context, list_limit=MARKDOWN_LIST_LIMIT)
    return html, markdown
