"""Fresh databases for tests, copied from a template: one `CREATE DATABASE ... TEMPLATE` each.

The template is built from the schema the checkout has (the init Job's own script, run against
a database of its own), never from the developer's database: its rows are the developer's.
It is named after the schema's content (the schema ConfigMap, which holds sql/ and its
migrations), so a change of sql/ makes a new template and the next clone follows it, as
IntegreSQL keys templates by a hash. It takes no connections (ALLOW_CONNECTIONS false): a
session on it would make every CREATE DATABASE from it fail.

A clone gets what a database-level GRANT and `ALTER ROLE ... IN DATABASE` gave the template
(PostgreSQL copies neither with the files): the accounts connect and find their search_path
as on the cluster. The accounts are the server's, shared by every database.

Who made a clone, and when, is its database comment. A clone whose owner process is gone, or
older than the limit, is swept by the next command that makes or lists clones.

Concurrency: a template is built or dropped under an exclusive advisory lock; a clone is made
under a shared one, so a template is never rebuilt while a clone is being made from it."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import psycopg
from psycopg import sql

from conformance import workload
from conformance.errors import EnvironmentProblem, one_line
from conformance.targets.docker_janitor import alive, owner as this_process
from localenv.connection import Endpoint

CLONE_PREFIX = "pc_clone_"
TEMPLATE_PREFIX = "pc_template_"
BUILDING = "_building"
# pg_advisory_lock's key for templates: "PCDB" in ASCII, a number no other tool here uses.
LOCK_KEY = 0x50434442
DEFAULT_TTL = timedelta(hours=24)
SWEEP_WAIT_S = 5  # how long a sweep waits for the makers to let it judge ownerless clones
# Settings whose value is a list (GUC_LIST_QUOTE in PostgreSQL's guc tables): stored as SQL.
LIST_SETTINGS = {"search_path", "temp_tablespaces", "session_preload_libraries", "local_preload_libraries"}
KEEP_TEMPLATES = 3  # this schema's and the two newest others (other checkouts on the same server)


@dataclass(frozen=True)
class CloneInfo:
    """A clone as the server lists it."""
    name: str
    owner: str        # host/pid/start time of the process it belongs to
    created: datetime
    template: str
    role: str = "app"
    ttl: timedelta = DEFAULT_TTL  # swept once older, whether its owner lives or not

    @property
    def expires(self) -> datetime:
        return self.created + self.ttl

    @property
    def owner_alive(self) -> bool:
        return alive(self.owner)

    def age(self, now: datetime | None = None) -> timedelta:
        return (now or datetime.now(timezone.utc)) - self.created


@dataclass(frozen=True)
class Clone:
    """A database of its own: the URLs and connections of each account."""
    name: str
    endpoint: Endpoint
    role: str = "app"
    passfile: str | None = None  # a pgpass with the accounts' passwords for this server (mode 0600)

    def conninfo(self, role: str | None = None) -> dict:
        return self.endpoint.conninfo(role or self.role)

    def url(self, role: str | None = None, with_password: bool = False) -> str:
        """libpq URL; without the password it names the pgpass file that has it, so another
        process can use it as it is."""
        url = self.endpoint.libpq_url(role or self.role, with_password)
        if self.passfile and not with_password:
            from urllib.parse import quote

            url += f"&passfile={quote(self.passfile, safe='/')}"
        return url

    @property
    def jdbc_url(self) -> str:
        return self.endpoint.jdbc_url()

    def connect(self, role: str | None = None, **kwargs) -> psycopg.Connection:
        return connect(self.conninfo(role), **kwargs)

    def as_json(self, with_password: bool = True) -> dict:
        login = self.endpoint.login(self.role)
        out = {"name": self.name, "role": self.role, "user": login.user, "host": self.endpoint.host,
               "port": self.endpoint.port, "database": self.name, "schema": self.endpoint.schema,
               "url": self.url(), "jdbc_url": self.jdbc_url}
        if with_password:
            out["password"] = login.password
        return out


def connect(info: dict, **kwargs) -> psycopg.Connection:
    """psycopg.connect, its failure one line without the connection's arguments: a traceback
    through psycopg's own frame would show the password in pytest's output, and so would this
    frame (its argument holds it): pytest leaves it out of tracebacks."""
    __tracebackhide__ = True
    try:
        return psycopg.connect(**info, **kwargs)
    except psycopg.OperationalError as exc:
        where = f"{info.get('user')}@{info.get('host')}:{info.get('port')}/{info.get('dbname')}"
        said = one_line(exc).replace(str(info.get("password") or "\0"), "***")
        raise EnvironmentProblem(f"cannot connect as {where}: {said}") from None


def template_key(manifests) -> str:
    """The schema's content: the schema ConfigMap's keys and texts (sql/ and its migrations)."""
    from localenv.backend import schema_sha

    return schema_sha(manifests)


def _comment(owner: str, template: str, role: str, ttl: timedelta) -> str:
    return json.dumps({"owner": owner, "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                       "template": template, "role": role, "ttl_s": int(ttl.total_seconds())}, sort_keys=True)


def _parse(name: str, comment: str | None) -> CloneInfo:
    try:
        data = json.loads(comment or "")
        created = datetime.fromisoformat(data["created"])
        ttl = timedelta(seconds=int(data["ttl_s"])) if "ttl_s" in data else DEFAULT_TTL
        return CloneInfo(name, data.get("owner", ""), created, data.get("template", ""), data.get("role", "app"), ttl)
    except (ValueError, KeyError, TypeError):
        # No comment (made half-way by a killed process): owner unknown, as old as can be.
        return CloneInfo(name, "", datetime.fromtimestamp(0, timezone.utc), "")


class Clones:
    """Templates and clones on one running server (a conformance target)."""

    def __init__(self, target, progress=None, owner: str | None = None, ttl: timedelta = DEFAULT_TTL,
                 passfile: str | None = None):
        self.target = target
        self.passfile = passfile
        self.manifests = target.manifests
        self.progress = progress or (lambda message: None)
        self.owner = owner or this_process()
        self.ttl = ttl
        self.key = template_key(self.manifests)
        self._ensured = False  # ensure_template ran: the template existed then

    @property
    def template(self) -> str:
        return f"{TEMPLATE_PREFIX}{self.key}"

    def _admin(self) -> psycopg.Connection:
        """The bootstrap superuser on the maintenance database: CREATE and DROP DATABASE. Always
        this database: LOCK_KEY's advisory lock is a lock of the database it is taken in."""
        return connect(self.target.conninfo("superuser", dbname="postgres"), autocommit=True)

    # -- the template -----------------------------------------------------------------------
    def ensure_template(self) -> str:
        """The template of the checkout's schema, built if it is not there yet (once per
        schema: concurrent callers wait for the one that builds); templates of other schemas
        are dropped. Checked once per instance: create() finds a template that went since under
        its lock, and says so."""
        if self._ensured:
            return self.template
        with self._admin() as conn:
            if self._complete(conn, self.template):
                self._ensured = True
                return self.template
            conn.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
            try:
                if not self._complete(conn, self.template):
                    self._build(conn)
                self._drop_old_templates(conn)
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
        self._ensured = True
        return self.template

    def _drop_old_templates(self, conn) -> None:
        """Templates of other schemas beyond the newest KEEP_TEMPLATES: two checkouts (two
        branches) on one server each keep theirs, and the list does not grow without end."""
        rows = conn.execute("SELECT datname, shobj_description(oid, 'pg_database') FROM pg_database "
                            "WHERE datname LIKE %s AND datname NOT LIKE %s AND datname <> %s",
                            (TEMPLATE_PREFIX.replace("_", r"\_") + "%", "%" + BUILDING, self.template)).fetchall()
        by_age = sorted(rows, key=lambda row: row[1] or "", reverse=True)  # "built <iso time>", newest first
        for name, _ in by_age[KEEP_TEMPLATES - 1:]:
            self.progress(f"dropping {name}: the template of an older schema")
            self._drop(conn, name, template=True)

    @staticmethod
    def _complete(conn, name: str) -> bool:
        row = conn.execute("SELECT datistemplate FROM pg_database WHERE datname = %s", (name,)).fetchone()
        return bool(row and row[0])

    def _build(self, conn) -> None:
        building = self.template + BUILDING
        self.progress(f"building the template {self.template} (the init Job's script on a database of its own)")
        self._drop(conn, building, template=True)  # a build a killed process left
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(building)))
        proc = self._run_init(building)
        if proc.returncode != 0:
            self._drop(conn, building, template=True)
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or [f"exit {proc.returncode}"]
            raise EnvironmentProblem(f"the schema-init Job's script failed on the template: {tail[0]}")
        self._drop(conn, self.template, template=True)  # half-made by a killed build: not a template
        conn.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(sql.Identifier(building),
                                                                      sql.Identifier(self.template)))
        conn.execute(sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS false IS_TEMPLATE true")
                     .format(sql.Identifier(self.template)))
        conn.execute(sql.SQL("COMMENT ON DATABASE {} IS {}").format(
            sql.Identifier(self.template), sql.Literal(f"built {datetime.now(timezone.utc).isoformat()}")))

    def _run_init(self, database: str):
        """The init Job's script on database (the target writes its SQL from these manifests)."""
        return self.target.run_script(workload.schema_init(self.manifests), env={"PGDATABASE": database})

    def drop_templates(self) -> list[str]:
        """Every template (and half-built one) on the server; none is rebuilt meanwhile."""
        self._ensured = False
        with self._admin() as conn:
            conn.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
            try:
                names = [n for (n,) in conn.execute("SELECT datname FROM pg_database WHERE datname LIKE %s",
                                                    (TEMPLATE_PREFIX.replace("_", r"\_") + "%",)).fetchall()]
                for name in names:
                    self._drop(conn, name, template=True)
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
        return names

    # -- clones ------------------------------------------------------------------------------
    def endpoint(self, database: str) -> Endpoint:
        from localenv.backend import endpoint_of

        return endpoint_of(self.target, self.manifests, database)

    def create(self, role: str = "app", conn: psycopg.Connection | None = None) -> Clone:
        """A new database copied from the template, with the template's database-level grants
        and per-role settings. conn: an open autocommit superuser connection to reuse.
        Three round trips: the shared lock with the template's state, CREATE DATABASE (which
        may not share a transaction), and the rest in one."""
        template = self.ensure_template()
        name = f"{CLONE_PREFIX}{self.key[:8]}_{secrets.token_hex(5)}"
        own = conn is None
        conn = conn or self._admin()
        try:
            complete = conn.execute("SELECT pg_advisory_lock_shared(%s), (SELECT datistemplate FROM pg_database "
                                    "WHERE datname = %s)", (LOCK_KEY, template)).fetchone()[1]
            # Held until the comment names the owner: a sweep drops a clone without one only
            # under the exclusive lock (a killed maker's), never one still being made.
            try:
                if not complete:  # dropped by another process's newer schema
                    raise EnvironmentProblem(f"the template {template} went away (sql/ changed in another checkout "
                                             "using this server?); run again")
                conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name),
                                                                              sql.Identifier(template)))
                comment = sql.SQL("COMMENT ON DATABASE {} IS {}").format(
                    sql.Identifier(name), sql.Literal(_comment(self.owner, template, role, self.ttl)))
                # Several statements in one simple query: one round trip (no parameters).
                conn.execute(sql.SQL("; ").join([comment, *self._settings_for(conn, template, name)])
                             .as_string(conn))
            finally:
                conn.execute("SELECT pg_advisory_unlock_shared(%s)", (LOCK_KEY,))
        except BaseException:
            self._drop(conn, name)
            raise
        finally:
            if own:
                conn.close()
        return Clone(name, self.endpoint(name), role, self.passfile)

    def _settings_for(self, conn, template: str, name: str) -> list[sql.Composable]:
        """What CREATE DATABASE does not copy: the database's ACL (CONNECT for the accounts,
        none for PUBLIC) and `ALTER ROLE ... IN DATABASE` settings (the search_path), read from
        the template once."""
        cached = getattr(self, "_settings_cache", None)
        if cached is None or cached[0] != template:
            grants = conn.execute(
                """SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee) END,
                          a.privilege_type, a.is_grantable
                   FROM pg_database d, aclexplode(coalesce(d.datacl, acldefault('d', d.datdba))) a
                   WHERE d.datname = %s AND a.grantee <> d.datdba""", (template,)).fetchall()
            settings = conn.execute(
                """SELECT pg_get_userbyid(s.setrole), s.setrole = 0, s.setconfig FROM pg_db_role_setting s
                   JOIN pg_database d ON d.oid = s.setdatabase WHERE d.datname = %s""", (template,)).fetchall()
            cached = (template, grants, settings)
            self._settings_cache = cached
        _, grants, settings = cached
        ident = sql.Identifier(name)
        out: list[sql.Composable] = [sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(ident)]
        for grantee, privilege, grantable in grants:
            who = sql.SQL("PUBLIC") if grantee == "PUBLIC" else sql.Identifier(grantee)
            out.append(sql.SQL("GRANT {} ON DATABASE {} TO {}{}").format(
                sql.SQL(privilege), ident, who, sql.SQL(" WITH GRANT OPTION" if grantable else "")))
        for role, every_role, config in settings:
            for item in config or []:
                key, _, value = item.partition("=")
                scope = sql.SQL("ALTER DATABASE {}").format(ident) if every_role else \
                    sql.SQL("ALTER ROLE {} IN DATABASE {}").format(sql.Identifier(role), ident)
                # A list setting is kept as PostgreSQL wrote it, its elements quoted where they
                # need it (product_change, "my schema"): given back as written, not as one string.
                given = sql.SQL(value) if key in LIST_SETTINGS else sql.Literal(value)
                out.append(sql.SQL("{} SET {} TO {}").format(scope, sql.Identifier(key), given))
        return out

    @staticmethod
    def _exclusive_within(conn, seconds: float) -> bool:
        """The exclusive lock, waiting up to seconds: a maker holds the shared one for the few
        milliseconds between CREATE DATABASE and its comment, and a killed maker's session ends
        a moment after its process (the server notices the closed connection)."""
        conn.execute(f"SET lock_timeout = '{int(seconds * 1000)}ms'")
        try:
            conn.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
            return True
        except psycopg.errors.LockNotAvailable:
            return False
        finally:
            conn.execute("RESET lock_timeout")

    def list(self) -> list[CloneInfo]:
        with self._admin() as conn:
            rows = conn.execute("SELECT datname, shobj_description(oid, 'pg_database') FROM pg_database "
                                "WHERE datname LIKE %s ORDER BY datname",
                                (CLONE_PREFIX.replace("_", r"\_") + "%",)).fetchall()
        return [_parse(name, comment) for name, comment in rows]

    def drop(self, name: str, conn: psycopg.Connection | None = None) -> bool:
        """Drop one clone (its sessions ended first); False when there was none of that name."""
        if not name.startswith(CLONE_PREFIX):
            from conformance.errors import InputError

            raise InputError(f"{name!r} is not a clone (their names start with {CLONE_PREFIX})")
        if conn is not None:
            return self._drop(conn, name)
        with self._admin() as admin:
            return self._drop(admin, name)

    @staticmethod
    def _drop(conn, name: str, template: bool = False) -> bool:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            return False
        if template:  # a template cannot be dropped
            conn.execute(sql.SQL("ALTER DATABASE {} IS_TEMPLATE false").format(sql.Identifier(name)))
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        return True

    def drop_all(self) -> list[str]:
        """Every clone on the server, whoever made it (localenv drop --all, upgrade)."""
        dropped = []
        with self._admin() as conn:
            for info in self.list():
                if self._drop(conn, info.name):
                    dropped.append(info.name)
        return dropped

    def sweep(self, now: datetime | None = None, wait_s: float = SWEEP_WAIT_S) -> list[str]:
        """Drop the clones whose owner process is gone or that are older than the limit."""
        now = now or datetime.now(timezone.utc)
        gone = []
        with self._admin() as conn:
            # A clone without an owner yet is being made, or was by a process killed half-way:
            # only under the exclusive lock (no maker between CREATE DATABASE and its comment)
            # is it known to be a killed maker's. The lock is taken before listing, always: a
            # killed maker's session may still be inside its CREATE DATABASE, whose clone no
            # listing shows until it commits (CI saw one appear after an earlier listing).
            exclusive = self._exclusive_within(conn, wait_s)
            try:
                for info in self.list():
                    if info.owner == self.owner:
                        continue
                    if not info.owner:
                        doomed = exclusive
                    else:
                        doomed = not info.owner_alive or info.age(now) > info.ttl
                    if doomed and self._drop(conn, info.name):
                        gone.append(info.name)
            finally:
                if exclusive:
                    conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
        return gone

