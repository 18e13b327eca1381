"""Runbooks: the on-call engineer's steps for the dev cluster (restore, upgrade, rollback, node
crash, snapshot, coming from the plan's v1.0), written from the manifests of the major they
act on, printed as a script or markdown, checked command by command (lint.py) and rehearsed
on the embedded and Docker targets (execute.py)."""
