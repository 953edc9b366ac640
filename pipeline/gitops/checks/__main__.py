"""`python -m pipeline.gitops.checks`: run every offline manifest check; exit 1 on any problem."""

from __future__ import annotations

import argparse
import sys

from pipeline.gitops.checks.suite import run


def _report(name: str, problems: list[str]) -> None:
    print(f"{'FAIL' if problems else 'ok  '}  {name}", flush=True)
    for problem in problems:
        print(f"      - {problem}", flush=True)


def main(argv: list[str] | None = None) -> int:
    argparse.ArgumentParser(prog="nox -s manifests --", description=__doc__.splitlines()[0]).parse_args(argv)
    results = run(_report)
    failed = sum(1 for problems in results.values() if problems)
    problems = sum(map(len, results.values()))
    print(f"\n{len(results) - failed} passed, {failed} failed ({problems} problems)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
