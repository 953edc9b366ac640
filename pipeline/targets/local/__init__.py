"""The `local` target (`target.py`): the service's replicas as processes, run from Git by a reconciler."""

from pipeline.targets.local.target import LocalTarget, make_target

__all__ = ["LocalTarget", "make_target"]
