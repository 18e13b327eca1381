"""How fast a test gets a database of its own: our pool, our clone without it,
pytest-postgresql 10's per-test fixture on the same server with the same SQL, and a fresh
initdb with the init, side by side in one run (`nox -s clones-bench`)."""
