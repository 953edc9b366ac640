#!/usr/bin/env bash
# Validate everything the GitOps controllers deploy, offline: the one entry point, used the same
# way locally and in CI.
#
# What it checks: `kubectl kustomize` renders every overlay in gitops/overlays/, gitops/argocd/,
# observability/ and the root Application's source as Argo CD renders it (every environment on,
# the run's patches in); every object validates against the pinned Kubernetes version's schemas
# (strict) or its CRD schema; the hardening/coherence policy; the Argo CD projects, the root and
# its child Applications (sync rules, waves, PSS-restricted namespaces); the observability checks
# (promtool, alert tests, PromQL metric names).
#
# Needs: Python 3.11+ and nox (`pip install -r requirements/tools.txt`); nox installs the rest
# (requirements/manifests.txt, kubectl included). promtool is used by the observability checks.
# CRD schemas come from PIPELINE_CRD_SCHEMA_LOCATION: a directory laid out like the public CRDs
# catalog (<group>/<kind>_<version>.json) or a URL template; unset, the public catalog is used.
# Without internet, point it at a local copy, e.g. the one beside this repository:
#
#   PIPELINE_CRD_SCHEMA_LOCATION=../shared/schemas scripts/validate-manifests.sh
#
# Exits non-zero and names each problem when anything fails.
set -euo pipefail
cd "$(dirname "$0")/.."
exec nox -s manifests -- "$@"
