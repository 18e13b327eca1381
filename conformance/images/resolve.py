"""Which image a container runs: the one the manifests name where it is here or can be
pulled, else its local stand-in, else a one-line error naming the image and the command that
builds the stand-in."""

from __future__ import annotations

from dataclasses import dataclass

from conformance.errors import EnvironmentProblem
from conformance.images import builder, standins

BUILD_COMMAND = "python -m conformance images build"


@dataclass(frozen=True)
class Resolved:
    image: str          # what the manifests name
    run: str            # what the engine runs
    origin: str         # "local", "pulled" or "stand-in"
    note: str = ""      # for reports: `image: … (local stand-in, built … from …)`


def resolve(client, image: str, progress=None) -> Resolved:
    import docker

    progress = progress or (lambda message: None)
    if builder.existing(client, image) is not None:
        return Resolved(image, image, "local")
    try:
        progress(f"pulling {image}")
        client.images.pull(image)
        return Resolved(image, image, "pulled")
    except docker.errors.APIError as exc:
        why = _short(exc)
    standin = builder.existing(client, standins.standin_name(image))
    if standin is not None and standin.labels.get(standins.LABEL_STANDIN_FOR) == image:
        note = f"image: {image} (local stand-in {standins.standin_name(image)}, {builder.describe(standin)})"
        progress(f"{image} cannot be pulled ({why}); using its local stand-in {standins.standin_name(image)}")
        return Resolved(image, standins.standin_name(image), "stand-in", note)
    fix = (f"Fix: {BUILD_COMMAND} (builds a local stand-in), or make the registry reachable"
           if standins.kind_of(image) else "Fix: make the registry reachable, or load the image (docker load)")
    raise EnvironmentProblem(f"image {image} is not here and cannot be pulled ({why}); no local stand-in. {fix}")


def _short(exc) -> str:
    text = str(getattr(exc, "explanation", None) or exc)
    for needle, meaning in (("no such host", "registry unreachable: no such host"),
                            ("i/o timeout", "registry unreachable: timeout"),
                            ("connection refused", "registry unreachable: connection refused"),
                            ("not found", "no such image or tag in the registry"),
                            ("manifest unknown", "no such image or tag in the registry")):
        if needle in text:
            return meaning
    return text.splitlines()[0][:120] if text else type(exc).__name__
