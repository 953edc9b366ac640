"""The suite's one option: --endpoint, the base URL of the deployed service."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

REQUEST_TIMEOUT_SECONDS = 10


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--endpoint", required=True, help="base URL of the service, e.g. http://127.0.0.1:8080")


@pytest.fixture(scope="session")
def client(request: pytest.FixtureRequest) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=request.config.getoption("--endpoint"), timeout=REQUEST_TIMEOUT_SECONDS
    ) as http:
        yield http
