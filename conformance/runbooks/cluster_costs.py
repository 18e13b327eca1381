"""What the runbooks' steps cost on the AKS cluster that no target here can show, as
estimates with their sources: added to what the rehearsal measures, they give the downtime an
on-call engineer should announce."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Cost:
    what: str
    low_s: float
    high_s: float
    source: str


def costs(grace_seconds: int) -> dict[str, Cost]:
    return {
        "pod-stop": Cost("the old pod's clean shutdown (checkpoint)", 1, grace_seconds,
                         f"at most terminationGracePeriodSeconds ({grace_seconds} s, the manifests); the rehearsal "
                         "measures the server's own shutdown"),
        "disk-attach": Cost("an Azure Disk detached from one node and attached to another", 15, 120,
                            "kubernetes-sigs/cloud-provider-azure#78 (a maintainer: a normal attach or detach takes "
                            "about 15 s); kubernetes/kubernetes#69262 (the attach call returns after 35 s to 2 min); "
                            "Azure/aks-engine#2888 (5.5% of operations over 60 s)"),
        "disk-provision": Cost("a new Azure Disk created for a new claim, then attached", 15, 180,
                               "kubernetes-sigs/azuredisk-csi-driver#269 (the claim binds quickly; the attach is what "
                               "takes long) and the attach figures above"),
        "image-pull": Cost("the new major's image pulled by a node that lacks it", 10, 60,
                           "an estimate, not a measurement: the postgres bookworm images are about 150 MB "
                           "compressed; at 20-100 MB/s that is 2-8 s, more on a throttled registry"),
    }


# What each runbook action makes the cluster do beyond the rehearsal: (cost, how many times).
BY_ACTION = {
    "remove-statefulset": (("pod-stop", 1),),
    "dump": (("disk-attach", 1),),  # the backup claim comes to the Job's node
    "apply": (("disk-provision", 1), ("image-pull", 1)),
    "restore": (("disk-attach", 1),),
}


def estimate(actions: list[str], grace_seconds: int, new_disk: bool = True) -> list[tuple[Cost, int]]:
    """The cluster-only costs of these actions, in order, each with how many times it occurs."""
    table = costs(grace_seconds)
    out: list[tuple[Cost, int]] = []
    for action in actions:
        for key, times in BY_ACTION.get(action, ()):
            if key == "disk-provision" and not new_disk:
                key = "disk-attach"
            out.append((table[key], times))
    return out
