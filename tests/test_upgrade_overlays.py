"""upgrade/pgNN/: manifests/ on later majors. Written from the plan data, rendered by the
gate without kubectl exactly as kustomize renders them, and held to that major's figures."""

from __future__ import annotations

import shutil
import subprocess

import pytest
import yaml

from conformance import manifests, upgrade_overlays
from conformance.errors import InputError
from conformance.results import Status
from tests.project import ROOT, run_gate

MAJORS = upgrade_overlays.majors()




def test_the_overlays_are_what_the_plan_data_gives():
    assert upgrade_overlays.differing(manifests.load(ROOT / "manifests"), ROOT / "manifests") == []


@pytest.mark.parametrize("major", MAJORS)
def test_the_gate_passes_each_overlay_for_its_major_and_not_for_14(major):
    path = ROOT / "upgrade" / f"pg{major}"
    bad = [line for r in run_gate(path, major=major).values() if r.status in (Status.FAILED, Status.ERROR)
           for line in (r.lines() or [r.message])]
    assert bad == []
    as_14 = run_gate(path, major=None)["plan-2.2-pg-major"]
    assert as_14.status is Status.FAILED and f"found postgres:{major}." in "\n".join(as_14.lines())


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not on PATH: the comparison with kustomize needs it")
@pytest.mark.parametrize("major", MAJORS)
def test_the_gates_rendering_is_kustomizes(major):
    path = ROOT / "upgrade" / f"pg{major}"
    rendered = subprocess.run(["kubectl", "kustomize", str(path)], capture_output=True, text=True, check=True).stdout
    theirs = {(d["kind"], d["metadata"]["name"]): d for d in yaml.safe_load_all(rendered) if d}
    ours = {(o.kind, o.name): o.data for o in manifests.load(path).objects}
    assert set(theirs) <= set(ours)  # ours also holds manifests/monitoring/, which the gate checks too
    for key, data in theirs.items():
        assert ours[key] == data, key


def _copy(tmp_path):
    for name in ("manifests", "upgrade", "sql", "docs"):
        shutil.copytree(ROOT / name, tmp_path / name)
    return tmp_path


def test_a_wrong_pgdata_in_an_overlay_is_found(tmp_path):
    root = _copy(tmp_path)
    overlay = root / "upgrade" / "pg18" / "kustomization.yaml"
    overlay.write_text(overlay.read_text().replace("value: /var/lib/postgresql/18/docker", "value: /var/lib/postgresql/data/pgdata"))
    result = run_gate(root / "upgrade" / "pg18", major=18)["plan-5.1-pgdata"]
    assert result.status is Status.FAILED
    text = "\n".join(result.lines())
    assert "expected PGDATA=/var/lib/postgresql/18/docker" in text and "found PGDATA=/var/lib/postgresql/data/pgdata" in text


def test_an_overlay_that_no_longer_fits_its_base_is_one_line(tmp_path):
    root = _copy(tmp_path)
    sts = root / "manifests" / "postgresql-product-change-statefulset.yaml"
    sts.write_text(sts.read_text().replace("            - name: PGDATA\n", "            - name: PGDATA_MOVED\n", 1))
    with pytest.raises(InputError) as raised:
        manifests.load(root / "upgrade" / "pg18")
    message = str(raised.value)
    assert "\n" not in message and "patches[0] does not apply to StatefulSet/postgresql-product-change" in message


def test_an_overlay_field_the_gate_does_not_render_is_one_line(tmp_path):
    root = _copy(tmp_path)
    overlay = root / "upgrade" / "pg16" / "kustomization.yaml"
    overlay.write_text(overlay.read_text() + "namePrefix: x-\n")
    with pytest.raises(InputError, match="namePrefix is not rendered by the gate's overlay support"):
        manifests.load(root / "upgrade" / "pg16")


@pytest.mark.parametrize("image,major", [
    ("postgres:18.6-bookworm", 18), ("postgres:14.23-bookworm", 14),
    ("myregistry:5000/postgres:16.2@sha256:" + "0" * 64, 16),
    ("myregistry:5000/postgres", None),  # no tag: latest, no major (the registry's port is none)
])
def test_the_major_an_image_names(image, major):
    from conformance import workload

    assert workload.major_of_image(image) == major


def test_manifests_of_another_major_run_that_major_without_pg_major():
    """`run` or `drills --manifests upgrade/pg18` alone: PostgreSQL 18's server, not the plan's."""
    from conformance import manifests, workload
    from conformance.cli import build_parser, cmd_run
    from conformance.rehearsal import manifests_dir

    assert workload.major_beyond_plan(workload.image_major(manifests.load(ROOT / "manifests"))) is None
    pg18 = manifests_dir(ROOT / "manifests", 18)
    assert workload.major_beyond_plan(workload.image_major(manifests.load(pg18))) == 18
    args = build_parser().parse_args(["run", "--target", "kind", "--manifests", str(pg18)])
    with pytest.raises(InputError, match="--pg-major is not offered on the kind target"):
        cmd_run(args)  # the major was taken from the manifests: kind refuses it before anything runs
