"""The engine tests' fixtures live in fake_project.py (importable by tests, unlike a conftest)."""

from tests.engine.fake_project import driver_command, fake_project

__all__ = ["driver_command", "fake_project"]
