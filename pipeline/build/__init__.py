"""What the build job is made of: the content tag, the wheelhouse, the image, its verification,
its SBOM and its push. Each module does one step; `pipeline.jobs.build` runs them in order.
"""

from __future__ import annotations


class BuildError(Exception):
    """A build step failed for a reason the user can act on; the message names the cause."""
