"""What makes a change of the manifests reach the running pod."""

from __future__ import annotations

from conformance import config_checksum
from conformance.errors import InputError
from conformance.registry import static
from conformance.results import Finding


@static("plan-5.3-config-checksum", "5.3", "the pod template carries the config ConfigMap's checksum, so a "
        "postgresql.conf edit restarts the pod")
def config_checksum_held(ctx):
    try:
        sts, carried, wanted = config_checksum.current(ctx.manifests)
    except InputError as exc:
        yield Finding(str(ctx.manifests.root), "-", "-", "a StatefulSet and its config ConfigMap", str(exc))
        return
    if carried != wanted:
        yield ctx.finding(sts, config_checksum.TEMPLATE_ANNOTATIONS + (config_checksum.ANNOTATION,),
                          f"{wanted} (else the edit applies and does nothing until someone restarts the pod; "
                          "run `python -m conformance config-checksum`)", carried)
