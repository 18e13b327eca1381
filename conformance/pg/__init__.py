"""Running PostgreSQL 14 locally: binaries, a free port, the server's lifecycle."""
