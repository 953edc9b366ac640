"""Documentation pages made from code: `python -m pipeline.docgen` rewrites them, `--check` fails when stale.

docs/configuration.md lists every environment variable, read from the code itself:
- PIPELINE_*: string constants read through `os.environ.get`/`os.environ[...]`/`getenv`, or module
  constants whose value is the variable's name, in pipeline/, tasks.py, noxfile.py and scripts/. The
  description is the `#:` comment above the name or above its default's definition, or the `help=`
  of the option it is the default of. A variable with none of them stops the generator.
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
import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
SCANNED_SOURCES = ("pipeline", "tasks.py", "noxfile.py", "scripts")
SERVICE_SOURCES = Path("services/ml-inference/src")
SETTING_NAME = re.compile(r"PIPELINE_[A-Z0-9_]*[A-Z0-9]")
UNSET = object()


@dataclass(frozen=True)
class Variable:
    name: str
    default: str
    description: str
    owner: str


class Module:
    """One parsed source file: its constants, what it imports, and its `#:` comments."""

    def __init__(self, path: Path, root: Path) -> None:
        self.path = path.relative_to(root)
        self.name = ".".join(self.path.with_suffix("").parts).removesuffix(".__init__")
        self.lines = path.read_text().splitlines()
        self.tree = ast.parse("\n".join(self.lines), filename=str(path))
        self.constants: dict[str, ast.stmt] = {}
        self.imports: dict[str, str] = {}
        for node in [
            *self.tree.body,
            *(n for c in self.tree.body if isinstance(c, ast.ClassDef) for n in c.body),
        ]:
            if (
                isinstance(node, ast.Assign)
                and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name)
            ):
                self.constants[node.targets[0].id] = node
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value:
                self.constants[node.target.id] = node
            elif isinstance(node, ast.ImportFrom) and node.module:
                self.imports.update((alias.asname or alias.name, node.module) for alias in node.names)

    def comment_above(self, lineno: int) -> str:
        """The `#:` lines right above line `lineno` (1-based), joined."""
        found: list[str] = []
        index = lineno - 2
        while index >= 0 and self.lines[index].strip().startswith("#:"):
            found.insert(0, self.lines[index].strip()[2:].strip())
            index -= 1
        return " ".join(found)


def _value(node: ast.AST | None, module: Module, index: dict[str, Module]) -> object:
    """A literal's value, following names to constants (imported ones too) and `obj.field` to class fields."""
    if node is None:
        return UNSET
    if isinstance(node, ast.Name | ast.Attribute):
        name = node.id if isinstance(node, ast.Name) else node.attr
        if name in module.constants:
            return _value(getattr(module.constants[name], "value", None), module, index)
        if isinstance(node, ast.Name) and module.imports.get(name) in index:
            return _value(ast.Name(id=name), index[module.imports[name]], index)
        return UNSET
    if isinstance(node, ast.JoinedStr):  # an f-string of constants, e.g. a URL with a pinned version
        parts = [
            _value(part.value if isinstance(part, ast.FormattedValue) else part, module, index)
            for part in node.values
        ]
        return UNSET if UNSET in parts else "".join(map(str, parts))
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "Field":
        default = next(
            (k.value for k in node.keywords if k.arg == "default"), node.args[0] if node.args else None
        )
        return _value(default, module, index)
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "Path"
        and node.args
    ):
        return _value(node.args[0], module, index)
    if isinstance(node, ast.Call) and ast.unparse(node.func) == "Path(__file__).with_name" and node.args:
        return (module.path.parent / str(_value(node.args[0], module, index))).as_posix()
    try:
        return ast.literal_eval(node)
    except ValueError:
        return UNSET


def _defined_at(node: ast.AST | None, module: Module) -> int | None:
    name = node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else None
    return module.constants[name].lineno if name in module.constants else None


def _render_default(value: object, node: ast.AST | None) -> str:
    if value is UNSET:
        return "(unset)" if node is None else f"`{ast.unparse(node)}`"
    return "(empty)" if value == "" else "(unset)" if value is None else f"`{value}`"


def _is_environ(node: ast.AST | None) -> bool:
    return (isinstance(node, ast.Name) and node.id == "environ") or (
        isinstance(node, ast.Attribute) and node.attr == "environ"
    )


@dataclass(frozen=True)
class _Site:
    """One place a variable is named: its module, default expression (if any) and description (if any)."""

    module: Module
    default: ast.AST | None
    description: str


def _environment_reads(module: Module) -> Iterator[tuple[ast.expr, ast.expr, ast.expr | None]]:
    """(read expression, key, default) for every `environ.get`, `getenv` and `environ[...]` in the module."""
    for node in ast.walk(module.tree):
        if isinstance(node, ast.Call) and node.args and isinstance(node.func, ast.Attribute | ast.Name):
            function = node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id
            if function == "getenv" or (function == "get" and _is_environ(getattr(node.func, "value", None))):
                yield node, node.args[0], node.args[1] if len(node.args) > 1 else None
        elif isinstance(node, ast.Subscript) and _is_environ(node.value) and isinstance(node.ctx, ast.Load):
            yield node, node.slice, None


def _help_of_option(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> str:
    """The `help=` of the `add_argument(..., default=<node>, help=...)` call around `node`, if any."""
    parent = parents.get(node)
    while parent is not None and not isinstance(parent, ast.keyword | ast.stmt):
        parent = parents.get(parent)
    option = parents.get(parent) if isinstance(parent, ast.keyword) and parent.arg == "default" else None
    texts = [k.value.value for k in getattr(option, "keywords", []) if k.arg == "help"]
    return next((text for text in texts if isinstance(text, str)), "")


def _python_files(root: Path) -> list[Path]:
    entries = [root / entry for entry in SCANNED_SOURCES]
    return [p for entry in entries for p in (sorted(entry.rglob("*.py")) if entry.is_dir() else [entry])]


def pipeline_variables(root: Path = REPO_ROOT) -> list[Variable]:
    """Every PIPELINE_* variable the pipeline's Python reads or names, described where it is defined."""
    index = {m.name: m for m in (Module(path, root) for path in _python_files(root) if path.is_file())}
    sites: dict[str, list[_Site]] = {}
    for module in index.values():
        for statement in module.constants.values():
            value = getattr(statement, "value", None)
            if (
                isinstance(value, ast.Constant)
                and isinstance(value.value, str)
                and SETTING_NAME.fullmatch(value.value)
            ):
                sites.setdefault(value.value, []).append(
                    _Site(module, None, module.comment_above(statement.lineno))
                )
        parents = {child: node for node in ast.walk(module.tree) for child in ast.iter_child_nodes(node)}
        for read, key, default in _environment_reads(module):
            name = _value(key, module, index)
            if not isinstance(name, str) or not SETTING_NAME.fullmatch(name):
                continue
            parent = parents.get(read)
            if default is None and isinstance(parent, ast.BoolOp) and isinstance(parent.op, ast.Or):
                default = parent.values[-1]  # `environ.get(NAME) or DEFAULT`
            lines = [key.lineno, _defined_at(key, module), _defined_at(default, module)]
            comments = [module.comment_above(line) for line in lines if line]
            description = next(filter(None, comments), "") or _help_of_option(read, parents)
            sites.setdefault(name, []).append(_Site(module, default, description))
    variables = []
    for name, found in sorted(sites.items()):
        described = next((site for site in found if site.description), None)
        if described is None:
            files = ", ".join(sorted({str(site.module.path) for site in found}))
            raise SystemExit(f"{name} has no description: add a `#:` comment above it in {files}")
        with_default = described if described.default else next((s for s in found if s.default), described)
        value = _value(with_default.default, with_default.module, index)
        rendered = _render_default(value, with_default.default)
        variables.append(Variable(name, rendered, described.description, described.module.name))
    return variables


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
            config = getattr(module.constants.get("model_config"), "value", None)
            prefixes = [k.value for k in getattr(config, "keywords", []) if k.arg == "env_prefix"]
            prefix = _value(next(iter(prefixes), None), module, {})
            prefix = "" if prefix is UNSET else prefix  # pydantic's own default
            for field in cls.body:
                if not isinstance(field, ast.AnnAssign) or ast.unparse(field.target) == "model_config":
                    continue
                name = f"{prefix}{ast.unparse(field.target)}".upper()
                keywords = getattr(field.value, "keywords", [])
                descriptions = [k.value.value for k in keywords if k.arg == "description"]
                description = module.comment_above(field.lineno) or next(iter(descriptions), "")
                if not description:
                    raise SystemExit(f"{name} has no description: add a `#:` comment above it in {path}")
                default = _render_default(_value(field.value, module, {}), field.value)
                variables.append(Variable(name, default, description, module.name))
    return variables


def _cell(text: str) -> str:
    """A description as a table cell: a sentence, with the column separator escaped."""
    text = text[:1].upper() + text[1:] if text[:1].islower() else text
    return (text if text.endswith(".") else f"{text}.").replace("|", "\\|").replace("<", "&lt;")


CONFIGURATION_PAGE = """\
# Configuration

Every environment variable the pipeline, its invoke tasks and the service read: default, meaning, owner.

> Generated from the code by `python -m pipeline.docgen`; do not edit it by hand. Describe a
> variable where it is defined (a `#:` comment, a `help=` text, a `Settings` field) and
> regenerate; `python -m pipeline.docgen --check` and `tests/engine/test_docs.py` fail when it is stale.

Command-line flags override these variables. `INVOKE_PIPELINE_*` variables override an
`invoke.yaml`, which overrides the defaults in `tasks.py`.

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
    sections, seen = [ARTIFACTS_PAGE], set(files)
    for model in files:
        sections.append(_model_section(model, module, top=True))
    for node in module.tree.body:  # the models the files are made of, in the module's order
        model = getattr(contracts, node.name, None) if isinstance(node, ast.ClassDef) else None
        if not (isinstance(model, type) and issubclass(model, contracts.msgspec.Struct)):
            continue
        if model not in seen and model is not contracts.Contract:
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
