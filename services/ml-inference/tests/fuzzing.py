"""What the property tests share: arbitrary JSON, a client for it, and the one rule every answer keeps."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from ml_inference.app import create_app
from ml_inference.settings import Settings

from .conftest import wait_until_ready


def examples(count: int) -> settings:
    """Hypothesis settings for `count` examples against a module-scoped client."""
    return settings(
        max_examples=count, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
    )


#: Extreme numbers too: NaN, infinities and integers beyond any float.
numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=-10, max_value=10),
    st.integers(min_value=-(2**70), max_value=2**70),
)
json_values = st.recursive(
    st.none() | st.booleans() | numbers | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=6) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=30,
)


@contextmanager
def ready_client(model_dir: Path, *, max_batch: int) -> Iterator[TestClient]:
    """The app on `model_dir`, its model loaded."""
    with TestClient(create_app(Settings(model_dir=model_dir, max_batch=max_batch))) as client:
        wait_until_ready(client)
        yield client


def post_json(client: TestClient, path: str, body: object) -> httpx.Response:
    """POST `body` as Python's json writes it: NaN and Infinity included, as careless clients send them."""
    return client.post(path, content=json.dumps(body), headers={"content-type": "application/json"})


def assert_not_a_server_error(response: httpx.Response) -> None:
    """Never a 5xx; an error answer always says what is wrong."""
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        body = response.json()
        assert isinstance(body["error"], str) and body["error"]
