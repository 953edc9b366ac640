"""Offline checks of what Git says (`python -m pipeline.gitops.checks`, the `manifests` session).

`suite.run()` renders everything through `pipeline.gitops` and runs every check: schemas,
workload policy, the Argo CD rules and the observability checks.
"""
