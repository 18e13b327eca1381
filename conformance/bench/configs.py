"""The configurations compared, each as the values of the three dev settings (plan 12.1).

The durable baseline sets all three on explicitly; each dev setting is then turned off
alone; "plan-12.1" is the plan's text (all three off, from plan.DEV_ONLY_SETTINGS), which our
ConfigMap deviates from (docs/deviations.md); "manifests" is the ConfigMap's postgresql.conf as
it is (its values are read from the ConfigMap, never retyped here)."""

from __future__ import annotations

from dataclasses import dataclass

from conformance import pgconf, workload
from conformance.errors import EnvironmentProblem
from conformance.manifests import Manifests
from conformance.plan import CLAIMED_GAINS_PCT, DEV_ONLY_SETTINGS

SETTINGS = tuple(DEV_ONLY_SETTINGS)  # fsync, synchronous_commit, full_page_writes


@dataclass(frozen=True)
class Config:
    name: str
    values: dict  # setting -> "on"/"off", as the server must report them
    from_configmap: bool = False  # applied by ALTER SYSTEM RESET: the ConfigMap's own values


def _shown(value) -> str:
    """A normalized setting as SHOW prints it (booleans on/off, enums as they are)."""
    return ("on" if value else "off") if isinstance(value, bool) else str(value)


def as_shown(name: str, raw: str) -> str:
    """A postgresql.conf value of one of the three as SHOW prints it (false -> off)."""
    return _shown(pgconf.normalize(name, raw))


def configmap_values(manifests: Manifests) -> dict[str, str]:
    parsed = pgconf.parse(workload.postgresql_conf(manifests)[1] or "")
    # PostgreSQL's default for each of the three is on.
    return {name: as_shown(name, parsed[name].raw) if name in parsed else "on" for name in SETTINGS}


# The configuration the manifests ship, and the one plan 12.1 writes.
MANIFESTS = "manifests"
PLAN_AS_WRITTEN = "plan-12.1"


def configurations(manifests: Manifests) -> list[Config]:
    durable = {name: "on" for name in SETTINGS}
    out = [Config("durable", durable)]
    for name in SETTINGS:
        out.append(Config(f"{name}=off", {**durable, name: "off"}))
    out.append(Config(PLAN_AS_WRITTEN, dict(DEV_ONLY_SETTINGS)))
    out.append(Config(MANIFESTS, configmap_values(manifests), from_configmap=True))
    return out


def claimed_gain_pct(setting: str) -> float:
    return float(CLAIMED_GAINS_PCT[setting])


class NotInEffect(EnvironmentProblem):
    """After the reload the server does not show the configuration's values."""

    def __init__(self, message: str, config: "Config"):
        super().__init__(message)
        self.config = config


def apply(connect, config: Config) -> None:
    """Make config the server's (ALTER SYSTEM, then a reload: the three are sighup or user
    settings), and wait until SHOW says so. connect() opens an autocommit superuser session."""
    from conformance import timeouts
    from conformance.targets.waiting import NotYet, wait_until

    with connect() as conn:
        for name in SETTINGS:
            if config.from_configmap:
                conn.execute(f"ALTER SYSTEM RESET {name}")
            else:
                conn.execute(f"ALTER SYSTEM SET {name} = {config.values[name]}")
        conn.execute("SELECT pg_reload_conf()")

    def took_effect():
        with connect() as conn:
            shown = {n: conn.execute(f"SHOW {n}").fetchone()[0] for n in SETTINGS}
        if shown != config.values:
            raise NotYet(f"server shows {shown}")
        return True

    try:
        wait_until(took_effect, f"configuration {config.name} in effect", timeouts.RELOAD, interval=0.1)
    except EnvironmentProblem as exc:
        raise NotInEffect(str(exc), config) from None
