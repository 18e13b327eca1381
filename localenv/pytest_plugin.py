"""pytest plugin, registered by the package's pytest11 entry point: `pip install` is all it takes.

    def test_a_change_is_recorded(product_change_db):
        product_change_db.conn.execute("INSERT INTO ...")     # the app account, on a fresh clone

    @pytest.mark.product_change_db(role="admin")              # another account
    def test_as_admin(product_change_db): ...

Each test gets a database of its own, copied from a template of the dev database (schema, seed
rows, privileges; the server's real accounts), and its URLs (product_change_db.url, .jdbc_url).
The clones come from localenv's server when one is up, else from a throwaway embedded server
started for the session (per xdist worker). A pool makes them ahead of the tests; each is
dropped after its test, pass or fail; a killed session's are swept by the next.

Options (or ini keys): --localenv-pool N (localenv_pool: clones kept ready; default as many
as this worker's tests that use the fixture, up to 32; 0: each made when asked),
--localenv-server auto|localenv|embedded (localenv_server, default auto).
"""

from __future__ import annotations

import pytest

MARKER = "product_change_db"
# A clone holds a copy of the template (about 8 MB, in memory for the throwaway server).
POOL_CAP = 32


def pytest_addoption(parser) -> None:
    group = parser.getgroup("localenv", "Product-Change dev database, a fresh clone per test")
    group.addoption("--localenv-pool", type=int, default=None, metavar="N",
                    help=f"clones kept ready ahead of the tests (default: as many as the tests that use "
                         f"product_change_db, up to {POOL_CAP}; 0: each made when asked)")
    group.addoption("--localenv-server", choices=("auto", "localenv", "embedded"), default=None,
                    help="localenv's running server, a throwaway embedded one, or auto (localenv's when up)")
    parser.addini("localenv_pool", f"clones kept ready (default: the tests', up to {POOL_CAP})", default="auto")
    parser.addini("localenv_server", "auto, localenv or embedded (default auto)", default="auto")


def pytest_configure(config) -> None:
    config.addinivalue_line("markers", f"{MARKER}(role='app'): the account product_change_db connects as "
                                       "(app, admin or readonly)")


def _workers(config) -> int:
    """xdist's worker count in a worker (1 without xdist)."""
    return int(getattr(config, "workerinput", {}).get("workercount", 1) or 1)


def _option(config, name: str):
    value = config.getoption(f"--localenv-{name}")
    return value if value is not None else config.getini(f"localenv_{name}")


@pytest.hookimpl(trylast=True)  # after -k, -m and --deselect have had their say
def pytest_collection_modifyitems(session, config, items) -> None:
    """How many of the tests want a clone: the pool's size when none is given. Under xdist each
    worker collects them all and runs its share."""
    wanting = sum(1 for item in items if MARKER in getattr(item, "fixturenames", ()))  # fixture and marker: one name
    config._localenv_wanting = -(-wanting // _workers(config))  # ceiling


def _pool_size(config) -> int:
    value = _option(config, "pool")
    if value in (None, "auto"):
        return min(getattr(config, "_localenv_wanting", POOL_CAP), POOL_CAP)
    try:
        size = int(value)
    except (TypeError, ValueError):
        raise pytest.UsageError(f"localenv_pool {value!r}: a whole number, or auto") from None
    if size < 0:
        raise pytest.UsageError(f"--localenv-pool {size}: 0 or more")
    return size


@pytest.fixture(scope="session")
def product_change_databases(request):
    """The session's pool of clones (per xdist worker): a localenv.api.Databases."""
    from localenv.api import databases

    config = request.config
    with databases(pool_size=_pool_size(config), server=_option(config, "server"), sharing=_workers(config)) as dbs:
        yield dbs


@pytest.fixture
def product_change_db(request, product_change_databases):
    """A fresh clone of the dev database for this test: .conn (psycopg, autocommit off), .url,
    .jdbc_url, .name, .connect(role); as the app account unless the marker asks for another."""
    marker = request.node.get_closest_marker(MARKER)
    role = (marker.kwargs.get("role") if marker else None) or "app"
    if role not in ("app", "admin", "readonly"):
        raise pytest.UsageError(f"@pytest.mark.{MARKER}(role={role!r}): one of app, admin, readonly")
    db = product_change_databases.take(role)
    try:
        yield db
    finally:
        product_change_databases.give_back(db)
