"""What Git says: rendering gitops/ and observability/, the app of apps, pinned versions, the source.

- `render`: `kubectl kustomize`, with the one kubectl lookup and timeout everyone uses;
- `appofapps`: the root Application, the AppProjects and the children Argo CD renders from them;
- `versions`: every external version, pinned (the workflow generator reads it too);
- `source`: the repository and commit Argo CD reads;
- `checks/`: the offline checks of all of it (`python -m pipeline.gitops.checks`).

Nothing here runs at import time; every read of Git is a call.
"""
