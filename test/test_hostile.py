"""Hostile input (issue 24): what an attacker or a broken device can send the node and the bag tools.

The quick part of the hostile-input suite; ``tools/hostile_barrage.py`` runs the long barrage and the soak
against a live node (docs/node.md, "Hostile input").
"""
from __future__ import annotations

import array
import os
import time

import pytest

rclpy = pytest.importorskip("rclpy")
from rclpy.parameter import Parameter  # noqa: E402
from rclpy.parameter_client import AsyncParameterClient  # noqa: E402
from test_node_model import RosHarness, export_stripe_model  # noqa: E402

from lanenet_ros.node.params import check  # noqa: E402

DOMAIN_ID = os.getpid() % 200 + 20


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> str:
    return str(export_stripe_model(tmp_path_factory.mktemp("model") / "stripes.onnx"))


@pytest.fixture()
def ros():
    harness = RosHarness(DOMAIN_ID)
    yield harness
    harness.close()


def wait(future, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while not future.done():
        assert time.monotonic() < deadline, "no answer from the parameter service"
        time.sleep(0.02)
    return future.result()


# ---- runtime ground.homography (item 9) --------------------------------------------------------------------
HOMOGRAPHY = [0.0, -0.02, 7.0, -0.01, 0.0, 6.4, 0.0, -0.001, 1.0]


def test_a_homography_arrives_from_the_parameter_service_as_an_array_and_is_accepted():
    check("ground.homography", array.array("d", HOMOGRAPHY))  # what rclpy hands the set-parameters gate


@pytest.mark.ros
def test_ground_homography_set_at_run_time_through_the_parameter_service(ros, model):
    node = ros.lanenet(model=model, tracking=False)
    client = AsyncParameterClient(ros.probe, "/lanenet")
    assert client.wait_for_services(timeout_sec=10.0)
    result = wait(client.set_parameters([Parameter("ground.homography", Parameter.Type.DOUBLE_ARRAY,
                                                   HOMOGRAPHY)])).results[0]
    assert result.successful, result.reason
    assert list(node.get_parameter("ground.homography").value) == HOMOGRAPHY
    bad = wait(client.set_parameters([Parameter("ground.homography", Parameter.Type.DOUBLE_ARRAY,
                                                [1.0, 2.0, 3.0])])).results[0]
    assert not bad.successful and "9 finite numbers" in bad.reason
    node.trigger_deactivate()
    node.trigger_cleanup()
    assert node.start() and node.params.ground_homography == tuple(HOMOGRAPHY)  # in force after a configure
