"""The import rules: an import only goes down the layers, parts stay apart, nothing reads Git at import.

Layers, bottom up: vocabulary; gitops; parts (build, scan, targets, checks, report), which never
import one another; jobs, which never import another job (only the shared `pipeline.jobs._*`);
entry points (runner, progress, workflow, lint, docgen, every `__main__`, tasks.py, noxfile.py).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
VOCABULARY = (
    "graph",
    "context",
    "record",
    "contracts",
    "artifacts",
    "scrub",
    "timestamps",
    "ports",
    "release",
    "status",
    "samples",
    "settings",
)
PARTS = ("build", "scan", "targets", "checks", "report")
ENTRY_POINTS = ("runner", "progress", "workflow", "lint", "docgen")
ENTRY = 5


def _modules() -> dict[str, Path]:
    found = {"tasks": REPO_ROOT / "tasks.py", "noxfile": REPO_ROOT / "noxfile.py"}
    for path in sorted((REPO_ROOT / "pipeline").rglob("*.py")):
        parts = path.relative_to(REPO_ROOT).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def layer(module: str) -> tuple[int, str]:
    """(layer, part) of a module: the part names which of the parts it belongs to."""
    names = module.split(".")
    if module in ("tasks", "noxfile") or names[-1] == "__main__":
        return ENTRY, ""
    top = names[1] if len(names) > 1 else ""
    if top in VOCABULARY or module == "pipeline":
        return 1, ""
    if top == "gitops":
        return 2, ""
    if top in PARTS:
        return 3, top
    if top == "jobs":
        return 4, module
    if top in ENTRY_POINTS:
        return ENTRY, ""
    raise AssertionError(f"{module} has no layer; add it to tests/engine/test_layers.py")


def _imports(path: Path) -> set[str]:
    imported = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            imported |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            imported.add(node.module)
            imported |= {f"{node.module}.{alias.name}" for alias in node.names}
    return imported


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The project module an import names (`from a import b` may name a module or an attribute)."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def violations() -> list[str]:
    modules = _modules()
    found = []
    for module, path in modules.items():
        own_layer, own_part = layer(module)
        for name in sorted(_imports(path)):
            target = _resolve(name, modules)
            if target is None or target == module or module.startswith(f"{target}."):
                continue
            their_layer, their_part = layer(target)
            if their_layer > own_layer:
                found.append(f"{module} (layer {own_layer}) imports {target} (layer {their_layer})")
            elif their_layer == own_layer == 3 and their_part != own_part:
                found.append(f"{module} ({own_part}) imports {target}, another part ({their_part})")
            elif their_layer == own_layer == 4 and not target.split(".")[-1].startswith("_"):
                found.append(f"{module} imports another job, {target}")
    return found


def test_no_import_goes_up_and_parts_and_jobs_stay_apart() -> None:
    assert violations() == []


def test_the_rules_catch_an_upward_import(monkeypatch: pytest.MonkeyPatch) -> None:
    original = _imports
    monkeypatch.setitem(
        globals(),
        "_imports",
        lambda path: original(path) | ({"pipeline.jobs.build"} if path.name == "drift.py" else set()),
    )
    assert violations() == ["pipeline.checks.drift (layer 3) imports pipeline.jobs.build (layer 4)"]


IMPORT_EVERYTHING = """
import importlib, pathlib, sys
watched = [str(pathlib.Path(d).resolve()) for d in sys.argv[1:]]
read = []
sys.addaudithook(
    lambda event, args: event == "open" and isinstance(args[0], str)
    and any(str(pathlib.Path(args[0]).resolve()).startswith(d) for d in watched) and read.append(args[0])
)
for name in sys.stdin.read().split():
    importlib.import_module(name)
print("\\n".join(read))
"""


def test_importing_every_module_reads_nothing_under_gitops_or_observability() -> None:
    names = [
        module
        for module, path in _modules().items()
        if module.startswith("pipeline")
        and not path.name.startswith(("test_", "conftest"))
        # Scripts other programs run, not modules: __main__, and Locust's file (gevent patches on import).
        and path.name not in ("__main__.py", "locustfile.py")
    ]
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            IMPORT_EVERYTHING,
            str(REPO_ROOT / "gitops"),
            str(REPO_ROOT / "observability"),
        ],
        input="\n".join(names),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", f"read at import time:\n{result.stdout}"
