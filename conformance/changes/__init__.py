"""check --base: what applying the manifests over a base (a git ref or a folder) does to the
running dev database, change by change: refused by the API server, data at risk, downtime,
settings that will not take effect, schema changes that do not reach an existing database."""
