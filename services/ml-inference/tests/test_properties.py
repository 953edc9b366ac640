"""Property-based: whatever a client sends, the answer is never a 5xx, and errors keep their shape."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from .fuzzing import assert_not_a_server_error, examples, json_values, numbers, ready_client

PATHS = ("/predict", "/predict/batch", "/v2/models/sklearn-iris/infer")
PROPERTY_SETTINGS = examples(150)

# Near-misses are where validation bugs hide: the right keys with wrong, odd or extreme values.
near_valid = st.one_of(
    st.builds(lambda f: {"features": f}, st.lists(numbers | json_values, max_size=6) | json_values),
    st.builds(
        lambda rows: {"instances": rows},
        st.lists(st.lists(numbers | json_values, max_size=6) | json_values, max_size=5) | json_values,
    ),
    st.builds(
        lambda shape, datatype, data: {
            "id": "x",
            "inputs": [{"name": "input-0", "shape": shape, "datatype": datatype, "data": data}],
        },
        st.lists(st.integers(min_value=-2, max_value=6), max_size=3) | json_values,
        st.sampled_from(["FP32", "FP64", "INT64", "BYTES", "BOOL", ""]) | json_values,
        st.lists(numbers | json_values, max_size=12) | json_values,
    ),
)


@pytest.fixture(scope="module")
def shared_client(model_dir: Path) -> Iterator[TestClient]:
    with ready_client(model_dir, max_batch=8) as client:
        yield client


@PROPERTY_SETTINGS
@given(path=st.sampled_from(PATHS), payload=near_valid | json_values)
def test_any_json_payload_is_never_a_server_error(
    shared_client: TestClient, path: str, payload: object
) -> None:
    # json.dumps writes NaN and Infinity tokens as many real clients do.
    body = json.dumps(payload).encode()
    assert_not_a_server_error(
        shared_client.post(path, content=body, headers={"content-type": "application/json"})
    )


@PROPERTY_SETTINGS
@given(
    path=st.sampled_from(PATHS),
    body=st.binary(max_size=200),
    content_type=st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=30),
)
def test_any_bytes_with_any_content_type_are_never_a_server_error(
    shared_client: TestClient, path: str, body: bytes, content_type: str
) -> None:
    headers = {"content-type": content_type.strip() or "application/json"}
    assert_not_a_server_error(shared_client.post(path, content=body, headers=headers))
