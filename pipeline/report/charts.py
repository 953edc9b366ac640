"""The report's drawings, as inline SVG: job graph, environment, Gantt chart, line charts, drift timeline.

Every figure is computed from the `Report` (never typed in); each chart has a stable element id
that the browser test looks for.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, timedelta
from typing import Any

from markupsafe import Markup

from pipeline.report.collect import JobRow
from pipeline.report.formats import clock, elapsed, moment, seconds
from pipeline.report.svg import Canvas, nice_ticks, status_colour, tick_label

WIDTH = 1100
#: Line charts come in pairs, side by side.
HALF_WIDTH = 540
MUTED = "#57606a"
GRID = "#d8dee4"
INK = "#1f2328"
#: Mermaid's (day.js) spelling of the time format the Markdown Gantt chart uses.
MERMAID_TIME = "YYYY-MM-DD HH:mm:ss"


def _text_colour(fill: str) -> str:
    return INK if fill in (status_colour("pending"), status_colour("skipped")) else "#ffffff"


def job_graph(jobs: Sequence[JobRow]) -> Markup:
    """The pipeline's jobs as a left-to-right graph of needs, each node coloured by its status."""
    node_width, node_height, column_gap, row_gap, margin = 172, 48, 56, 14, 12
    columns: dict[int, list[JobRow]] = {}
    for job in jobs:
        columns.setdefault(job.depth, []).append(job)
    rows = max((len(column) for column in columns.values()), default=1)
    height = margin * 2 + rows * node_height + (rows - 1) * row_gap
    width = margin * 2 + len(columns) * node_width + (len(columns) - 1) * column_gap
    canvas = Canvas(
        width, height, element_id="job-graph", title="Job graph: each job after the jobs it needs"
    )
    arrow = canvas.arrow_marker()
    where: dict[str, tuple[float, float]] = {}
    for depth, column in sorted(columns.items()):
        top = (height - (len(column) * node_height + (len(column) - 1) * row_gap)) / 2
        for index, job in enumerate(column):
            where[job.name] = (
                margin + depth * (node_width + column_gap),
                top + index * (node_height + row_gap),
            )
    for job in jobs:
        x, y = where[job.name]
        for need in job.needs:
            if need not in where:
                continue
            nx, ny = where[need]
            skips_columns = job.depth - next(row.depth for row in jobs if row.name == need) > 1
            start, end = (nx + node_width, ny + node_height / 2), (x - 2, y + node_height / 2)
            middle = (start[0] + end[0]) / 2
            canvas.add(
                "path",
                d=f"M {start[0]:.1f} {start[1]:.1f} "
                f"C {middle:.1f} {start[1]:.1f}, {middle:.1f} {end[1]:.1f}, {end[0]:.1f} {end[1]:.1f}",
                fill="none",
                stroke=MUTED,
                stroke_width=1.5,
                stroke_opacity=0.35 if skips_columns else 1,
                marker_end=arrow,
            )
    for job in jobs:
        x, y = where[job.name]
        fill = status_colour(job.status)
        group = canvas.add(
            "g",
            class_="job-node",
            data_job=job.name,
            data_status=job.status,
            opacity=0.5 if job.reused else 1,
        )
        canvas.tooltip(group, f"{job.name}: {job.status}, {seconds(job.duration_seconds)}")
        canvas.add("rect", parent=group, x=x, y=y, width=node_width, height=node_height, rx=8, fill=fill)
        ink = _text_colour(fill)
        canvas.add(
            "text", job.name, parent=group, x=x + 12, y=y + 20, fill=ink, font_weight="600", font_size=14
        )
        canvas.add(
            "text",
            f"{job.status} · {seconds(job.duration_seconds)}" + (" · earlier" if job.reused else ""),
            parent=group,
            x=x + 12,
            y=y + 38,
            fill=ink,
        )
    return canvas.markup()


def environment(cluster: dict[str, Any]) -> Markup:
    """What deploy brought up: Git, the GitOps controller, the endpoint, the replicas and Prometheus."""
    target = str(cluster.get("target") or "?")
    replicas = [replica for replica in cluster.get("replicas") or [] if isinstance(replica, dict)]
    prometheus = cluster.get("prometheus") if isinstance(cluster.get("prometheus"), dict) else None
    box_width, box_height, gap = 230, 58, 34
    column_x = (16, 16 + box_width + 70, 16 + 2 * box_width + 70 + 90)
    replica_height, replica_gap = 44, 10
    group_height = 34 + max(len(replicas), 1) * (replica_height + replica_gap)
    height = max(3 * box_height + 2 * gap, group_height + box_height / 2) + 40
    canvas = Canvas(
        column_x[2] + box_width + 16,
        height,
        element_id="environment-diagram",
        title=f"Deployed environment on the {target} target",
    )
    arrow = canvas.arrow_marker()
    top = 20

    def labelled_box(x: float, y: float, title: str, detail: str, *, fill="#f6f8fa", stroke=GRID, cls=""):
        group = canvas.add("g", class_=cls or "box")
        canvas.add(
            "rect", parent=group, x=x, y=y, width=box_width, height=box_height, rx=8, fill=fill, stroke=stroke
        )
        canvas.add("text", title, parent=group, x=x + 12, y=y + 23, font_weight="600", font_size=14, fill=INK)
        canvas.add("text", detail, parent=group, x=x + 12, y=y + 43, fill=MUTED)
        return group

    def connect(x1: float, y1: float, x2: float, y2: float, label: str = "", dashed: bool = False) -> None:
        canvas.add(
            "line",
            x1=x1,
            y1=y1,
            x2=x2,
            y2=y2,
            stroke=MUTED,
            stroke_width=1.5,
            marker_end=arrow,
            stroke_dasharray="5 4" if dashed else "none",
        )
        if label:
            canvas.text(
                (x1 + x2) / 2,
                min(y1, y2) - 6 if y1 == y2 else (y1 + y2) / 2 - 6,
                label,
                fill=MUTED,
                font_size=11,
                text_anchor="middle",
            )

    sync, health = cluster.get("sync") or "?", cluster.get("health") or "?"
    healthy = sync == "Synced" and health == "Healthy"
    controller = "Argo CD" if target in ("kind", "minikube") else "Reconciler (local GitOps)"
    labelled_box(column_x[0], top, "Git: desired state", f"gitops/overlays/{target}")
    labelled_box(
        column_x[1],
        top,
        controller,
        f"{sync} · {health}",
        fill="#dafbe1" if healthy else "#ffebe9",
        stroke=status_colour("success" if healthy else "failure"),
        cls="controller",
    )
    connect(column_x[0] + box_width, top + box_height / 2, column_x[1] - 2, top + box_height / 2, "syncs")

    endpoint_y = top + box_height + gap
    labelled_box(column_x[0], endpoint_y, "Clients", "one address for every replica")
    labelled_box(column_x[1], endpoint_y, "Endpoint", str(cluster.get("endpoint") or "?"), cls="endpoint")
    connect(
        column_x[0] + box_width, endpoint_y + box_height / 2, column_x[1] - 2, endpoint_y + box_height / 2
    )

    ready = sum(bool(replica.get("ready")) for replica in replicas)
    group_x, group_y = column_x[2], top
    canvas.add(
        "rect",
        x=group_x - 8,
        y=group_y - 8,
        width=box_width + 16,
        height=group_height,
        rx=10,
        fill="none",
        stroke=GRID,
        stroke_dasharray="6 4",
    )
    canvas.text(
        group_x, group_y + 10, f"Replicas: {ready} of {len(replicas)} ready", font_weight="600", fill=INK
    )
    for index, replica in enumerate(replicas):
        y = group_y + 24 + index * (replica_height + replica_gap)
        colour = status_colour("success" if replica.get("ready") else "failure")
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
        canvas.add(
            "text",
            str(replica.get("name") or f"replica {index}"),
            parent=group,
            x=group_x + 28,
            y=y + 18,
            font_weight="600",
            fill=INK,
        )
        canvas.add(
            "text",
            str(replica.get("url") or ""),
            parent=group,
            x=group_x + 28,
            y=y + 34,
            fill=MUTED,
            font_size=11,
        )
        connect(column_x[1] + box_width, endpoint_y + box_height / 2, group_x - 2, y + replica_height / 2)
    connect(
        column_x[1] + box_width,
        top + box_height / 2 - 12,
        group_x - 10,
        top + box_height / 2 - 12,
        "reconciles",
    )

    prometheus_y = endpoint_y + box_height + gap
    if prometheus:
        targets = [t for t in prometheus.get("targets") or [] if t is not None]
        up = sum(1 for t in targets if not isinstance(t, dict) or str(t.get("health", "up")).lower() == "up")
        labelled_box(
            column_x[1],
            prometheus_y,
            "Prometheus",
            f"{up} of {len(targets)} targets up" if targets else "no scrape yet when the state was saved",
            cls="prometheus",
        )
        connect(
            column_x[1] + box_width,
            prometheus_y + box_height / 2,
            group_x + box_width / 2,
            group_y - 8 + group_height + 2,
            dashed=True,
        )
        canvas.text(
            column_x[1] + box_width + 12,
            prometheus_y + box_height / 2 + 16,
            "scrapes /metrics",
            fill=MUTED,
            font_size=11,
        )
    else:
        labelled_box(
            column_x[1],
            prometheus_y,
            "Prometheus",
            "not running (metrics scraped directly)",
            fill="#ffffff",
            cls="prometheus",
        )
    return canvas.markup()


def _axis(
    canvas: Canvas,
    *,
    left: float,
    right: float,
    top: float,
    bottom: float,
    ticks: list[float],
    label: str,
    vertical: bool,
) -> None:
    """Grid lines and tick labels for one axis of a chart area."""
    span = ticks[-1] or 1
    for tick in ticks:
        if vertical:
            y = bottom - (bottom - top) * tick / span
            canvas.add("line", x1=left, y1=y, x2=right, y2=y, stroke=GRID)
            canvas.text(left - 6, y + 4, tick_label(tick), text_anchor="end", fill=MUTED, font_size=11)
        else:
            x = left + (right - left) * tick / span
            canvas.add("line", x1=x, y1=top, x2=x, y2=bottom, stroke=GRID)
            canvas.text(x, bottom + 16, tick_label(tick), text_anchor="middle", fill=MUTED, font_size=11)
    if vertical:
        canvas.text(
            14,
            (top + bottom) / 2,
            label,
            fill=MUTED,
            font_size=11,
            text_anchor="middle",
            transform=f"rotate(-90 14 {(top + bottom) / 2:.1f})",
        )
    else:
        canvas.text((left + right) / 2, bottom + 34, label, fill=MUTED, font_size=11, text_anchor="middle")


def gantt(jobs: Sequence[JobRow], run_start: str | None, now: str) -> Markup:
    """One bar per job from its start to its finish, on a shared time axis: parallel jobs overlap."""
    label_width, row_height, top, margin = 80, 30, 12, 16
    spans = []
    for job in jobs:
        start = elapsed(run_start, job.started_at)
        end = elapsed(run_start, job.finished_at or (now if job.status == "running" else None))
        spans.append((job, start, end))
    horizon = max((end for _, start, end in spans if end is not None), default=0.0)
    ticks = nice_ticks(horizon or 1.0, 6)
    height = top + len(jobs) * row_height + 48
    left, right = label_width, WIDTH - margin
    canvas = Canvas(
        WIDTH,
        height,
        element_id="gantt-chart",
        title="Gantt chart of the jobs, seconds since the first job started",
    )
    bottom = top + len(jobs) * row_height
    _axis(
        canvas,
        left=left,
        right=right,
        top=top,
        bottom=bottom,
        ticks=ticks,
        label="seconds since the first job started",
        vertical=False,
    )
    scale = (right - left) / (ticks[-1] or 1)
    for index, (job, start, end) in enumerate(spans):
        y = top + index * row_height
        canvas.text(
            label_width - 10, y + row_height / 2 + 4, job.name, text_anchor="end", font_weight="600", fill=INK
        )
        if start is None:
            canvas.text(left + 6, y + row_height / 2 + 4, job.status, fill=MUTED, font_style="italic")
            continue
        end = start if end is None or end < start else end
        x, bar_width = left + start * scale, max((end - start) * scale, 2)
        bar = canvas.add(
            "rect",
            x=x,
            y=y + 5,
            width=bar_width,
            height=row_height - 10,
            rx=3,
            fill=status_colour(job.status),
            class_="gantt-bar",
            data_job=job.name,
            opacity=0.35 if job.reused else 0.55 if job.status == "running" else 1,
        )
        canvas.tooltip(bar, f"{job.name}: {job.status}, +{start:.1f} s to +{end:.1f} s")
        label = seconds(end - start) + (" (running)" if job.status == "running" else "")
        label += " (earlier run)" if job.reused else ""
        inside = bar_width > 7 * len(label) + 12 and not job.reused and job.status != "running"
        canvas.text(
            x + bar_width - 6 if inside else x + bar_width + 6,
            y + row_height / 2 + 4,
            label,
            text_anchor="end" if inside else "start",
            fill="#ffffff" if inside else INK,
            font_size=11,
        )
    return canvas.markup()


def mermaid_gantt(jobs: Sequence[JobRow]) -> str:
    """The Gantt chart as Mermaid, which GitHub draws in comments and step summaries (no SVG there).

    Times are UTC wall-clock (Mermaid reads and shows them unconverted, so every reader sees UTC);
    a bar lasts at least a second to be seen.
    """
    rows = []
    for job in jobs:
        began, ended = moment(job.started_at), moment(job.finished_at)
        if began is None:
            continue
        start = began.astimezone(UTC).replace(microsecond=0)
        end = max(ended.astimezone(UTC) if ended else start, start + timedelta(seconds=1))
        tag = {"failure": "crit", "timed_out": "crit", "cancelled": "crit", "running": "active"}.get(
            job.status, "done"
        )
        label = "".join(
            char if char.isalnum() or char in " -_" else " " for char in f"{job.name} {job.status}"
        )
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
    _axis(canvas, left=left, right=right, top=top, bottom=bottom, ticks=y_ticks, label=y_label, vertical=True)
    _axis(
        canvas, left=left, right=right, top=top, bottom=bottom, ticks=x_ticks, label=x_label, vertical=False
    )

    def place(x: float, y: float) -> str:
        return (
            f"{left + (right - left) * x / (x_ticks[-1] or 1):.1f},"
            f"{bottom - (bottom - top) * y / (y_ticks[-1] or 1):.1f}"
        )

    legend_x = left
    for line in series:
        if line.points:
            canvas.add(
                "polyline",
                points=" ".join(place(x, y) for x, y in line.points),
                fill="none",
                stroke=line.colour,
                stroke_width=2,
                stroke_linejoin="round",
                class_="series",
                data_series=line.label,
            )
        canvas.add("rect", x=legend_x, y=28, width=12, height=12, rx=2, fill=line.colour)
        canvas.text(legend_x + 17, 38, line.label, fill=INK)
        legend_x += 30 + 7 * len(line.label)
    return canvas.markup()


def drift_timeline(drifts: Sequence[dict[str, Any]]) -> Markup:
    """Each drift on its own clock: caused at 0, then detected (OutOfSync), then healed (Synced and Healthy).

    Rows share one axis of seconds since their drift, so detection and healing times compare at a
    glance; the clock time each drift was caused is written beside its name.
    """
    label_width, row_height, top, margin = 190, 44, 34, 16
    left, right = label_width, WIDTH - margin - 190
    offsets = [
        {key: elapsed(drift.get("drift_at"), drift.get(key)) for key in ("detected_at", "healed_at")}
        for drift in drifts
    ]
    horizon = max((value for row in offsets for value in row.values() if value is not None), default=1.0)
    ticks = nice_ticks(horizon or 1.0, 8)
    bottom = top + len(drifts) * row_height
    canvas = Canvas(
        WIDTH,
        bottom + 48,
        element_id="drift-timeline",
        title="Drift timeline: seconds from each drift to its detection and its healing",
    )
    _axis(
        canvas,
        left=left,
        right=right,
        top=top,
        bottom=bottom,
        ticks=ticks,
        label="seconds since the drift was caused",
        vertical=False,
    )
    scale = (right - left) / (ticks[-1] or 1)
    detecting, healing, failed = "#bf8700", status_colour("success"), status_colour("failure")
    for offset, (name, colour) in enumerate(
        (("detecting (until OutOfSync)", detecting), ("healing (until Synced and Healthy)", healing))
    ):
        canvas.add("rect", x=left + offset * 240, y=6, width=12, height=12, rx=2, fill=colour)
        canvas.text(left + offset * 240 + 17, 16, name, fill=INK)
    for index, (drift, times) in enumerate(zip(drifts, offsets, strict=True)):
        y = top + index * row_height
        middle = y + row_height / 2
        canvas.text(
            label_width - 12,
            middle - 2,
            str(drift.get("name") or f"drift {index + 1}"),
            text_anchor="end",
            font_weight="600",
            fill=INK,
        )
        canvas.text(
            label_width - 12,
            middle + 13,
            f"caused {clock(drift.get('drift_at'))}",
            text_anchor="end",
            fill=MUTED,
            font_size=11,
        )
        group = canvas.add("g", class_="drift", data_drift=str(drift.get("name")))
        detected, healed = times["detected_at"], times["healed_at"]
        if detected is not None:
            canvas.add(
                "rect",
                parent=group,
                x=left,
                y=middle - 9,
                width=max(detected * scale, 2),
                height=18,
                fill=detecting,
                class_="drift-detecting",
            )
        if healed is not None:
            begin = detected or 0.0
            canvas.add(
                "rect",
                parent=group,
                x=left + begin * scale,
                y=middle - 9,
                width=max((healed - begin) * scale, 2),
                height=18,
                fill=healing,
                class_="drift-healing",
            )
        canvas.tooltip(
            group,
            f"{drift.get('name')}: caused {drift.get('drift_at')}, detected "
            f"{drift.get('detected_at')}, healed {drift.get('healed_at')}",
        )
        ok = healed is not None and drift.get("passed", True)
        summary = (
            f"detected {seconds(detected)} · healed {seconds(healed)}"
            if ok
            else f"NOT healed{': ' + str(drift['error']) if drift.get('error') else ''}"
        )
        canvas.text(
            right + 14,
            middle + 4,
            summary[:60],
            fill=INK if ok else failed,
            font_weight="400" if ok else "700",
            font_size=12,
        )
    return canvas.markup()
