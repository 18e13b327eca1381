"""Errors that end a command with a one-line message instead of a traceback."""


class InputError(Exception):
    """The input cannot be used (exit 2): missing files, broken YAML, not a Kubernetes object."""


class EnvironmentProblem(Exception):
    """What a target needs is missing here (PostgreSQL 14 binaries, Docker, kind): exit 2."""
