"""The configurations compared, each as the values of the three dev settings (plan 12.1).

The durable baseline sets all three on explicitly; each dev setting is then turned off
alone; "plan" is the ConfigMap's postgresql.conf as it is (its values are read from the
ConfigMap, never retyped here)."""

from __future__ import annotations

from dataclasses import dataclass

from conformance import pgconf
from conformance.manifests import Manifests
from conformance.plan import CLAIMED_GAINS_PCT, DEV_ONLY_SETTINGS, figure

SETTINGS = tuple(DEV_ONLY_SETTINGS)  # fsync, synchronous_commit, full_page_writes


@dataclass(frozen=True)
class Config:
    name: str
    values: dict  # setting -> "on"/"off", as the server must report them
    changes: str | None = None  # the one dev setting this configuration isolates
    from_configmap: bool = False  # applied by ALTER SYSTEM RESET: the ConfigMap's own values


def configmap_values(manifests: Manifests) -> dict[str, str]:
    cm = manifests.find("ConfigMap", figure("config-configmap").expected)
    text = ((cm.get(("data",)) or {}) if cm else {}).get(figure("config-key").expected, "")
    parsed = pgconf.parse(text)
    # PostgreSQL's default for each of the three is on.
    return {name: pgconf.parse_bool(parsed[name].raw) and "on" or "off" if name in parsed else "on"
            for name in SETTINGS}


def configurations(manifests: Manifests) -> list[Config]:
    durable = {name: "on" for name in SETTINGS}
    out = [Config("durable", durable)]
    for name in SETTINGS:
        out.append(Config(f"{name}=off", {**durable, name: "off"}, changes=name))
    out.append(Config("plan", configmap_values(manifests), from_configmap=True))
    return out


def claimed_gain_pct(setting: str) -> float:
    return float(CLAIMED_GAINS_PCT[setting])
