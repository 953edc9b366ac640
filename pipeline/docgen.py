"""Documentation pages made from code: `python -m pipeline.docgen` rewrites them, `--check` fails when stale.

docs/configuration.md lists every environment variable, read from the code itself:
- PIPELINE_*: pipeline/settings.py's table, parsed: each default and the `#:` comment above it, without
  which the generator stops (tests/engine/test_docs.py compares the table with the code).
- INVOKE_PIPELINE_*: tasks.py's `ns.configure` (invoke maps INVOKE_PIPELINE_<KEY> to c.pipeline.<key>),
  described by the tasks' `help=`. tasks.py is imported, because its help texts are built from the graph.
- ML_INFERENCE_*: the service's pydantic `Settings` (env_prefix + field name), parsed, not imported, so the
  service's dependencies need not be installed here.

docs/artifacts.md lists every file one job writes for another, from pipeline/contracts.py's models:
each field with its type as written, whether it is required, and the `#:` comment above it.
"""

from __future__ import annotations

import argparse
import ast
import difflib
import importlib
import itertools
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
SETTINGS = Path("pipeline/settings.py")
SERVICE_SOURCES = Path("services/ml-inference/src")


@dataclass(frozen=True)
class Variable:
    name: str
    default: str
    description: str
    owner: str


class Module:
    """One parsed source file and its `#:` comments."""

    def __init__(self, path: Path, root: Path) -> None:
        self.name = ".".join(path.relative_to(root).with_suffix("").parts).removesuffix(".__init__")
        self.lines = path.read_text().splitlines()
        self.tree = ast.parse("\n".join(self.lines), filename=str(path))

    def comment_above(self, lineno: int) -> str:
        """The `#:` lines right above line `lineno` (1-based), joined."""
        above = [line.strip() for line in reversed(self.lines[: lineno - 1])]
        comments = itertools.takewhile(lambda line: line.startswith("#:"), above)
        return " ".join(reversed([line[2:].strip() for line in comments]))


def _default(node: ast.expr | None) -> str:
    """A default as a table cell: a literal, also inside `Path(...)` or pydantic's `Field(default=...)`."""
    if isinstance(node, ast.Call) and ast.unparse(node.func) in ("Field", "Path"):
        defaults = [k.value for k in node.keywords if k.arg == "default"]
        node = next(iter(defaults), node.args[0] if node.args else None)
    if node is None:
        return "(unset)"
    try:
        value = ast.literal_eval(node)
    except ValueError:
        return f"`{ast.unparse(node)}`"
    return "(empty)" if value == "" else "(unset)" if value is None else f"`{value}`"


def pipeline_variables(root: Path = REPO_ROOT) -> list[Variable]:
    """Every PIPELINE_* variable declared in pipeline/settings.py, described by the `#:` comment above it."""
    module = Module(root / SETTINGS, root)
    (table,) = (
        node.value
        for node in module.tree.body
        if isinstance(node, ast.AnnAssign) and ast.unparse(node.target) == "DEFAULTS"
    )
    variables = []
    for key, value in zip(getattr(table, "keys", []), getattr(table, "values", []), strict=True):
        description = module.comment_above(key.lineno)
        if not description:
            raise SystemExit(f"{key.value} has no description: add a `#:` comment above it in {SETTINGS}")
        variables.append(Variable(key.value, _default(value), description, module.name))
    return sorted(variables, key=lambda variable: variable.name)


def invoke_variables() -> list[Variable]:
    """INVOKE_PIPELINE_<KEY> for every key of tasks.py's `pipeline` configuration."""
    tasks = importlib.import_module("tasks")
    helps: dict[str, str] = {}
    for task in sorted(tasks.ns.tasks.values(), key=lambda task: task.name != "pipeline"):
        for key, text in task.help.items():
            helps.setdefault(key, text)  # the pipeline task's words first: its flags are these settings
    variables = []
    for key, value in sorted(tasks.ns.configuration()["pipeline"].items()):
        flag = key.replace("_", "-")
        if flag not in helps:
            raise SystemExit(f"tasks.py: c.pipeline.{key} has no help= entry on any task; add one")
        variables.append(Variable(f"INVOKE_PIPELINE_{key.upper()}", f"`{value}`", helps[flag], "tasks"))
    return variables


def service_variables(root: Path = REPO_ROOT) -> list[Variable]:
    """ML_INFERENCE_* from every pydantic BaseSettings class in the service's source."""
    variables = []
    for path in sorted((root / SERVICE_SOURCES).rglob("*.py")):
        module = Module(path, root / SERVICE_SOURCES)
        for cls in (n for n in module.tree.body if isinstance(n, ast.ClassDef)):
            if not any(ast.unparse(base).endswith("BaseSettings") for base in cls.bases):
                continue
            configs = [
                getattr(n, "value", None) for n in cls.body if ast.unparse(n).startswith("model_config")
            ]
            prefixes = [k.value for c in configs for k in getattr(c, "keywords", []) if k.arg == "env_prefix"]
            prefix = ast.literal_eval(prefixes[0]) if prefixes else ""  # pydantic's own default
            for field in cls.body:
                if not isinstance(field, ast.AnnAssign) or ast.unparse(field.target) == "model_config":
                    continue
                name = f"{prefix}{ast.unparse(field.target)}".upper()
                keywords = getattr(field.value, "keywords", [])
                descriptions = [k.value.value for k in keywords if k.arg == "description"]
                description = module.comment_above(field.lineno) or next(iter(descriptions), "")
                if not description:
                    raise SystemExit(f"{name} has no description: add a `#:` comment above it in {path}")
                variables.append(Variable(name, _default(field.value), description, module.name))
    return variables


def _cell(text: str) -> str:
    """A description as a table cell: a sentence, with the column separator escaped."""
    text = text[:1].upper() + text[1:] if text[:1].islower() else text
    return (text if text.endswith(".") else f"{text}.").replace("|", "\\|").replace("<", "&lt;")


CONFIGURATION_PAGE = """\
# Configuration

Every `PIPELINE_*`, `INVOKE_PIPELINE_*` and `ML_INFERENCE_*` variable the pipeline, its invoke tasks
and the service read: default, meaning, owner. Besides these, the build reads `BASE_IMAGE` (the image
to build on, as `--base-image` would; unset, the Dockerfile's `python:3.11-slim-bookworm`), and in
GitHub Actions the jobs read the runner's `GITHUB_*` variables.

> Generated from the code by `python -m pipeline.docgen`; do not edit it by hand. Describe a
> variable where it is defined (a `#:` comment in `pipeline/settings.py` or a service `Settings`
> field, a `help=` text) and regenerate; `python -m pipeline.docgen --check` and
> `tests/engine/test_docs.py` fail when it is stale.

A yes/no variable takes 1, true, yes or on for yes and 0, false, no or off for no, in any case;
any other value is refused. A `PIPELINE_*` variable set empty counts as unset. Command-line flags
override these variables. `INVOKE_PIPELINE_*` variables override an `invoke.yaml`, which overrides the
defaults in `tasks.py`.

| variable | default | what it does | owner |
| --- | --- | --- | --- |
"""


def configuration_page(root: Path = REPO_ROOT) -> str:
    rows = [*pipeline_variables(root), *invoke_variables(), *service_variables(root)]
    table = "".join(f"| `{v.name}` | {v.default} | {_cell(v.description)} | `{v.owner}` |\n" for v in rows)
    return CONFIGURATION_PAGE + table


ARTIFACTS_PAGE = """\
# Artifacts

The files one job writes for another job or for the report, as `pipeline/contracts.py` defines them.

> Generated from the contracts by `python -m pipeline.docgen`; do not edit it by hand. Describe a
> field with a `#:` comment above it and regenerate; `tests/engine/test_docs.py` fails when it is stale.

Each file carries `schema_version`. A reader takes every version up to its own and gives the fields
an older file lacks their defaults; a file of a newer version is shown as "written by a newer
pipeline (schema N), cannot read". `<artifact>/outputs.json` is a flat map of strings mirrored into
`$GITHUB_OUTPUT`, so it has no version; each job's fields are checked when it writes them.
"""


def _model_section(model: type, module: Module, top: bool) -> str:
    """One model: its file (or name) and description, then a row per field with its `#:` comment."""
    classes = {node.name: node for node in module.tree.body if isinstance(node, ast.ClassDef)}
    fields: dict[str, tuple[str, str]] = {}  # name -> (annotation as written, comment)
    for cls in reversed(model.__mro__):
        for node in getattr(classes.get(cls.__name__), "body", []):
            if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                fields[node.target.id] = (ast.unparse(node.annotation), module.comment_above(node.lineno))
    title, _, about = (
        (model.__doc__ or "").partition(": ") if top else (f"`{model.__name__}`", "", model.__doc__)
    )
    lines = [f"\n{'##' if top else '###'} {title}\n\n"]
    if about:
        lines.append(f"{_cell(' '.join(about.split()))}\n\n")
    lines.append("| field | type | required | description |\n| --- | --- | --- | --- |\n")
    for field in importlib.import_module("msgspec").structs.fields(model):
        kind, comment = fields[field.name]
        required = "yes" if field.required else "no"
        kind = kind.replace("|", "\\|")  # a column separator, even inside code
        lines.append(f"| `{field.name}` | `{kind}` | {required} | {_cell(comment) if comment else ''} |\n")
    return "".join(lines)


def artifacts_page(root: Path = REPO_ROOT) -> str:
    """Each contract of pipeline/contracts.py, then the models its fields name, one table each."""
    contracts = importlib.import_module("pipeline.contracts")
    module = Module(root / "pipeline" / "contracts.py", root)
    files = [*contracts.FILES.values(), *contracts.OUTPUTS.values()]
    sections = [ARTIFACTS_PAGE, *(_model_section(model, module, top=True) for model in files)]
    for node in module.tree.body:  # the models the files are made of, in the module's order
        model = getattr(contracts, node.name, None) if isinstance(node, ast.ClassDef) else None
        if not (isinstance(model, type) and issubclass(model, contracts.msgspec.Struct)):
            continue
        if model not in files and model is not contracts.Contract:
            sections.append(_model_section(model, module, top=False))
    return "".join(sections)


#: Every generated page and the function that writes it, relative to the repository root.
PAGES: dict[str, Callable[[Path], str]] = {
    "docs/artifacts.md": artifacts_page,
    "docs/configuration.md": configuration_page,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.docgen", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail with a diff when a page is stale")
    parser.add_argument("--root", type=Path, default=REPO_ROOT, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    stale = 0
    for page, render in PAGES.items():
        path, wanted = args.root / page, render(args.root)
        current = path.read_text() if path.exists() else ""
        if not args.check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(wanted)
            print(f"wrote {page}")
        elif current != wanted:
            stale += 1
            sys.stdout.writelines(
                difflib.unified_diff(
                    current.splitlines(keepends=True),
                    wanted.splitlines(keepends=True),
                    page,
                    f"{page} (generated)",
                )
            )
            print(f"{page} is stale: regenerate it with `python -m pipeline.docgen`", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
