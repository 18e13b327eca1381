"""The Product-Change dev database on a developer's laptop: the manifests' PostgreSQL 14,
postgresql.conf, schema, accounts and initial data, started by the conformance suite's own
native (or docker) target and left running until `down`."""
