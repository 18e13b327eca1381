"""Errors that end a command with a one-line message instead of a traceback."""


class InputError(Exception):
    """The input cannot be used (exit 2): missing files, broken YAML, not a Kubernetes object."""


class EnvironmentProblem(Exception):
    """What a target needs is missing here (PostgreSQL 14 binaries, Docker, kind): exit 2."""


class NothingChecked(EnvironmentProblem):
    """The target or tool a run needs cannot run here, so nothing would be checked (exit 3, one
    line): a CI job must not go green having checked nothing. --allow-skip reports every check
    as skipped instead and exits 0."""


def one_line(exc: BaseException, limit: int | None = None) -> str:
    """An error's message on one line (a server's errors span several), cut at limit."""
    text = " ".join(str(exc).split())
    return text if limit is None else text[:limit]
