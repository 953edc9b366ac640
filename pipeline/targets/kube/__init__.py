"""The kind and minikube targets (`target.py`): real Kubernetes, with Argo CD deploying from Git."""

from pipeline.targets.kube.target import KubeTarget, make_target

__all__ = ["KubeTarget", "make_target"]
