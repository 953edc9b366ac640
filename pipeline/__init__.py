"""The pipeline engine: one job graph, run the same by nox, by Invoke and by GitHub Actions."""
