"""Property-based, over the Open Inference Protocol routes: no 5xx, and no answer over the bound.

The bound (README, "Limits"): an infer answer holds each output at most once, so it is never
larger than the default answer (all outputs) for the same rows and id. Every 200 here is compared
with that default answer, asked for separately.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from ml_inference.model import ModelCard

from .fuzzing import assert_not_a_server_error, examples, json_values, post_json, ready_client

MAX_BATCH = 16
#: processing_time_ms may take a few more digits in one answer than in the other.
TIMING_SLACK_BYTES = 16
OUTPUT_NAMES = ("output-0", "label", "probabilities")
FUZZ_SETTINGS = examples(200)

parameters = st.none() | st.dictionaries(st.text(max_size=12), json_values, max_size=4) | json_values
datatypes = st.sampled_from(["FP32", "FP16", "FP64", "INT8", "INT64", "UINT8", "BYTES", "BOOL", "", "fp32"])
rows = st.lists(
    st.lists(st.floats(min_value=0, max_value=10), min_size=4, max_size=4), min_size=1, max_size=20
)
output_names = st.sampled_from(OUTPUT_NAMES) | st.text(max_size=14)
outputs = (
    st.none()
    # Known names, repeated: what an amplification attempt looks like.
    | st.lists(st.sampled_from(OUTPUT_NAMES).map(lambda name: {"name": name}), min_size=1, max_size=12)
    | st.lists(
        st.fixed_dictionaries({"name": output_names}, optional={"parameters": parameters}) | json_values,
        max_size=8,
    )
)
ids = st.none() | st.text(max_size=40) | json_values


@st.composite
def infer_bodies(draw: st.DrawFn) -> dict:
    """Mostly well-formed tensors (so that answers happen), each field now and then a near miss."""

    def sometimes(good: object, bad: st.SearchStrategy) -> object:
        return draw(bad) if draw(st.integers(0, 5)) == 0 else good

    data = draw(rows)
    flat = [value for row in data for value in row]
    tensor: dict = {
        "name": sometimes("input-0", st.text(max_size=8)),
        "shape": sometimes([len(data), 4], st.lists(st.integers(-2, 30), max_size=3) | json_values),
        "datatype": sometimes(draw(st.sampled_from(["FP32", "FP64", "INT64"])), datatypes | json_values),
        "data": sometimes(draw(st.sampled_from([flat, data])), json_values),
    }
    if draw(st.booleans()):
        tensor["parameters"] = draw(parameters)
    body: dict = {"inputs": sometimes([tensor], st.lists(st.just(tensor), max_size=3) | json_values)}
    for key, strategy in (("id", ids), ("parameters", parameters), ("outputs", outputs)):
        if draw(st.booleans()):
            body[key] = draw(strategy)
    return body


@pytest.fixture(scope="module")
def fuzz_client(model_dir: Path) -> Iterator[TestClient]:
    with ready_client(model_dir, max_batch=MAX_BATCH) as client:
        yield client


@FUZZ_SETTINGS
@given(body=infer_bodies(), versioned=st.booleans())
def test_no_infer_request_gets_a_5xx_or_an_answer_over_the_bound(
    fuzz_client: TestClient, card: ModelCard, body: dict, versioned: bool
) -> None:
    path = "/v2/models/sklearn-iris" + (f"/versions/{card.version}" if versioned else "") + "/infer"
    response = post_json(fuzz_client, path, body)
    assert_not_a_server_error(response)
    if response.status_code == 200:
        default = post_json(
            fuzz_client, path, {key: value for key, value in body.items() if key != "outputs"}
        )
        assert default.status_code == 200
        assert len(response.content) <= len(default.content) + TIMING_SLACK_BYTES


@FUZZ_SETTINGS
@given(
    name=st.just("sklearn-iris") | st.text(st.characters(min_codepoint=33, max_codepoint=126), max_size=12),
    version=st.none() | st.text(st.characters(min_codepoint=48, max_codepoint=122), max_size=8),
    suffix=st.sampled_from(["", "/ready", "/infer"]),
    method=st.sampled_from(["GET", "POST"]),
)
def test_no_oip_route_gets_a_5xx_whatever_the_name_version_or_method(
    fuzz_client: TestClient, name: str, version: str | None, suffix: str, method: str
) -> None:
    path = f"/v2/models/{name.replace('/', '_').replace('?', '_').replace('#', '_')}"
    if version:
        path += f"/versions/{version}"
    response = fuzz_client.request(method, path + suffix, json={"inputs": []})
    assert response.status_code < 500, response.text
