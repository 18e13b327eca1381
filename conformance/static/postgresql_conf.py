"""postgresql.conf in the ConfigMap: every plan value as PostgreSQL would read it, and coherence
with the rest of the manifests."""

from __future__ import annotations

from conformance.quantity import parse_quantity

from conformance import pgconf, workload
from conformance.plan import (CONF_DEVIATIONS, DEV_NAMESPACE_SUFFIX, DEV_ONLY_SETTINGS, POSTGRESQL_CONF,
                              REACHABILITY_CONF, TUNING_12_2, conf_expected, figure)
from conformance.registry import Check, add_static, static

KEY = ("data", "postgresql.conf")

# PostgreSQL 14 defaults, for the memory budget when the file does not set a value.
_DEFAULTS = {"autovacuum_max_workers": "3", "wal_buffers": "-1", "autovacuum_work_mem": "-1"}


def _conf_finding(ctx, name: str, expected: str, found: str | None):
    setting = ctx.conf.get(name)
    finding = ctx.finding(ctx.config_map, KEY, f"{name} = {expected}",
                          "not set" if found is None else f"{name} = {found}")
    if setting is not None and ctx.config_map is not None:
        # Point at the line inside the block scalar.
        base = ctx.config_map.line(KEY) or 0
        finding = type(finding)(finding.file, finding.obj, f"{finding.path} (line {setting.line})",
                                finding.expected, finding.found, base + setting.line)
    return finding


def _ours_note(name: str, expected: str) -> str:
    """Where the value is ours, not the plan's: why the plan's own value is refused, said where a
    user would look for it."""
    if name in CONF_DEVIATIONS and expected != POSTGRESQL_CONF[name][1]:
        return f" (ours; the plan's {POSTGRESQL_CONF[name][1]}: docs/deviations.md `{CONF_DEVIATIONS[name]}`)"
    return ""


def _value_check(check_id: str, section: str, name: str, value_of, checklist=()):
    """value_of() gives the value the ConfigMap must set, read when the check runs (the plan's,
    or ours where docs/deviations.md records why)."""
    def check(ctx):
        expected = value_of()
        expected_shown = expected + _ours_note(name, expected)
        if ctx.conf_text is None:
            yield ctx.finding(ctx.config_map, KEY, f"ConfigMap {figure('config-configmap').expected} with postgresql.conf",
                              "none")
            return
        setting = ctx.conf.get(name)
        if setting is None:
            yield _conf_finding(ctx, name, expected_shown, None)
            return
        try:
            same = pgconf.normalize(name, setting.raw) == pgconf.normalize(name, expected)
        except pgconf.ConfError as exc:
            yield _conf_finding(ctx, name, expected_shown, f"{setting.raw} ({exc})")
            return
        if not same:
            yield _conf_finding(ctx, name, expected_shown, setting.raw)
    add_static(Check(check_id, section, f"postgresql.conf {name} = {value_of()}{_ours_note(name, value_of())}", check,
                     tuple(checklist), "static"))


for _name, (_section, _value) in POSTGRESQL_CONF.items():
    _value_check(f"plan-{_section}-{_name.replace('_', '-')}", _section, _name, lambda n=_name: conf_expected(n),
                 ("14.3-logs",) if _section == "4.2" else ())
for _name in TUNING_12_2:
    _value_check(f"plan-12.2-{_name.replace('_', '-')}", "12.2", _name, lambda n=_name: conf_expected(n))
for _name, _value in REACHABILITY_CONF.items():
    _value_check(f"plan-3.3-conf-{_name.replace('_', '-')}", "3.3", _name, lambda v=_value: v, ("14.1-db-connection",))


@static("plan-4-conf-parses", "4", "postgresql.conf parses as PostgreSQL parses it")
def conf_parses(ctx):
    try:
        pgconf.parse(ctx.conf_text or "")
    except pgconf.ConfError as exc:
        yield ctx.finding(ctx.config_map, KEY, "a file PostgreSQL can read", str(exc))
        return
    for name, setting in pgconf.parse(ctx.conf_text or "").items():
        if name in pgconf.PARAMS:
            try:
                pgconf.normalize(name, setting.raw)
            except pgconf.ConfError as exc:
                yield _conf_finding(ctx, name, "a valid value", f"{setting.raw} ({exc})")


@static("plan-12.1-dev-only-namespace", "12.1", "fsync/synchronous_commit/full_page_writes off only in a *-dev namespace")
def dev_only(ctx):
    namespace = ctx.config_map.namespace if ctx.config_map else None
    if namespace and namespace.endswith(DEV_NAMESPACE_SUFFIX):
        return
    for name, off in DEV_ONLY_SETTINGS.items():
        setting = ctx.conf.get(name)
        if setting is not None and pgconf.normalize(name, setting.raw) == pgconf.normalize(name, off):
            yield _conf_finding(ctx, name, f"on outside a *{DEV_NAMESPACE_SUFFIX} namespace (namespace is {namespace})",
                                setting.raw)


def _bytes(ctx, name: str) -> float:
    setting = ctx.conf.get(name)
    return pgconf.normalize(name, setting.raw if setting else _DEFAULTS.get(name, "0"))


@static("plan-4.1-memory-budget", "4.1", "memory the configuration can claim fits the memory limit")
def memory_budget(ctx):
    sts = ctx.manifests.find("StatefulSet", figure("name").expected)
    if sts is None or ctx.conf_text is None:
        return
    c = workload.database(ctx.manifests)
    limit = (c.spec.get("resources") or {}).get("limits", {}).get("memory")
    if limit is None:
        yield ctx.finding(sts, c.path + ("resources", "limits", "memory"), "a memory limit", None)
        return
    shared = _bytes(ctx, "shared_buffers")
    wal = _bytes(ctx, "wal_buffers")
    if wal == -1:  # auto: 1/32 of shared_buffers, at most 16MB
        wal = min(shared / 32, 16 * 1024**2)
    connections = pgconf.normalize("max_connections", ctx.conf["max_connections"].raw) \
        if "max_connections" in ctx.conf else 100
    workers = pgconf.normalize("autovacuum_max_workers", ctx.conf["autovacuum_max_workers"].raw) \
        if "autovacuum_max_workers" in ctx.conf else 3
    maintenance = _bytes(ctx, "maintenance_work_mem")
    autovacuum = _bytes(ctx, "autovacuum_work_mem")
    autovacuum = maintenance if autovacuum == -1 else autovacuum
    need = shared + wal + connections * _bytes(ctx, "work_mem") + maintenance + workers * autovacuum
    if need > float(parse_quantity(limit)):
        mib = lambda b: f"{b / 1024**2:.0f}Mi"  # noqa: E731
        yield ctx.finding(sts, c.path + ("resources", "limits", "memory"),
                          f"at least shared_buffers + wal_buffers + max_connections x work_mem + "
                          f"maintenance_work_mem + autovacuum workers x its memory = {mib(need)}",
                          f"{limit} ({mib(float(parse_quantity(limit)))})")


@static("plan-9.1-auth", "9.1", "passwords (SCRAM) over TCP, TLS not configured (plan: 'not applied')")
def auth(ctx):
    c = workload.database(ctx.manifests)
    args = c.env.get("POSTGRES_INITDB_ARGS", "")
    if f"--auth-host={figure('auth').expected}" not in args.split():
        yield ctx.finding(c.owner, c.path + ("env",), f"POSTGRES_INITDB_ARGS with --auth-host={figure('auth').expected} "
                          "(a password also from 127.0.0.1)", args)
    setting = ctx.conf.get("password_encryption")
    if setting is None or pgconf.normalize("password_encryption", setting.raw) != figure("auth").expected:
        yield _conf_finding(ctx, "password_encryption", figure("auth").expected, setting.raw if setting else None)
    ssl = ctx.conf.get("ssl")
    if ssl is not None and pgconf.normalize("ssl", ssl.raw) != figure("tls").expected:
        yield _conf_finding(ctx, "ssl", "off (the plan applies no TLS; no certificate is mounted)", ssl.raw)


@static("plan-7.1-wal-archiving", "7.1", "WAL archiving: off, as recorded (plan: continuous archiving)")
def wal_archiving(ctx):
    setting = ctx.conf.get("archive_mode")
    enabled = setting is not None and pgconf.normalize("archive_mode", setting.raw) in ("on", "always", "true")
    if enabled != figure("wal-archiving").expected:
        yield _conf_finding(ctx, "archive_mode", "off (no archive store: docs/deviations.md)", setting.raw)
