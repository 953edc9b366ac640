"""The report's drawings, as inline SVG: the environment, interval charts and line charts.

One interval chart draws labelled intervals on a time axis; it is both the jobs' Gantt chart and
the demo's drift timeline. Every figure is computed from the `Report` (never typed in); each chart
has a stable element id that the browser test looks for.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal

from markupsafe import Markup

from pipeline.contracts import ClusterStatus, Drift
from pipeline.report.collect import JobRow
from pipeline.report.formats import clock, seconds
from pipeline.report.svg import Canvas, nice_ticks, tick_label
from pipeline.scrub import mask_text
from pipeline.status import Status, look
from pipeline.timestamps import elapsed, moment

WIDTH = 1100
#: Line charts come in pairs, side by side.
HALF_WIDTH = 540
MUTED = "#57606a"
GRID = "#d8dee4"
INK = "#1f2328"
#: Small grey text: ticks, axis labels, notes.
SMALL: dict[str, Any] = {"fill": MUTED, "font_size": 11}
#: A drift's colour until the controller saw it (OutOfSync).
DETECTING = "#bf8700"
#: Mermaid's (day.js) spelling of the time format the Markdown Gantt chart uses.
MERMAID_TIME = "YYYY-MM-DD HH:mm:ss"
#: Rough width of a character of 11 px text, to decide whether a label fits.
CHAR_WIDTH = 7


def environment(cluster: ClusterStatus) -> Markup:
    """What deploy brought up: Git, the GitOps controller, the endpoint, the replicas and Prometheus."""
    target, replicas, prometheus = cluster.target or "?", cluster.replicas, cluster.prometheus
    box_width, box_height, gap = 230, 58, 34
    # Columns: Git and the clients; the controller, the endpoint and Prometheus; the replicas.
    outer_x, inner_x, group_x = 16, 16 + box_width + 70, 16 + 2 * box_width + 70 + 90
    outer_right, inner_right, middle = outer_x + box_width, inner_x + box_width, box_height / 2
    replica_height, replica_gap = 44, 10
    group_height = 34 + max(len(replicas), 1) * (replica_height + replica_gap)
    height = max(3 * box_height + 2 * gap, group_height + box_height / 2) + 40
    title = f"Deployed environment on the {target} target"
    canvas = Canvas(group_x + box_width + 16, height, element_id="environment-diagram", title=title)
    arrow_style: dict[str, Any] = {"stroke": MUTED, "stroke_width": 1.5, "marker_end": canvas.arrow_marker()}
    top = 20
    endpoint_y = top + box_height + gap
    prometheus_y = endpoint_y + box_height + gap

    def labelled_box(
        x: float,
        y: float,
        title: str,
        note: str,
        *,
        fill: str = "#f6f8fa",
        stroke: str = GRID,
        cls: str = "box",
    ) -> None:
        group = canvas.add("g", class_=cls)
        canvas.add(
            "rect", parent=group, x=x, y=y, width=box_width, height=box_height, rx=8, fill=fill, stroke=stroke
        )
        canvas.text(x + 12, y + 23, title, parent=group, font_weight="600", font_size=14, fill=INK)
        canvas.text(x + 12, y + 43, note, parent=group, fill=MUTED)

    def connect(x1: float, y1: float, x2: float, y2: float, label: str = "", dashed: bool = False) -> None:
        dash = "5 4" if dashed else "none"
        canvas.add("line", x1=x1, y1=y1, x2=x2, y2=y2, **arrow_style, stroke_dasharray=dash)
        if label:
            canvas.text((x1 + x2) / 2, (y1 + y2) / 2 - 6, label, **SMALL, text_anchor="middle")

    sync, health = cluster.sync or "?", cluster.health or "?"
    healthy = sync == "Synced" and health == "Healthy"
    controller = "Argo CD" if target in ("kind", "minikube") else "Reconciler (local GitOps)"
    labelled_box(outer_x, top, "Git: desired state", f"gitops/overlays/{target}")
    fill, state = ("#dafbe1", Status.SUCCESS) if healthy else ("#ffebe9", Status.FAILURE)
    labelled_box(
        inner_x, top, controller, f"{sync} · {health}", fill=fill, stroke=look(state).colour, cls="controller"
    )
    connect(outer_right, top + middle, inner_x - 2, top + middle, "syncs")
    labelled_box(outer_x, endpoint_y, "Clients", "one address for every replica")
    labelled_box(inner_x, endpoint_y, "Endpoint", cluster.endpoint or "?", cls="endpoint")
    connect(outer_right, endpoint_y + middle, inner_x - 2, endpoint_y + middle)

    ready = sum(bool(replica.get("ready")) for replica in replicas)
    canvas.add(
        "rect",
        x=group_x - 8,
        y=top - 8,
        width=box_width + 16,
        height=group_height,
        rx=10,
        fill="none",
        stroke=GRID,
        stroke_dasharray="6 4",
    )
    canvas.text(group_x, top + 10, f"Replicas: {ready} of {len(replicas)} ready", font_weight="600", fill=INK)
    for index, replica in enumerate(replicas):
        y = top + 24 + index * (replica_height + replica_gap)
        colour = look(Status.SUCCESS if replica.get("ready") else Status.FAILURE).colour
        group = canvas.add("g", class_="replica")
        canvas.add(
            "rect",
            parent=group,
            x=group_x,
            y=y,
            width=box_width,
            height=replica_height,
            rx=6,
            fill="#ffffff",
            stroke=colour,
            stroke_width=1.5,
        )
        canvas.add("circle", parent=group, cx=group_x + 14, cy=y + replica_height / 2, r=5, fill=colour)
        name = str(replica.get("name") or f"replica {index}")
        canvas.text(group_x + 28, y + 18, name, parent=group, font_weight="600", fill=INK)
        canvas.text(group_x + 28, y + 34, str(replica.get("url") or ""), parent=group, **SMALL)
        connect(inner_right, endpoint_y + middle, group_x - 2, y + replica_height / 2)
    connect(inner_right, top + middle - 12, group_x - 10, top + middle - 12, "reconciles")

    if prometheus:
        targets = prometheus.targets
        up = sum(1 for t in targets if str(t.get("health", "up")).lower() == "up")
        scraped = (
            f"{up} of {len(targets)} targets up" if targets else "no scrape yet when the state was saved"
        )
        labelled_box(inner_x, prometheus_y, "Prometheus", scraped, cls="prometheus")
        connect(
            inner_right, prometheus_y + middle, group_x + box_width / 2, top + group_height - 6, dashed=True
        )
        canvas.text(inner_right + 12, prometheus_y + middle + 16, "scrapes /metrics", **SMALL)
    else:
        not_running = "not running (metrics scraped directly)"
        labelled_box(inner_x, prometheus_y, "Prometheus", not_running, fill="#ffffff", cls="prometheus")
    return canvas.markup()


def _axis(
    canvas: Canvas, area: tuple[float, float, float, float], ticks: list[float], label: str, *, vertical: bool
) -> None:
    """Grid lines and tick labels for one axis of a chart area (left, top, right, bottom)."""
    left, top, right, bottom = area
    span = ticks[-1] or 1
    for tick in ticks:
        if vertical:
            y = bottom - (bottom - top) * tick / span
            canvas.add("line", x1=left, y1=y, x2=right, y2=y, stroke=GRID)
            canvas.text(left - 6, y + 4, tick_label(tick), text_anchor="end", **SMALL)
        else:
            x = left + (right - left) * tick / span
            canvas.add("line", x1=x, y1=top, x2=x, y2=bottom, stroke=GRID)
            canvas.text(x, bottom + 16, tick_label(tick), text_anchor="middle", **SMALL)
    if vertical:
        middle = (top + bottom) / 2
        canvas.text(
            14, middle, label, **SMALL, text_anchor="middle", transform=f"rotate(-90 14 {middle:.1f})"
        )
    else:
        canvas.text((left + right) / 2, bottom + 34, label, **SMALL, text_anchor="middle")


@dataclass(frozen=True)
class Interval:
    """One bar of an interval chart, in seconds on the chart's axis; `attributes` go on its <rect>."""

    start: float
    end: float
    colour: str
    opacity: float = 1.0
    attributes: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Lane:
    """One row of an interval chart: a label (and a note under it), its bars, and a remark at their end."""

    label: str
    intervals: Sequence[Interval]
    remark: str
    tooltip: str = ""
    note: str = ""
    tone: Literal["ink", "muted", "alarm"] = "ink"
    #: Attributes of the row's <g>, which holds its bars and remark.
    attributes: Mapping[str, str] = field(default_factory=dict)


def interval_chart(
    lanes: Sequence[Lane],
    *,
    element_id: str,
    title: str,
    axis_label: str,
    legend: Sequence[tuple[str, str]] = (),
) -> Markup:
    """Each lane's intervals on one shared axis of seconds, so lanes compare at a glance."""
    margin, bar_height = 16, 20
    row_height = 44 if any(lane.note for lane in lanes) else 30
    top = 34 if legend else 12
    longest = max((len(text) for lane in lanes for text in (lane.label, lane.note)), default=0)
    left = max(80, 24 + CHAR_WIDTH * longest)
    # Room on the right for the remark of the lane that reaches the end of the axis.
    right = WIDTH - margin - min(200, CHAR_WIDTH * max((len(lane.remark) for lane in lanes), default=0))
    bottom = top + len(lanes) * row_height
    horizon = max((bar.end for lane in lanes for bar in lane.intervals), default=0.0)
    ticks = nice_ticks(horizon or 1.0, 8)
    canvas = Canvas(WIDTH, bottom + 48, element_id=element_id, title=title)
    _axis(canvas, (left, top, right, bottom), ticks, axis_label, vertical=False)
    scale = (right - left) / (ticks[-1] or 1)
    for offset, (name, colour) in enumerate(legend):
        canvas.add("rect", x=left + offset * 240, y=6, width=12, height=12, rx=2, fill=colour)
        canvas.text(left + offset * 240 + 17, 16, name, fill=INK)
    for index, lane in enumerate(lanes):
        middle = top + index * row_height + row_height / 2
        label_y = middle - 2 if lane.note else middle + 4
        canvas.text(left - 10, label_y, lane.label, text_anchor="end", font_weight="600", fill=INK)
        if lane.note:
            canvas.text(left - 10, middle + 13, lane.note, text_anchor="end", **SMALL)
        group = canvas.add("g", parent=canvas.root, **lane.attributes)
        if lane.tooltip:
            canvas.add("title", lane.tooltip, parent=group)  # a native hover tooltip, which needs no script
        drawn = []
        for bar in lane.intervals:
            x, width = left + bar.start * scale, max((max(bar.end, bar.start) - bar.start) * scale, 2)
            drawn.append((x, x + width))
            canvas.add(
                "rect",
                parent=group,
                x=x,
                y=middle - bar_height / 2,
                width=width,
                height=bar_height,
                rx=3,
                fill=bar.colour,
                opacity=bar.opacity,
                **bar.attributes,
            )
        start_x = min((x for x, _ in drawn), default=left)
        end_x = max((end for _, end in drawn), default=left)
        # White inside the bars when it fits there, else after them in the lane's tone.
        inside = bool(drawn) and lane.intervals[-1].opacity == 1
        inside = inside and end_x - start_x > CHAR_WIDTH * len(lane.remark) + 12
        tone = {"ink": INK, "muted": MUTED, "alarm": look(Status.FAILURE).colour}[lane.tone]
        x, anchor, fill = (end_x - 6, "end", "#ffffff") if inside else (end_x + 6, "start", tone)
        weight = "700" if lane.tone == "alarm" else "400"
        style: dict[str, Any] = {"text_anchor": anchor, "fill": fill, "font_weight": weight, "font_size": 11}
        canvas.text(x, middle + 4, lane.remark, parent=group, **style)
    return canvas.markup()


def gantt(jobs: Sequence[JobRow], run_start: str | None, now: str) -> Markup:
    """One bar per job from its start to its finish (a running one: to `now`): parallel jobs overlap.

    A job kept from an earlier run gets its lane but no bar: that run may be a day ago, and an
    axis reaching back to it would shrink this run's bars to slivers.
    """
    lanes = []
    for job in jobs:
        running = job.status == Status.RUNNING
        start = elapsed(run_start, job.started_at)
        end = elapsed(run_start, job.finished_at or (now if running else None))
        if job.reused:
            lanes.append(Lane(job.name, (), f"{seconds(job.duration_seconds)} (earlier run)", tone="muted"))
            continue
        if start is None:
            lanes.append(Lane(job.name, (), job.status, tone="muted"))
            continue
        end = start if end is None or end < start else end
        bar = Interval(
            start,
            end,
            look(job.status).colour,
            opacity=0.55 if running else 1,
            attributes={"class": "gantt-bar", "data-job": job.name},
        )
        remark = seconds(end - start) + (" (running)" if running else "")
        tooltip = f"{job.name}: {job.status}, +{start:.1f} s to +{end:.1f} s"
        lanes.append(Lane(job.name, (bar,), remark, tooltip))
    return interval_chart(
        lanes,
        element_id="gantt-chart",
        title="Gantt chart of the jobs, seconds since the first job started",
        axis_label="seconds since the first job started",
    )


def drift_timeline(drifts: Sequence[Drift]) -> Markup:
    """Each drift on its own clock: caused at 0, then detected (OutOfSync), then healed (Synced and Healthy).

    Lanes share one axis of seconds since their drift, so detection and healing times compare at a
    glance; the clock time each drift was caused is written under its name.
    """
    healing = look(Status.SUCCESS).colour
    lanes = []
    for index, drift in enumerate(drifts):
        detected = elapsed(drift.drift_at, drift.detected_at)
        healed = elapsed(drift.drift_at, drift.healed_at)
        intervals = []
        if detected is not None:
            intervals.append(Interval(0.0, detected, DETECTING, attributes={"class": "drift-detecting"}))
        if healed is not None:
            intervals.append(
                Interval(detected or 0.0, healed, healing, attributes={"class": "drift-healing"})
            )
        ok = healed is not None and drift.passed
        remark = (
            f"detected {seconds(detected)} · healed {seconds(healed)}"
            if ok
            else f"NOT healed{': ' + drift.error if drift.error else ''}"
        )
        lanes.append(
            Lane(
                drift.name or f"drift {index + 1}",
                intervals,
                mask_text(remark)[:60],  # masked first: a cut secret no longer matches its pattern
                f"{drift.name}: caused {drift.drift_at}, detected {drift.detected_at}, "
                f"healed {drift.healed_at}",
                note=f"caused {clock(drift.drift_at)}",
                tone="ink" if ok else "alarm",
                attributes={"class": "drift", "data-drift": drift.name},
            )
        )
    return interval_chart(
        lanes,
        element_id="drift-timeline",
        title="Drift timeline: seconds from each drift to its detection and its healing",
        axis_label="seconds since the drift was caused",
        legend=(("detecting (until OutOfSync)", DETECTING), ("healing (until Synced and Healthy)", healing)),
    )


def mermaid_gantt(jobs: Sequence[JobRow]) -> str:
    """The Gantt chart as Mermaid, which GitHub draws in comments and step summaries (no SVG there).

    Times are UTC wall-clock (Mermaid reads and shows them unconverted, so every reader sees UTC);
    a bar lasts at least a second to be seen. Jobs kept from an earlier run are left out, as in `gantt`.
    """
    rows = []
    for job in jobs:
        began, ended = moment(job.started_at), moment(job.finished_at)
        if began is None or job.reused:
            continue
        start = began.replace(microsecond=0)
        end = max(ended or start, start + timedelta(seconds=1))
        label = "".join(
            char if char.isalnum() or char in " -_" else " " for char in f"{job.name} {job.status}"
        )
        tag = look(job.status).mermaid
        rows.append(f"    {label} :{tag}, {start:%Y-%m-%d %H:%M:%S}, {end:%Y-%m-%d %H:%M:%S}")
    if not rows:
        return ""
    header = ["gantt", "    title Jobs (UTC)", f"    dateFormat {MERMAID_TIME}", "    axisFormat %H:%M:%S"]
    return "\n".join([*header, *rows])


@dataclass(frozen=True)
class Series:
    label: str
    colour: str
    points: Sequence[tuple[float, float]]


def line_chart(
    series: Sequence[Series], *, element_id: str, title: str, x_label: str, y_label: str
) -> Markup:
    """Lines of (x, y) points on shared axes starting at zero, with a title and a legend."""
    width, height, left, top = HALF_WIDTH, 270, 56, 50
    right, bottom = width - 14, height - 46
    xs = [x for line in series for x, _ in line.points]
    ys = [y for line in series for _, y in line.points]
    x_ticks, y_ticks = nice_ticks(max(xs, default=1.0), 6), nice_ticks(max(ys, default=1.0), 5)
    canvas = Canvas(width, height, element_id=element_id, title=title)
    canvas.text(left - 40, 18, title, font_weight="600", font_size=13, fill=INK)
    _axis(canvas, (left, top, right, bottom), y_ticks, y_label, vertical=True)
    _axis(canvas, (left, top, right, bottom), x_ticks, x_label, vertical=False)

    def share(value: float, ticks: list[float]) -> float:
        """Where `value` sits along an axis, 0 to 1: a value the axis cannot hold sits at its end."""
        fraction = value / ticks[-1] if ticks[-1] else 0.0
        return min(max(fraction, 0.0), 1.0) if math.isfinite(fraction) else 0.0

    def place(x: float, y: float) -> tuple[float, float]:
        return left + (right - left) * share(x, x_ticks), bottom - (bottom - top) * share(y, y_ticks)

    legend_x = left
    for line in series:
        placed = [place(x, y) for x, y in line.points]
        attributes: dict[str, Any] = {"class_": "series", "data_series": line.label}
        if len(placed) == 1:  # a line through one point draws nothing
            cx, cy = placed[0]
            canvas.add("circle", cx=f"{cx:.1f}", cy=f"{cy:.1f}", r=3, fill=line.colour, **attributes)
        elif placed:
            canvas.add(
                "polyline",
                points=" ".join(f"{x:.1f},{y:.1f}" for x, y in placed),
                fill="none",
                stroke=line.colour,
                stroke_width=2,
                stroke_linejoin="round",
                **attributes,
            )
        canvas.add("rect", x=legend_x, y=28, width=12, height=12, rx=2, fill=line.colour)
        canvas.text(legend_x + 17, 38, line.label, fill=INK)
        legend_x += 30 + 7 * len(line.label)
    return canvas.markup()
