"""A container run to completion, as the kubelet runs an init container or a Job's pod: created,
started, waited for, its output read, and removed whatever happened (with the anonymous volume
an image's VOLUME makes)."""

from __future__ import annotations

import subprocess


def to_completion(client, kwargs: dict, timeout: float, **create) -> subprocess.CompletedProcess:
    """kwargs: docker-py's create arguments (name, image, ...); create: more of them (network,
    network_mode). A run that outlives timeout is killed: subprocess.TimeoutExpired."""
    run = client.containers.create(**kwargs, **create, detach=True)
    try:
        run.start()
        try:
            code = run.wait(timeout=timeout)["StatusCode"]
        except Exception:
            run.kill()
            raise subprocess.TimeoutExpired(kwargs.get("name", "container"), timeout) from None
        out = run.logs(stdout=True, stderr=False).decode(errors="replace")
        err = run.logs(stdout=False, stderr=True).decode(errors="replace")
    finally:
        # v: the image's VOLUME (the official image declares PGDATA's) made an anonymous one.
        run.remove(force=True, v=True)
    return subprocess.CompletedProcess([kwargs.get("name", "container")], code, out, err)
