"""Tries whose refusal is the point of a check, with the SQLSTATE that refused them: a
statement in a savepoint, and a connection. A try that fails for another reason (the server
down, a timeout, another error) proves nothing; the callers make that an error of the check.

psycopg reports a failed connection without its SQLSTATE (libpq keeps only the text), so a
connection is tried through libpq itself with its error verbosity raised before the server
answers: libpq then writes the code into the message ("FATAL:  28P01: password ...")."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import glob
import os
import re
import select
import time
from dataclasses import dataclass

import psycopg


def statement(conn, sql: str, params=()) -> psycopg.Error | None:
    """None when the statement worked, else its error; the transaction stays usable (the try
    runs in a savepoint, rolled back to when it fails)."""
    conn.execute("SAVEPOINT attempt")
    try:
        conn.execute(sql, params)
        conn.execute("RELEASE SAVEPOINT attempt")
        return None
    except psycopg.Error as exc:
        conn.execute("ROLLBACK TO SAVEPOINT attempt")
        return exc


@dataclass(frozen=True)
class Connection:
    connected: bool
    sqlstate: str | None  # the server's code when it refused; None when it did not answer one
    message: str


_POLLING_FAILED, _POLLING_READING, _POLLING_WRITING, _POLLING_OK = 0, 1, 2, 3
_ERRORS_VERBOSE = 2


@functools.cache
def _libpq() -> ctypes.CDLL:
    """psycopg's own libpq (the binary wheel bundles it), else the system's."""
    here = os.path.dirname(psycopg.__file__)
    bundled = sorted(glob.glob(os.path.join(os.path.dirname(here), "psycopg_binary.libs", "libpq*.so*")))
    path = bundled[0] if bundled else ctypes.util.find_library("pq")
    if path is None:
        raise OSError("no libpq: neither psycopg's binary wheel nor the system has one")
    lib = ctypes.CDLL(path)
    lib.PQconnectStart.restype = ctypes.c_void_p
    lib.PQconnectStart.argtypes = [ctypes.c_char_p]
    for name in ("PQconnectPoll", "PQsocket"):
        getattr(lib, name).restype = ctypes.c_int
        getattr(lib, name).argtypes = [ctypes.c_void_p]
    lib.PQsetErrorVerbosity.argtypes = [ctypes.c_void_p, ctypes.c_int]
    lib.PQerrorMessage.restype = ctypes.c_char_p
    lib.PQerrorMessage.argtypes = [ctypes.c_void_p]
    lib.PQfinish.argtypes = [ctypes.c_void_p]
    return lib


def connection(info: dict, timeout: float = 10) -> Connection:
    """Connect with these parameters (a target's conninfo) and close again."""
    from psycopg.conninfo import make_conninfo

    params = {k: v for k, v in info.items() if k != "connect_timeout"}
    lib = _libpq()
    conn = lib.PQconnectStart(make_conninfo(**params).encode())
    if not conn:
        return Connection(False, None, "libpq could not allocate a connection")
    try:
        lib.PQsetErrorVerbosity(conn, _ERRORS_VERBOSE)
        deadline = time.monotonic() + timeout
        while True:
            state = lib.PQconnectPoll(conn)
            if state == _POLLING_OK:
                return Connection(True, None, "")
            if state == _POLLING_FAILED:
                message = (lib.PQerrorMessage(conn) or b"").decode(errors="replace").strip()
                code = re.search(r"\b(?:FATAL|ERROR):\s+([0-9A-Z]{5}):", message)
                return Connection(False, code.group(1) if code else None, message)
            left = deadline - time.monotonic()
            if left <= 0:
                return Connection(False, None, f"no answer within {timeout:.0f} s")
            socket = lib.PQsocket(conn)
            if state == _POLLING_READING:
                select.select([socket], [], [], left)
            else:
                select.select([], [socket], [], left)
    finally:
        lib.PQfinish(conn)
