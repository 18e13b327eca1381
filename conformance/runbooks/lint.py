"""Every command of a runbook checked against the rendered manifests of the majors it acts on
and against what the tools do: the names it uses exist, the pods it makes run what they
should, and the failure modes the runbooks had (docs/runbooks/README.md) cannot come back.
One finding per problem: file, line, rule, what is wrong and what to do."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from conformance import manifests as manifest_loader
from conformance import workload
from conformance.errors import InputError
from conformance.plan import figure
from conformance.runbooks import kubectl_model as km
from conformance.runbooks import shellparse
from conformance.runbooks.shellparse import Command

# rule id -> what it guards (the runbook defects it was written for).
RULES = {
    "name-unknown": "a name the rendered manifests of the runbook's major do not have",
    "namespace": "a namespaced command without -n of the manifests' namespace",
    "container": "exec or logs into a container the pod does not have",
    "image": "an image other than the one the manifests of the runbook's major run",
    "claim": "a pod mounting a claim the manifests do not make",
    "pgdata-path": "a data-directory path that is not PGDATA as mounted in that pod",
    "pod-security": "a pod the namespace's Pod Security (restricted) would warn about",
    "run-no-command": "kubectl run whose pod runs the image's own command: --overrides (a JSON merge patch) "
                      "replaced the containers list and the command after -- with it",
    "run-no-stdin": "kubectl run -i/-t whose first container has no stdin to attach to",
    "run-restart-always": "kubectl run --rm with restartPolicy Always (its default)",
    "wait-complete-only": "kubectl wait --for=condition=complete on a Job: a failed Job hangs it to its timeout",
    "job-not-rerun": "a Job applied or created again without deleting it first: unchanged (no new run) or refused",
    "restore-unpinned": "the restore Job applied without the ConfigMap that names its dump",
    "cronjob-not-suspended": "a dump and restore while the backup CronJob can still run between them",
    "rows-not-compared": "a restore whose rows are not counted before and compared after",
    "verify-wrong-manifests": "conformance run --pg-major N on manifests of another major",
    "restore-not-atomic": "pg_restore into a database without --single-transaction and --exit-on-error",
    "writers-running": "a restore while the service still writes",
    "toc-only-check": "pg_restore --list as a check of a dump: it reads only the table of contents",
    "data-only-seeded": "a data-only restore into tables holding the init Job's seed rows",
    "multi-attach": "a pod on the data claim before the StatefulSet's pod is gone (ReadWriteOnce)",
    "scale-back-regardless": "the StatefulSet scaled back up in the same pasted block as the repair, "
                             "whether the repair worked or not",
    "amcheck-missing-extension": "pg_amcheck without --install-missing (amcheck is not installed by the init Job)",
    "released-pv": "a retained claim deleted without its volume: a Released volume and a billed disk stay",
}


@dataclass(frozen=True)
class Finding:
    file: str
    line: int
    rule: str
    message: str
    command: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.rule}: {self.message} [{self.command[:120]}]"


@dataclass
class World:
    """What the manifests of the runbook's majors make: objects, images, pods' containers."""
    namespace: str
    objects: set[tuple[str, str]] = field(default_factory=set)
    images: set[str] = field(default_factory=set)
    containers: dict[str, set[str]] = field(default_factory=dict)  # pod -> container names
    data_layout: dict[str, tuple[str, str]] = field(default_factory=dict)  # claim -> (mount, PGDATA)
    retained_claims: set[str] = field(default_factory=set)
    jobs_of: dict[str, set[str]] = field(default_factory=dict)  # an apply -k folder -> the Jobs it renders
    restore_job: str = ""
    restore_request: str = ""
    majors: dict[str, int] = field(default_factory=dict)  # manifests folder -> major


def world(root: Path, majors: list[int]) -> World:
    from conformance.runbooks.facts import manifests_path, read, restore_path

    w = World(figure("namespace").expected)
    for major in majors:
        mdir, rdir = manifests_path(root, major), restore_path(root, major)
        for folder in (mdir, rdir, root / "manifests" / "shared", root / "manifests" / "monitoring"):
            if not folder.is_dir():
                continue
            loaded = manifest_loader.load(folder)
            rel = str(folder.relative_to(root))
            w.jobs_of[rel] = {o.name for o in loaded.of_kind("Job")}
            w.majors[rel] = major
            for obj in loaded.objects:
                w.objects.add((obj.kind, obj.name))
                if obj.kind in workload.POD_SPEC:
                    for c in workload.pod_spec(obj).get("containers") or []:
                        w.images.add(c.get("image", ""))
        f = read(root, major)
        loaded = manifest_loader.load(mdir)
        sts = workload.database(loaded).owner
        replicas = int(sts.get(("spec", "replicas")) or 1)
        for i in range(replicas):
            pod = f"{sts.name}-{i}"
            w.objects.add(("Pod", pod))
            # `kubectl logs|exec -c` takes an init container's name too (its log stays after it ran).
            w.containers[pod] = w.containers.get(pod, set()) | {
                c.get("name") for group in ("initContainers", "containers")
                for c in workload.pod_spec(sts).get(group) or []}
            for template in workload.claim_templates(sts):
                w.objects.add(("PersistentVolumeClaim", f"{template}-{sts.name}-{i}"))
        w.data_layout[f.data_claim] = (f.data_mount, f.pgdata)
        classes = {o.name: o for o in loaded.of_kind("StorageClass")}
        for template in sts.get(("spec", "volumeClaimTemplates")) or []:
            sc = classes.get((template.get("spec") or {}).get("storageClassName"))
            if sc is not None and sc.get(("reclaimPolicy",)) == "Retain":
                w.retained_claims.add(f"{(template.get('metadata') or {}).get('name')}-{sts.name}-0")
        w.restore_job, w.restore_request = f.restore_job, f.restore_request
    return w


class _Scope:
    """What a runbook has done so far, for the rules that follow a sequence."""

    def __init__(self):
        self.created: set[tuple[str, str]] = set()
        self.deleted_jobs: set[str] = set()
        self.configmaps: set[str] = set()
        self.suspended = False
        self.rows_counted = 0
        self.rows_compared = False
        self.writers_stopped = False
        self.scaled_down: dict[str, int] = {}  # StatefulSet -> line
        self.pod_gone: set[str] = set()
        self.deleted_pvcs: list[tuple[str, Command]] = []
        self.deleted_pvs = 0
        self.dumped = False
        self.restores: list[Command] = []


class Linter:
    def __init__(self, w: World, root: Path, file: str):
        self.w, self.root, self.file = w, root, file
        self.findings: list[Finding] = []
        self.script: shellparse.Script | None = None

    def add(self, c: Command, rule: str, message: str) -> None:
        self.findings.append(Finding(self.file, c.line, rule, message, c.text))

    # -- entry points -------------------------------------------------------------------------
    def lint(self, script: shellparse.Script, blocks: list[shellparse.Block] | None = None) -> list[Finding]:
        self.script = script
        for line, why in script.errors:
            self.findings.append(Finding(self.file, line, "unparsed", f"a block the shell grammar cannot read: {why}",
                                         ""))
        scopes: dict[str, _Scope] = {}
        for c in script.commands:
            if c.function is not None:
                self.command(c, _Scope())  # a helper's body: its names, not the runbook's sequence
                continue
            self.command(c, scopes.setdefault(c.section, _Scope()))
        for scope in scopes.values():
            self.finish(scope)
        if blocks is not None:
            self.blocks(script, blocks)
        return self.findings

    # -- one command ------------------------------------------------------------------------------
    def command(self, c: Command, scope: _Scope) -> None:
        program = c.program
        if program == "kubectl":
            self.kubectl(c, scope)
        elif program in ("pg_restore", "pg_amcheck", "psql", "sh", "bash") or program.endswith("python"):
            self.tool(c, scope, c.words)
        elif self.script and program in self.script.functions:
            self.helper(c, scope)
        elif program == "diff":
            scope.rows_compared = True

    def helper(self, c: Command, scope: _Scope) -> None:
        name = c.program
        if name == "db_rows":
            scope.rows_counted += 1
        elif name == "writers_gone":
            scope.writers_stopped = True

    def kubectl(self, c: Command, scope: _Scope) -> None:
        call = km.parse(c.words)
        if call is None or not call.verb:
            return
        w = self.w
        namespaced = call.verb not in ("apply", "config", "version", "api-resources") and not all(
            kind in km.CLUSTER_SCOPED for kind, _ in call.refs) if call.refs else call.verb in (
            "run", "create job", "create configmap", "exec", "logs", "scale", "rollout status", "wait")
        if namespaced:
            if call.namespace is None and not call.has("-A", "--all-namespaces"):
                self.add(c, "namespace", f"no -n: it runs in the context's default namespace, not {w.namespace}")
            elif call.namespace is not None and not km.is_dynamic(call.namespace) and call.namespace != w.namespace:
                self.add(c, "namespace", f"namespace {call.namespace}, the manifests' is {w.namespace}")
        for kind, name in call.refs:
            self.known(c, scope, kind, name, call)
        if call.verb in ("exec", "logs") and call.refs and call.flag("-c", "--container"):
            pod = call.refs[0][1]
            container = call.flag("-c", "--container")
            if not km.is_dynamic(pod) and not km.is_dynamic(container) and pod in w.containers \
                    and container not in w.containers[pod]:
                self.add(c, "container", f"pod {pod} has no container {container} "
                                         f"(it has {', '.join(sorted(w.containers[pod]))})")
        if call.verb == "exec" and call.after:
            self.tool(c, scope, call.after, stdin=c.stdin_file)
        if call.verb == "delete":
            for kind, name in call.refs:
                if kind == "Job":
                    scope.deleted_jobs.add(name)
                if kind == "Pod":
                    scope.pod_gone.add(name)
                if kind == "ConfigMap":
                    scope.configmaps.discard(name)
                if kind == "PersistentVolumeClaim":
                    scope.deleted_pvcs.append((name, c))
                if kind == "PersistentVolume":
                    scope.deleted_pvs += 1
        elif call.verb == "wait":
            condition = call.flag("--for") or ""
            if condition.lower() == "condition=complete" and any(k == "Job" for k, _ in call.refs):
                self.add(c, "wait-complete-only", "on a failed Job this waits its whole timeout, then reports a "
                                                  "time-out: wait for Complete or Failed (the runbooks' job_wait)")
            if condition == "delete":
                scope.pod_gone.update(n for k, n in call.refs if k == "Pod")
        elif call.verb == "scale":
            replicas = call.flag("--replicas")
            for kind, name in call.refs:
                if kind == "StatefulSet" and replicas == "0":
                    scope.scaled_down[name] = c.line
                    scope.pod_gone.discard(f"{name}-0")
            if replicas == "0" and any(k != "StatefulSet" for k, _ in call.refs) or (
                    replicas == "0" and call.positionals and km.is_dynamic(call.positionals[0])):
                scope.writers_stopped = True
        elif call.verb == "patch":
            patch = call.flag("-p", "--patch") or ""
            if any(k == "CronJob" for k, _ in call.refs) and re.search(r'"suspend"\s*:\s*true', patch):
                scope.suspended = True
        elif call.verb == "create job":
            name = call.positionals[0] if call.positionals else ""
            if name not in scope.deleted_jobs and not km.is_dynamic(name):
                self.add(c, "job-not-rerun", f"job {name} may exist from an earlier run: `create` then fails; "
                                             "delete it first (--ignore-not-found)")
            scope.created.add(("Job", name))
            scope.deleted_jobs.discard(name)
            if (call.flag("--from") or "").startswith("cronjob/"):
                scope.dumped = True
        elif call.verb == "create configmap":
            name = call.positionals[0] if call.positionals else ""
            scope.created.add(("ConfigMap", name))
            scope.configmaps.add(name)
        elif call.verb == "apply":
            self.apply(c, call, scope)
        elif call.verb == "run":
            self.run(c, call, scope)

    def known(self, c: Command, scope: _Scope, kind: str, name: str, call: km.Call) -> None:
        if km.is_dynamic(name) or kind in ("PersistentVolume", "Deployment") or not name:
            return
        if (kind, name) in self.w.objects or (kind, name) in scope.created:
            return
        if call.verb == "delete" and call.has("--ignore-not-found"):
            return
        same_kind = sorted(n for k, n in self.w.objects if k == kind)
        self.add(c, "name-unknown", f"{kind} {name} is not in the rendered manifests of "
                                    f"{self._majors()} (they have: {', '.join(same_kind) or 'none'})")

    def _majors(self) -> str:
        return "PostgreSQL " + "/".join(str(m) for m in sorted(set(self.w.majors.values())))

    def apply(self, c: Command, call: km.Call, scope: _Scope) -> None:
        folder = call.flag("-k", "--kustomize")
        if folder is not None:
            rel = folder.rstrip("/")
            if km.is_dynamic(rel):
                return
            if rel not in self.w.jobs_of:
                if not (self.root / rel).is_dir():
                    self.add(c, "name-unknown", f"no folder {rel} in the project")
                    return
                try:
                    loaded = manifest_loader.load(self.root / rel)
                except InputError as exc:
                    self.add(c, "name-unknown", f"{rel} does not render: {exc}")
                    return
                self.w.jobs_of[rel] = {o.name for o in loaded.of_kind("Job")}
            for job in sorted(self.w.jobs_of[rel]):
                if job not in scope.deleted_jobs:
                    self.add(c, "job-not-rerun", f"{rel} holds Job {job}: if it still exists, apply reports it "
                                                 "unchanged (no new run) or refuses a changed template; delete it "
                                                 "first (kubectl delete job --ignore-not-found)")
                scope.deleted_jobs.discard(job)
                if job == self.w.restore_job:
                    scope.restores.append((c, "job"))
                    if self.w.restore_request not in scope.configmaps:
                        self.add(c, "restore-unpinned", f"no ConfigMap {self.w.restore_request} names the dump: "
                                                        "create it with dump-file=<the dump this runbook made>")
            return
        if c.heredoc is not None and (call.flag("-f", "--filename") == "-"):
            for doc in yaml.safe_load_all(c.heredoc):
                if isinstance(doc, dict):
                    self.made_object(c, doc, scope, attach=False, call=None)

    def run(self, c: Command, call: km.Call, scope: _Scope) -> None:
        try:
            pod = km.run_pod(call)
        except (ValueError, Exception) as exc:  # json or patch errors: the command fails as kubectl would
            self.add(c, "run-no-command", f"kubectl could not build this pod: {exc}")
            return
        self.made_object(c, pod, scope, attach=km.attaches(call), call=call)

    def made_object(self, c: Command, obj: dict, scope: _Scope, attach: bool, call: km.Call | None) -> None:
        kind, name = obj.get("kind", ""), (obj.get("metadata") or {}).get("name", "")
        scope.created.add((kind, name))
        if kind != "Pod":
            return
        if call is None and (obj.get("metadata") or {}).get("namespace") != self.w.namespace:
            self.add(c, "namespace", f"pod {name} names namespace {(obj.get('metadata') or {}).get('namespace')}, "
                                     f"the manifests' is {self.w.namespace}")
        spec = obj.get("spec") or {}
        containers = spec.get("containers") or []
        first = containers[0] if containers else {}
        if not first.get("command") and not first.get("args"):
            lost = f" (the `-- {' '.join(call.after)}` was dropped)" if call is not None and call.after else ""
            self.add(c, "run-no-command", f"container {first.get('name')} has no command or args: the image's "
                                          f"own command runs (postgres' starts the server){lost}; "
                                          "--overrides is a JSON merge patch and its containers list replaces "
                                          "the generated one whole")
        if attach and not first.get("stdin"):
            self.add(c, "run-no-stdin", f"-i/-t attach to container {first.get('name')}, which has no stdin "
                                        "(the override's container does not set stdin: true)")
        if call is not None and call.has("--rm") and spec.get("restartPolicy", "Always") == "Always":
            self.add(c, "run-restart-always", "with --rm and no --restart=Never the pod's restartPolicy is Always: "
                                              "the command restarts after it ends")
        for ci, container in enumerate(containers):
            image = container.get("image", "")
            if image and self.w.images and image not in self.w.images:
                self.add(c, "image", f"image {image}; the manifests of {self._majors()} run "
                                     f"{', '.join(sorted(i for i in self.w.images if 'postgres:' in i))}")
        mounts = {}
        for volume in spec.get("volumes") or []:
            claim = (volume.get("persistentVolumeClaim") or {}).get("claimName")
            if claim is None:
                continue
            if not km.is_dynamic(claim) and ("PersistentVolumeClaim", claim) not in self.w.objects:
                self.add(c, "claim", f"claim {claim} is not one the manifests of {self._majors()} make "
                                     f"(they make: {', '.join(sorted(self.w.data_layout))})")
            for container in containers:
                for m in container.get("volumeMounts") or []:
                    if m.get("name") == volume.get("name"):
                        mounts[m.get("mountPath", "")] = claim
        for mount, claim in mounts.items():
            if claim in self.w.data_layout:
                self.data_paths(c, containers, mount, claim)
                sts = next((s for s in scope.scaled_down), None)
                if sts is not None and f"{sts}-0" not in scope.pod_gone:
                    self.add(c, "multi-attach", f"{claim} is ReadWriteOnce: wait for pod {sts}-0 to be gone "
                                                f"(kubectl wait --for=delete pod/{sts}-0) before another pod "
                                                "mounts it")
        from conformance.static.pod_security import pod_findings

        for path, expected, found in pod_findings(spec, ("spec",), (obj.get("metadata") or {}).get("annotations") or {}):
            self.add(c, "pod-security", f"{'.'.join(map(str, path))}: expected {expected}, found {found}")

    def data_paths(self, c: Command, containers: list[dict], mount: str, claim: str) -> None:
        data_mount, pgdata = self.w.data_layout[claim]
        expected = mount.rstrip("/") + pgdata[len(data_mount):]
        for container in containers:
            for word in (container.get("command") or []) + (container.get("args") or []):
                for path in re.findall(r"(/[\w./-]*postmaster\.pid)", word):
                    if path != f"{expected}/postmaster.pid":
                        self.add(c, "pgdata-path", f"{path}: PGDATA on claim {claim} is {expected} in this pod "
                                                   f"({pgdata} mounted from {data_mount})")

    # -- the tools a runbook runs (also inside kubectl exec) -----------------------------------------
    def tool(self, c: Command, scope: _Scope, words: list[str], stdin: str | None = None) -> None:
        if not words:
            return
        program = words[0]
        if program in ("sh", "bash") and len(words) >= 3 and words[1] in ("-c", "-ec", "-euc"):
            inner = shellparse.parse_script(words[2].replace(shellparse.DYNAMIC, "X"))
            for ic in inner.commands:
                ic.line, ic.section = c.line, c.section
                self.tool(ic, scope, ic.words)
            return
        if program == "pg_restore":
            self.pg_restore(c, scope, words)
        elif program == "pg_amcheck" and "--install-missing" not in words:
            self.add(c, "amcheck-missing-extension", "pg_amcheck stops with 'no relations to check' where amcheck "
                                                     "is not installed: add --install-missing")
        elif program == "psql":
            text = " ".join(words)
            if "count(" in text.lower() or "rows_sql" in text:
                scope.rows_counted += 1
        elif program.endswith("python") and "conformance" in words and "run" in words:
            self.verify(c, words)

    def pg_restore(self, c: Command, scope: _Scope, words: list[str]) -> None:
        if "--list" in words or "-l" in words:
            self.add(c, "toc-only-check", "pg_restore --list reads only the table of contents: a dump cut short "
                                          "passes it. Read it whole: pg_restore --file=/dev/null DUMP")
        into_database = any(w in ("-d", "--dbname") or w.startswith("--dbname=") for w in words)
        atomic = ({"--single-transaction", "-1"} & set(words)) and ({"--exit-on-error", "-e"} & set(words))
        if into_database:
            scope.restores.append((c, "pg_restore"))
            if not atomic:
                self.add(c, "restore-not-atomic", "a failure half-way leaves the tables it already dropped or "
                                                  "emptied: add --single-transaction --exit-on-error")
        if "--data-only" in words or "-a" in words:
            script_text = " ".join(c.words)
            if into_database and "TRUNCATE" not in script_text.upper():
                self.add(c, "data-only-seeded", "the init Job's seed rows (circuit breakers 1-3) are in the tables: "
                                                "the restore's rows collide with them; empty the tables in the same "
                                                "transaction first")
            if not into_database:
                scope.restores.append((c, "pg_restore"))
        if not scope.writers_stopped and (into_database or "--data-only" in words):
            self.add(c, "writers-running", "nothing stopped the service first: its writes race the restore and "
                                           "are lost or collide (scale it to 0 and wait for its sessions to end)")

    def verify(self, c: Command, words: list[str]) -> None:
        from conformance.runbooks.facts import manifests_path

        major = words[words.index("--pg-major") + 1] if "--pg-major" in words else None
        given = words[words.index("--manifests") + 1] if "--manifests" in words else None
        # Without --manifests the CLI takes the major's own (cli._run_manifests): nothing to flag.
        if major is None or given is None or km.is_dynamic(major) or km.is_dynamic(given):
            return
        wanted = str(manifests_path(self.root, int(major)).relative_to(self.root))
        if given.rstrip("/") != wanted:
            self.add(c, "verify-wrong-manifests", f"--pg-major {major} with --manifests {given}: the checks hold "
                                                  f"PostgreSQL {major}'s server to another major's manifests "
                                                  f"(use {wanted})")

    # -- what a whole runbook must have done --------------------------------------------------------
    def finish(self, scope: _Scope) -> None:
        for c, via in scope.restores:
            if scope.dumped and not scope.suspended:
                self.add(c, "cronjob-not-suspended", "the backup CronJob is not suspended: its nightly run can dump "
                                                     "the half-done database, and the newest dump is then the wrong "
                                                     "one (kubectl patch cronjob … suspend: true)")
            if scope.dumped and (scope.rows_counted < 2 or not scope.rows_compared):
                self.add(c, "rows-not-compared", "no row count before the dump and after the restore, compared "
                                                 "(the wrong dump would restore and 'complete')")
            if not scope.writers_stopped and via == "job":
                self.add(c, "writers-running", "nothing stopped the service first: its writes race the restore and "
                                               "are lost or collide (scale it to 0 and wait for its sessions to end)")
        for claim, c in scope.deleted_pvcs:
            if claim in self.w.retained_claims and scope.deleted_pvs == 0:
                self.add(c, "released-pv", f"{claim}'s volume is retained (reclaimPolicy Retain): delete the "
                                           "PersistentVolume too, and its Azure disk")

    def blocks(self, script: shellparse.Script, blocks: list[shellparse.Block]) -> None:
        """Per pasted block: scaled down and back up in one paste runs the scale-up whatever failed."""
        for index, block in enumerate(blocks):
            if "set -e" in block.text:
                continue
            commands = [c for c in script.commands if c.block == index and c.function is None]
            downs = [c for c in commands if c.program == "kubectl" and "--replicas=0" in c.words]
            ups = [c for c in commands if c.program == "kubectl" and any(
                w.startswith("--replicas=") and w != "--replicas=0" for w in c.words)]
            if downs and ups and ups[0].line > downs[0].line:
                # a repair between them: a one-off pod on the data (kubectl run, or a manifest applied)
                between = [c for c in commands if downs[0].line < c.line < ups[0].line and c.program == "kubectl"
                           and len(c.words) > 1 and (c.words[1] == "run" or "run" in c.words[1:4]
                                                     or ("apply" in c.words and "-f" in c.words))]
                if between:
                    self.add(ups[0], "scale-back-regardless", "pasted as one block, this runs even when the "
                                                              "repair above it failed: scale back in its own step, "
                                                              "after the repair succeeded")


def lint_markdown(text: str, file: str, root: Path, majors: list[int], scope_level: int = 2,
                  sections: tuple[str, ...] | None = None) -> list[Finding]:
    """sections: only the blocks under headings that start with one of these."""
    blocks = shellparse.markdown_blocks(text, scope_level)
    if sections is not None:
        blocks = [b for b in blocks if b.section.startswith(sections)]
    script = shellparse.parse_blocks(blocks)
    return Linter(world(root, majors), root, file).lint(script, blocks)


def lint_script(text: str, file: str, root: Path, majors: list[int]) -> list[Finding]:
    script = shellparse.parse_script(text)
    return Linter(world(root, majors), root, file).lint(script)
