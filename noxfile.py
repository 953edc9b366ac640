"""Nox sessions: one per pipeline job, plus developer sessions.

`nox -l` is the table of contents. Each job session runs `python -m pipeline.jobs.<job>` in its
own environment; the job graph itself lives in `pipeline/graph.py` and is run by `invoke pipeline`
(locally) or by the GitHub workflow (one runner per job).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import nox

nox.needs_version = ">=2026.8.10"
nox.options.default_venv_backend = "uv|virtualenv"
nox.options.reuse_venv = "yes"
nox.options.sessions = ["lint", "tests"]

SERVICE = "services/ml-inference"
REQUIREMENTS = "requirements"
SERVICE_PORT = "8080"
#: The benchmark scripts, scripts/bench_<name>.py.
BENCHMARKS = Path(__file__).resolve().parent / "scripts"
#: Where `nox -s serve` trains a model on first use (git-ignored, reused afterwards).
DEV_MODEL_DIR = ".pipeline/model"


def _install(session: nox.Session, requirements: str, *, service_extras: str | None = None) -> None:
    """Install `requirements/<requirements>.txt`, and the service itself when the session runs it.

    Packages are installed with their bytecode: where Python may not write it at import time
    (PYTHONDONTWRITEBYTECODE, a read-only tree), every start would otherwise compile each module
    again (scikit-learn's import alone: 5 s instead of 1.3 s).
    """
    session.env["UV_COMPILE_BYTECODE"] = "1"
    session.install("-r", f"{REQUIREMENTS}/{requirements}.txt")
    if service_extras is not None:
        _install_service(session, f"{SERVICE}[{service_extras}]" if service_extras else SERVICE)


def _install_service(session: nox.Session, requirement: str) -> None:
    """Install the service editable, once per environment and version of its pyproject.toml.

    uv rebuilds a local package on every install (2 s a session), but an editable install only
    goes stale when the package's metadata (pyproject.toml) or the extras asked for change.
    """
    wanted = f"{requirement} {hashlib.sha256(Path(SERVICE, 'pyproject.toml').read_bytes()).hexdigest()}"
    stamp = Path(session.virtualenv.location, "service-installed")
    if stamp.exists() and stamp.read_text() == wanted:
        return
    session.install("-e", requirement)
    stamp.write_text(wanted)


def _run_job(session: nox.Session, job: str) -> None:
    """Run the job; stopped (Ctrl-C, the runner's SIGINT), wait until it has saved its work.

    nox would give it 0.3 s and then kill it; the runner and GitHub Actions escalate themselves.
    """
    session.run("python", "-m", f"pipeline.jobs.{job}", *session.posargs, interrupt_timeout=None)


@nox.session(default=False)
def unit(session: nox.Session) -> None:
    """Run the service's unit tests into the unit-results artifact."""
    _install(session, "unit", service_extras="train,test")
    _run_job(session, "unit")


@nox.session(default=False)
def build(session: nox.Session) -> None:
    """Train the model and build, verify and record the service image."""
    _install(session, "build", service_extras="train")
    _run_job(session, "build")


@nox.session(default=False)
def deploy(session: nox.Session) -> None:
    """Bring up an environment from gitops/ and save its state."""
    _install(session, "deploy", service_extras="")
    _run_job(session, "deploy")


@nox.session(default=False)
def scan(session: nox.Session) -> None:
    """Lint the Dockerfile, check the SBOM's licenses and the image's policy, audit for vulnerabilities."""
    _install(session, "scan")
    _run_job(session, "scan")


@nox.session(default=False)
def test(session: nox.Session) -> None:
    """Check the deployed API, load it with Locust and verify its Prometheus metrics."""
    _install(session, "test", service_extras="")
    _run_job(session, "test")


@nox.session(default=False)
def demo(session: nox.Session) -> None:
    """Cause drift by hand and time how the GitOps controller detects and heals it."""
    _install(session, "demo", service_extras="")
    _run_job(session, "demo")


@nox.session(default=False)
def report(session: nox.Session) -> None:
    """Merge every job's artifacts into the HTML and Markdown report."""
    _install(session, "report")
    _run_job(session, "report")


@nox.session
def lint(session: nox.Session) -> None:
    """Lint and type-check the Python code, and lint the GitHub workflow (offline)."""
    _install(session, "lint")
    if "--workflows-only" not in session.posargs:
        # mypy reads the types of whatever the code imports: the suite's pins and the service.
        _install(session, "tests", service_extras="")
    session.run("python", "-m", "pipeline.lint", *session.posargs)


@nox.session(default=False)
def manifests(session: nox.Session) -> None:
    """Render, validate and policy-check gitops/ and observability/ offline."""
    _install(session, "manifests")
    session.run("python", "-m", "pipeline.gitops.checks", *session.posargs)


@nox.session
def tests(session: nox.Session) -> None:
    """Run the whole test suite: engine, service, manifests, workflow, end to end."""
    _install(session, "tests", service_extras="train,test")
    session.run("pytest", *(session.posargs or ["-ra", "--junitxml=artifacts/pytest-junit.xml"]))


@nox.session(default=False)
def serve(session: nox.Session) -> None:
    """Serve the model on 127.0.0.1 for development: nox -s serve -- --port N."""
    _install(session, "serve", service_extras="train")
    asks_help = {"-h", "--help"} & set(session.posargs)
    if not asks_help and not Path(DEV_MODEL_DIR, "model.onnx").exists():
        session.run("python", "-m", "ml_inference", "train", "--out", DEV_MODEL_DIR)
    serve_args = ["--host", "127.0.0.1", "--model-dir", DEV_MODEL_DIR]
    session.run(
        "python", "-m", "ml_inference", "serve", *serve_args, *(session.posargs or ["--port", SERVICE_PORT])
    )


@nox.session(default=False)
def bench(session: nox.Session) -> None:
    """Run a benchmark (not a test): nox -s bench -- service|pipeline|build|heal [its options]."""
    names = sorted(path.stem.removeprefix("bench_") for path in BENCHMARKS.glob("bench_*.py"))
    if not session.posargs or session.posargs[0] not in names:
        session.error(f"Usage: nox -s bench -- {'|'.join(names)} [the benchmark's options, e.g. --help]")
    _install(session, "bench", service_extras="train")
    session.run("python", f"scripts/bench_{session.posargs[0]}.py", *session.posargs[1:])
