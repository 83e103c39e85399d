"""What a user may ask for on the spawn form or through the REST API, and the answer they get."""

from __future__ import annotations

import pytest

from spawner.gpu_choices import GpuRequest, GpuRequestError, offered_choices, parse_gpu_request

OFFER = dict(default_gpus=0, fractions=[0.25, 0.5], max_whole=4)


@pytest.mark.parametrize(
    "options, expected",
    [
        ({}, GpuRequest(0)),  # nothing said: the admin's default
        ({"gpus": "none"}, GpuRequest(0)),
        ({"gpus": ["1"]}, GpuRequest(1)),  # raw form data
        ({"gpus": 2}, GpuRequest(2)),  # JSON from the REST API
        ({"gpus": "0.5", "team": "vision"}, GpuRequest(0.5, team="vision")),
        ({"gpus": "4", "gpu_model": "V100-SXM3-32GB"}, GpuRequest(4, gpu_model="V100-SXM3-32GB")),
        ({"gpus": "1", "gpu_model": "any", "team": ""}, GpuRequest(1)),
    ],
)
def test_offered_requests_are_understood(options, expected):
    assert parse_gpu_request(options, **OFFER) == expected


@pytest.mark.parametrize(
    "options, says",
    [
        ({"gpus": "5"}, "5 GPUs is not offered here"),
        ({"gpus": "0.3"}, "0.3 GPUs is not offered here"),
        ({"gpus": "-1"}, "not offered"),
        ({"gpus": "lots"}, "'lots' is not a number of GPUs"),
    ],
)
def test_requests_not_offered_are_refused_with_the_choices(options, says):
    with pytest.raises(GpuRequestError) as e:
        parse_gpu_request(options, **OFFER)
    assert says in str(e.value)
    assert "0, 0.25, 0.5, 1, 2, 3, 4" in str(e.value)


def test_admins_shape_the_choices():
    assert offered_choices([0.5, 1.5, 0], 2) == [0, 0.5, 1, 2]  # only sensible fractions
    assert offered_choices([], 0) == [0]
    assert parse_gpu_request({}, default_gpus=1, fractions=[], max_whole=2) == GpuRequest(1)
