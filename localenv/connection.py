"""How to reach the laptop database: libpq and JDBC URLs, shell exports, a pgpass file.

Passwords are printed only by `localenv env` (the user asked for them); everything else
shows the URLs without one. libpq clients find the password in the pgpass file localenv
writes (mode 0600), so the printed libpq URLs work as they are.
"""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from conformance.pg import libpq
from conformance.plan import figure
from conformance.targets.base import Account as Login  # role, user, password; repr without it

ROLES = ("app", "admin", "readonly")
HIDDEN = "<hidden: localenv env>"


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int
    logins: tuple[Login, ...]
    database: str = figure("database").expected
    schema: str = figure("schema").expected

    def login(self, role: str) -> Login:
        for login in self.logins:
            if login.role == role:
                return login
        raise KeyError(role)

    def conninfo(self, role: str) -> dict:
        login = self.login(role)
        return {"host": self.host, "port": self.port, "user": login.user, "password": login.password,
                "dbname": self.database}

    def libpq_url(self, role: str, with_password: bool = False) -> str:
        login = self.login(role)
        secret = f":{quote(login.password, safe='')}" if with_password else ""
        options = quote(f"-csearch_path={self.schema}", safe="")
        return f"postgresql://{quote(login.user, safe='')}{secret}@{self.host}:{self.port}/{self.database}?options={options}"

    def jdbc_url(self) -> str:
        return f"jdbc:postgresql://{self.host}:{self.port}/{self.database}?currentSchema={self.schema}"

    def variables(self, role: str, pgpass: Path, with_password: bool = False) -> dict[str, str]:
        login = self.login(role)
        password = login.password if with_password else HIDDEN
        out = {
            **{k: v for k, v in libpq.env(self.conninfo(role)).items() if k != "PGPASSWORD"},
            "PGPASSFILE": str(pgpass),
            "SPRING_DATASOURCE_URL": self.jdbc_url(),
            "SPRING_DATASOURCE_USERNAME": login.user,
            "SPRING_DATASOURCE_PASSWORD": password,
        }
        if with_password:
            out["PGPASSWORD"] = login.password
        return out

    def exports(self, role: str, pgpass: Path, with_password: bool = False) -> str:
        return "\n".join(f"export {k}={shlex.quote(v)}"
                         for k, v in self.variables(role, pgpass, with_password).items())

    def pgpass_text(self) -> str:
        # Every database of this server: the dev database, postgres, and the clones (localenv clone).
        return "".join(pgpass_line(self.host, self.port, l.user, l.password) for l in self.logins)

    def describe(self, pgpass: Path) -> str:
        """What `up` prints: per account its URLs, then the app account's exports. No passwords."""
        lines = []
        for login in self.logins:
            lines.append(f"  {login.role} ({login.user})")
            lines.append(f"    libpq  {self.libpq_url(login.role)}")
            lines.append(f"    jdbc   {self.jdbc_url()}&user={quote(login.user, safe='')}")
        lines.append("")
        lines.append("  # the service's account (libpq reads the password from PGPASSFILE)")
        lines.extend("  " + line for line in self.exports("app", pgpass).splitlines())
        lines.append("")
        lines.append('  with passwords: eval "$(python -m localenv env [--as app|admin|readonly])"')
        return "\n".join(lines)


def pgpass_line(host: str, port: int | str, user: str, password: str, database: str = "*") -> str:
    """One line of a pgpass file, its fields escaped as libpq reads them (\\ and :)."""
    def esc(value) -> str:
        return str(value).replace("\\", "\\\\").replace(":", "\\:")

    return f"{esc(host)}:{port}:{esc(database)}:{esc(user)}:{esc(password)}\n"


def write_pgpass(endpoint: Endpoint, path: Path) -> None:
    """Written whole and renamed into place; a temporary name of its own, as two commands may
    write it at once."""
    import tempfile

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".pgpass-", dir=path.parent)  # mode 0600
    with os.fdopen(fd, "w") as handle:
        handle.write(endpoint.pgpass_text())
    os.replace(tmp, path)
