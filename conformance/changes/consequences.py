"""Each difference between the base and now, judged by what applying it does to the running
dev database. The API server's rules are data (IMMUTABLE, from Kubernetes' validation of
each kind); the rest follows from a single-replica StatefulSet holding the only copy."""

from __future__ import annotations

from dataclasses import dataclass

from conformance import config_checksum, pgconf, workload
from conformance.changes import api_rules, settings_context
from conformance.changes.diff import Pair, differences, pairs, under, value
from conformance.manifests import K8sObject, Manifests, dotted
from conformance.plan import AVAILABILITY, figure
from conformance.results import ChangeFinding

REFUSED, DATA, DOWNTIME, NO_EFFECT = "refused", "data-at-risk", "downtime", "no-effect"
CONDITIONAL, IGNORED = "refused-in-a-state", "ignored"


STATEFULSET_REMEDY = ("kubectl delete statefulset {name} -n {ns} --cascade=orphan, then apply again: the pod and its "
                      "claims stay, the new StatefulSet adopts the pod if its selector matches the pod's labels (else "
                      "delete the pod once: it comes back on the same claim, the data kept)")
REMEDIES = {
    "StatefulSet": STATEFULSET_REMEDY,
    "Job": "kubectl delete job {name} -n {ns} (a finished Job: its work is done and the database keeps it), then "
           "apply again (the apply runbook does both)",
    "PersistentVolumeClaim": "a claim cannot change in place: make a new claim, copy the files (a pod mounting both), "
                             "point the CronJob at it, then delete the old one",
    "StorageClass": "kubectl delete storageclass {name}, then apply again: existing disks keep what they were made "
                    "with; only new claims get the new class",
    "Service": "kubectl delete service {name} -n {ns}, then apply again (clients reconnect; the DNS name stays)",
    "Secret": "kubectl delete secret {name} -n {ns}, then apply again",
    "ConfigMap": "kubectl delete configmap {name} -n {ns}, then apply again",
}


@dataclass
class Judged:
    kind: str
    finding: ChangeFinding


def _show(v, limit: int = 60) -> str:
    """A value on one short line: a script or a long map is cut, with its ending marked."""
    if v is None:
        return "nothing"
    if isinstance(v, (dict, list)):
        import json
        text = json.dumps(v, sort_keys=True)
    else:
        text = " ".join(str(v).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _change(pair: Pair, path: tuple) -> str:
    return f"{dotted(path)}: {_show(value(pair.base, path))} -> {_show(value(pair.now, path))}"


def _finding(obj: K8sObject, path: tuple, change: str, consequence: str, remedy: str = "", base: bool = False) -> ChangeFinding:
    """On the changed line of now's file (of the base's, for what now lacks)."""
    file = f"{obj.file} (base)" if base else obj.file
    return ChangeFinding(file, obj.ref, dotted(path) or "-", consequence, change, obj.line(path), remedy)


def _binds_late(claim: K8sObject, manifests: Manifests) -> bool:
    """Its StorageClass waits for the first consumer: the claim is Pending until a pod mounts it."""
    name = claim.get(("spec", "storageClassName"))
    sc = manifests.find("StorageClass", name) if name else None
    return sc is not None and sc.get(("volumeBindingMode",)) == "WaitForFirstConsumer"


def _refused(pair: Pair, diffs: list[tuple], versions: list[str], manifests: Manifests) -> list[Judged]:
    """What the API server refuses, refuses in a state the manifests cannot show, or drops
    (changes/api_rules.py, each rule with the validation function it mirrors)."""
    obj = pair.now
    found = api_rules.verdicts(pair, diffs, versions,
                               binds_late=obj.kind == "PersistentVolumeClaim" and _binds_late(obj, manifests))
    remedy = REMEDIES.get(obj.kind, "").format(name=obj.name, ns=obj.namespace or "default")
    out = []
    for outcome in (api_rules.REFUSED, api_rules.CONDITIONAL, api_rules.IGNORED):
        group = [v for v in found if v.outcome == outcome]
        if not group:
            continue
        shown = "; ".join(_change(pair, v.path) for v in group[:3]) + (
            f"; and {len(group) - 3} more" if len(group) > 3 else "")
        reasons = "; ".join(dict.fromkeys(f"{v.why}{api_rules.versions_note(v, versions)}" for v in group))
        sources = ", ".join(dict.fromkeys(v.source for v in group))
        consequence = {
            api_rules.REFUSED: f"the API server refuses it ({reasons}; {sources}), and `kubectl apply -k` stops "
                               "there, half of the set applied",
            api_rules.CONDITIONAL: f"refused in a state the manifests cannot show: {reasons} ({sources})",
            api_rules.IGNORED: f"accepted and not applied: {reasons} ({sources})",
        }[outcome]
        kind = {api_rules.REFUSED: REFUSED, api_rules.CONDITIONAL: CONDITIONAL, api_rules.IGNORED: IGNORED}[outcome]
        out.append(Judged(kind, _finding(obj, group[0].path, shown, consequence,
                                         remedy if outcome != api_rules.IGNORED else "leave the field out, or turn "
                                         "the feature gate on")))
    return out


def _claim_templates(obj: K8sObject | None) -> dict[str, dict]:
    return {t.get("metadata", {}).get("name"): t for t in (value(obj, ("spec", "volumeClaimTemplates")) or [])}


def _data_at_risk(pair: Pair, diffs: list[tuple]) -> list[Judged]:
    base, now = pair.base, pair.now
    out = []
    if now.kind == "StatefulSet":
        old, new = _claim_templates(base), _claim_templates(now)
        for i, name in enumerate(new):
            path = ("spec", "volumeClaimTemplates", i, "metadata", "name")
            if name not in old and old:
                out.append(Judged(DATA, _finding(now, path, f"{dotted(path)}: {', '.join(old)} -> {name}",
                                                 f"the pod gets a new, empty disk {name}-{now.name}-0; the data stays "
                                                 f"on {', '.join(f'{o}-{now.name}-0' for o in old)}, unused",
                                                 "keep the template's name; to move the data, dump it first "
                                                 "(docs/operations.md)")))
            elif name in old:
                spath = ("spec", "volumeClaimTemplates", i, "spec", "resources", "requests", "storage")
                before = ((old[name].get("spec") or {}).get("resources") or {}).get("requests", {}).get("storage")
                if api_rules.smaller(now.get(spath), before):
                    out.append(Judged(DATA, _finding(now, spath, f"{dotted(spath)}: {before} -> {now.get(spath)}",
                                                     "a disk cannot shrink: the data must fit, and the change is refused",
                                                     "keep the size")))
        for field in ("whenDeleted", "whenScaled"):
            path = ("spec", "persistentVolumeClaimRetentionPolicy", field)
            if value(base, path) in (None, "Retain") and value(now, path) == "Delete":
                out.append(Judged(DATA, _finding(now, path, _change(pair, path), "deleting (or scaling down) the "
                                                 "StatefulSet then deletes the data claim", "keep Retain")))
        db = figure("container").expected
        for var_path in _pgdata_paths(pair, db):
            out.append(Judged(DATA, _finding(now, var_path, _change(pair, var_path), "the server looks for its data "
                                             "somewhere else: it starts on an empty data directory, and the old data "
                                             "stays unused on the disk", "keep the data path; to move the data, dump "
                                             "and restore it (docs/operations.md)")))
    if now.kind == "StorageClass":
        if value(base, ("reclaimPolicy",)) == "Retain" and value(now, ("reclaimPolicy",)) != "Retain":
            out.append(Judged(DATA, _finding(now, ("reclaimPolicy",), _change(pair, ("reclaimPolicy",)),
                                             "disks made from now on are destroyed with their claim", "keep Retain")))
    return out


def _pgdata_paths(pair: Pair, container: str) -> list[tuple]:
    """PGDATA, or the data volume's mount path, of the database container, where they changed."""
    def find(obj):
        for i, c in enumerate(value(obj, ("spec", "template", "spec", "containers")) or []):
            if c.get("name") == container:
                env = {e.get("name"): (j, e.get("value")) for j, e in enumerate(c.get("env") or [])}
                mounts = {m.get("name"): (j, m.get("mountPath")) for j, m in enumerate(c.get("volumeMounts") or [])}
                return i, env, mounts
        return None
    old, new = find(pair.base), find(pair.now)
    if old is None or new is None:
        return []
    out = []
    base_c = ("spec", "template", "spec", "containers", new[0])
    if "PGDATA" in new[1] and old[1].get("PGDATA", (0, None))[1] != new[1]["PGDATA"][1]:
        out.append(base_c + ("env", new[1]["PGDATA"][0], "value"))
    claims = set(_claim_templates(pair.now)) & set(_claim_templates(pair.base))
    for claim in claims:
        if claim in new[2] and claim in old[2] and old[2][claim][1] != new[2][claim][1]:
            out.append(base_c + ("volumeMounts", new[2][claim][0], "mountPath"))
    return out


def _removed(pair: Pair) -> list[Judged]:
    obj = pair.base
    what = {"PersistentVolumeClaim": "the backups' claim", "StatefulSet": "the database",
            "StorageClass": "the class of the data disks"}.get(obj.kind)
    if what is None:
        return []
    return [Judged(DATA, _finding(obj, ("metadata", "name"), f"{obj.ref} removed from the manifests",
                                  f"`kubectl apply -k` leaves it running, unmanaged; deleting it (a `delete -k` of the "
                                  f"base, a prune) takes {what} with it", "keep it, or delete it on purpose after a "
                                  "backup (docs/operations.md)", base=True))]


def _template_paths(obj: K8sObject) -> tuple:
    return workload.POD_SPEC[obj.kind][:-1]


def _downtime(pair: Pair, diffs: list[tuple], settings: list[str]) -> list[Judged]:
    now = pair.now
    if now.kind != "StatefulSet":
        return []
    template = [d for d in diffs if under(d, _template_paths(now))]
    if not template:
        return []
    pod = workload.pod_spec(now)
    grace = pod.get("terminationGracePeriodSeconds", 30)
    db = next((c for c in pod.get("containers") or [] if c.get("name") == figure("container").expected), {})
    ready = (db.get("readinessProbe") or {}).get("initialDelaySeconds", 0)
    startup = db.get("startupProbe") or {}
    window = startup.get("periodSeconds", 10) * startup.get("failureThreshold", 3) if startup else None
    why = f" (to apply {', '.join(settings)})" if settings else ""
    shown = "; ".join(dotted(p) for p in template[:3]) + (f"; and {len(template) - 3} more" if len(template) > 3 else "")
    return [Judged(DOWNTIME, _finding(now, template[0], f"the pod template changes{why}: {shown}",
                                      f"the single database pod restarts and the database is down meanwhile: a "
                                      f"clean shutdown with its checkpoint (SIGKILL after {grace} s), then a start "
                                      f"(ready {ready} s after the container starts at the earliest"
                                      + (f"; crash recovery may take up to the startupProbe's {window} s" if window else "")
                                      + ")", f"apply outside working hours, or tell the team (plan 1.2: {AVAILABILITY:.0%} "
                                      "availability)"))]


def _settings(pair_cm: Pair, sts_pair: Pair | None, major: int) -> tuple[list[Judged], list[str]]:
    """postgresql.conf changes: (no-effect findings, the settings a restart will apply)."""
    key = figure("config-key").expected
    before = pgconf.parse(str(value(pair_cm.base, ("data", key)) or ""))
    after = pgconf.parse(str(value(pair_cm.now, ("data", key)) or ""))
    changed = sorted(n for n in set(before) | set(after)
                     if (before.get(n).raw if n in before else None) != (after.get(n).raw if n in after else None))
    if not changed:
        return [], []
    contexts, read_from = settings_context.contexts(major)
    # Said in every finding when the saved contexts are another major's (none saved for this one).
    source = "" if read_from == major else f" (contexts of PostgreSQL {read_from}: none saved for {major})"
    path = ("spec", "template", "metadata", "annotations", config_checksum.ANNOTATION)
    restarts = sts_pair is not None and sts_pair.now is not None and sts_pair.base is not None and \
        value(sts_pair.base, path) != value(sts_pair.now, path)
    out, applied = [], []
    for name in changed:
        context = contexts.get(name, "custom" if settings_context.is_custom(name) else "unknown")
        where = ("data", key)
        line = _conf_line(pair_cm.now, key, after.get(name))
        shown = f"{name}: {before[name].raw if name in before else 'unset'} -> {after[name].raw if name in after else 'unset'}"
        if context == "internal":
            out.append(Judged(NO_EFFECT, ChangeFinding(pair_cm.now.file, pair_cm.now.ref, dotted(where),
                                                       "a read-only setting (context internal): the server "
                                                       f"ignores it{source}", shown, line, "remove it")))
        elif context == "unknown":
            out.append(Judged(NO_EFFECT, ChangeFinding(pair_cm.now.file, pair_cm.now.ref, dotted(where),
                                                       f"PostgreSQL {major} has no such setting{source}: the server "
                                                       "refuses to start with it", shown, line, "check its name")))
        elif restarts:
            applied.append(f"{name} ({context})")
        else:
            # The server reads postgresql.conf at its start and on SIGHUP only: whatever the context,
            # a file that changed under it changes nothing until one of them.
            needs = "a restart" if context == "postmaster" else "a reload (SIGHUP) or a restart"
            kind = "a custom setting (prefix.name)" if context == "custom" else f"pg_settings context {context}"
            out.append(Judged(NO_EFFECT, ChangeFinding(
                pair_cm.now.file, pair_cm.now.ref, dotted(where),
                f"takes effect only after {needs} ({kind}{source}), and nothing restarts or signals "
                f"the pod when the ConfigMap changes: the running server keeps the old value", shown, line,
                "update the checksum annotation (`python -m conformance config-checksum`) so the pod restarts")))
    return out, applied


def _conf_line(cm: K8sObject, key: str, setting) -> int | None:
    start = cm.line(("data", key))
    if start is None or setting is None:
        return start
    return start + setting.line  # a block scalar's text starts on the line after its key


def judge(base: Manifests, now: Manifests, major: int, versions: list[str] | None = None) -> list[Judged]:
    out: list[Judged] = []
    all_pairs = pairs(base, now)
    sts_name = figure("name").expected
    cm_name = figure("config-configmap").expected
    sts_pair = next((p for p in all_pairs if p.any.kind == "StatefulSet" and p.any.name == sts_name), None)
    applied: list[str] = []
    for pair in all_pairs:
        if pair.now is not None and pair.base is not None and pair.any.kind == "ConfigMap" and pair.any.name == cm_name:
            found, applied = _settings(pair, sts_pair, major)
            out += found
    for pair in all_pairs:
        if pair.now is None:
            out += _removed(pair)
            continue
        if pair.base is None:
            continue  # created: nothing running is affected
        diffs = differences(pair.base.data, pair.now.data)
        if not diffs:
            continue
        out += _refused(pair, diffs, versions or ["1.30"], now)
        out += _data_at_risk(pair, diffs)
        if pair is sts_pair:
            out += _downtime(pair, diffs, applied)
    return out
