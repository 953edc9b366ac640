"""`python -m pipeline.gitops.checks.observability`: check observability/, or regenerate its snapshot."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipeline.gitops.checks import observability
from pipeline.gitops.checks.observability import promql
from pipeline.gitops.checks.observability.layout import EXPORTED_METRICS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.gitops.checks.observability", description=observability.__doc__
    )
    parser.add_argument("--metrics-file", type=Path, help="a /metrics text to take exported names from")
    parser.add_argument(
        "--update-exported-metrics",
        action="store_true",
        help=f"scrape the real service and rewrite {EXPORTED_METRICS}",
    )
    args = parser.parse_args(argv)
    repo_root = Path.cwd()
    if args.update_exported_metrics:
        names = promql.exported_series_names(promql.scrape_service())
        (repo_root / EXPORTED_METRICS).write_text(promql.render_exported_snapshot(names))
        print(f"wrote {EXPORTED_METRICS}")
        return 0
    metrics_text = args.metrics_file.read_text() if args.metrics_file else None
    problems = observability.check(repo_root, metrics_text)
    for problem in problems:
        print(f"observability: {problem}", file=sys.stderr)
    print(f"observability: {'FAILED' if problems else 'ok'} ({len(problems)} problems)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
