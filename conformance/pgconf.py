"""postgresql.conf read as PostgreSQL reads it, and values compared as PostgreSQL compares them.

Syntax (guc-file.l): `name = value` or `name value`, `#` comments, single-quoted strings with
'' or \\' escapes, the last occurrence of a name wins, names are case-insensitive. Units
(guc.c): memory kB MB GB TB and B (factor 1024, case-sensitive), time us ms s min h d; a
number without unit is in the parameter's base unit (8kB blocks for shared_buffers).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MEMORY_UNITS = {"B": 1, "kB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4}
TIME_UNITS = {"us": 0.001, "ms": 1, "s": 1000, "min": 60_000, "h": 3_600_000, "d": 86_400_000}

# Type and base unit of the parameters the plan sets or our checks read (PostgreSQL 14).
PARAMS: dict[str, tuple[str, float | None]] = {
    "max_connections": ("int", None),
    "shared_buffers": ("memory", 8192),
    "effective_cache_size": ("memory", 8192),
    "work_mem": ("memory", 1024),
    "maintenance_work_mem": ("memory", 1024),
    "autovacuum_work_mem": ("memory", 1024),
    "wal_buffers": ("memory", 8192),
    "checkpoint_completion_target": ("real", None),
    "default_statistics_target": ("int", None),
    "log_destination": ("string-ci", None),
    "logging_collector": ("bool", None),
    "log_directory": ("string", None),
    "log_filename": ("string", None),
    "log_min_duration_statement": ("time", 1),
    "log_checkpoints": ("bool", None),
    "log_connections": ("bool", None),
    "log_disconnections": ("bool", None),
    "fsync": ("bool", None),
    "synchronous_commit": ("enum", None),
    "full_page_writes": ("bool", None),
    "timezone": ("string-ci", None),
    "log_timezone": ("string-ci", None),
    "listen_addresses": ("string", None),
    "port": ("int", None),
    "password_encryption": ("enum", None),
    "ssl": ("bool", None),
    "archive_mode": ("enum", None),
    "autovacuum_max_workers": ("int", None),
}

# synchronous_commit accepts boolean spellings for on/off.
_ENUM_BOOL = {"synchronous_commit"}


class ConfError(ValueError):
    pass


@dataclass(frozen=True)
class Setting:
    name: str
    raw: str
    line: int


def parse(text: str) -> dict[str, Setting]:
    settings: dict[str, Setting] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        match = re.match(r"([A-Za-z_][\w.\-]*)\s*(=\s*)?(.*)$", stripped)
        if not match:
            raise ConfError(f"line {number}: syntax error near {stripped[:30]!r}")
        name, rest = match.group(1).lower(), match.group(3)
        if rest.startswith("'"):
            value, i = [], 1
            while True:
                if i >= len(rest):
                    raise ConfError(f"line {number}: unterminated quoted string")
                ch = rest[i]
                if ch == "'" and rest[i + 1:i + 2] == "'":
                    value.append("'")
                    i += 2
                elif ch == "\\" and i + 1 < len(rest):
                    value.append(rest[i + 1])
                    i += 2
                elif ch == "'":
                    i += 1
                    break
                else:
                    value.append(ch)
                    i += 1
            tail = rest[i:].strip()
            raw = "".join(value)
        else:
            token = re.match(r"[^\s#]*", rest).group(0)
            tail = rest[len(token):].strip()
            raw = token
        if tail and not tail.startswith("#"):
            raise ConfError(f"line {number}: syntax error near {tail[:30]!r}")
        if raw == "" and not rest.startswith("'"):
            raise ConfError(f"line {number}: {name} has no value")
        settings[name] = Setting(name, raw, number)
    return settings


def parse_bool(value: str) -> bool:
    v = value.strip().lower()
    if v in ("on", "1"):
        return True
    if v in ("off", "0") or (len(v) >= 2 and "off".startswith(v)):
        return False
    for word, result in (("true", True), ("yes", True), ("false", False), ("no", False)):
        if v and word.startswith(v):
            return result
    raise ConfError(f"{value!r} is not a boolean")


def _with_unit(value: str, units: dict[str, float], base: float, what: str) -> float:
    match = re.fullmatch(r"\s*(-?\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*", value)
    if not match:
        raise ConfError(f"{value!r} is not a {what}")
    number, unit = float(match.group(1)), match.group(2)
    if unit and unit not in units:
        raise ConfError(f"{value!r}: unit {unit!r} is not one of {', '.join(units)}")
    return number * (units[unit] if unit else base)


def normalize(name: str, value: str, base: float | None = None):
    """A comparable value: bytes for memory, milliseconds for time, bool, number or text."""
    kind, default_base = PARAMS.get(name.lower(), ("string", None))
    base = default_base if base is None else base
    if kind == "memory":
        if value.strip() == "-1":
            return -1
        return _with_unit(value, MEMORY_UNITS, base, "memory size")
    if kind == "time":
        if value.strip() == "-1":
            return -1
        return _with_unit(value, TIME_UNITS, base, "time")
    if kind == "bool":
        return parse_bool(value)
    if kind == "int":
        try:
            return int(value)
        except ValueError:
            raise ConfError(f"{value!r} is not an integer") from None
    if kind == "real":
        try:
            return float(value)
        except ValueError:
            raise ConfError(f"{value!r} is not a number") from None
    if kind == "enum":
        v = value.strip().lower()
        if name in _ENUM_BOOL:
            try:
                return "on" if parse_bool(v) else "off"
            except ConfError:
                return v
        return v
    if kind == "string-ci":
        return value.strip().lower()
    return value
