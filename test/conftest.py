"""Shared test fixtures.

ROS tests talk over real Fast DDS. Each test process gets its own ROS_DOMAIN_ID so that
parallel runs on one machine (several checkouts, CI) do not hear each other. The node tests share two
fixtures: ``ros`` (a private rclpy context running lanenet nodes) and ``model`` (the hand-weighted stripe
model), both from test/node_fixtures.py.
"""
from __future__ import annotations

import os

import pytest

os.environ.setdefault("ROS_DOMAIN_ID", str(os.getpid() % 150 + 50))
os.environ.setdefault("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The node tests' hand-weighted stripe model, exported once per test module."""
    from node_fixtures import export_stripe_model

    return str(export_stripe_model(tmp_path_factory.mktemp("model") / "stripes.onnx"))


@pytest.fixture()
def ros():
    """A private rclpy context for one test, closed after it (nodes, executor and all)."""
    from node_fixtures import DOMAIN_ID, RosHarness

    harness = RosHarness(DOMAIN_ID)
    yield harness
    harness.close()
