"""launch/lanenet.launch.py: its arguments, what it starts the node with, and that this matches the node,
the parameter table, config/lanenet.yaml and config/lanenet.rviz. `launch`/`launch_ros` are not installed
here without ../shared/ros2-launch; the test that builds the real LaunchDescription runs where they are
(`ros2 launch` itself, through real processes: test/test_ros_graph.py)."""
from __future__ import annotations

import importlib.util
import os
import re
import sys
from pathlib import Path

import pytest
import yaml
from node_fixtures import DOMAIN_ID

from lanenet_ros.node.params import BACKENDS, check

ROOT = Path(__file__).resolve().parents[1]
LAUNCH_FILE = ROOT / "launch" / "lanenet.launch.py"


@pytest.fixture(scope="module")
def launch_module():
    spec = importlib.util.spec_from_file_location("lanenet_launch", LAUNCH_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # must work without launch / launch_ros
    return module


def ros_value(value: object) -> str:
    """A parameter value as written after -p on the command line."""
    return str(value).lower() if isinstance(value, bool) else str(value)


def defaults(module) -> dict[str, str]:
    return {name: default for name, default, _ in module.ARGUMENTS}


def test_launch_arguments_are_the_documented_ones(launch_module):
    names = [name for name, _, _ in launch_module.ARGUMENTS]
    assert names == ["params_file", "image_topic", "camera_info_topic", "model", "backend", "namespace",
                     "use_sim_time", "rviz", "fastdds_profile"]
    assert all(len(text) > 15 for _, _, text in launch_module.ARGUMENTS)
    docs = (ROOT / "docs" / "node.md").read_text(encoding="utf-8")
    for name in names:
        assert f"`{name}`" in docs, f"launch argument {name} is not in docs/node.md"


def test_plain_launch_uses_the_packaged_params_file_and_overrides_nothing(launch_module):
    settings = launch_module.node_settings(defaults(launch_module), "/opt/ros/share/lanenet_ros")
    params_file, overrides = settings["parameters"]
    assert params_file == "/opt/ros/share/lanenet_ros/config/lanenet.yaml"
    assert overrides == {"use_sim_time": False}  # model and backend come from the file
    assert settings["namespace"] == ""
    assert dict(settings["remappings"]) == {"image": "image", "image/compressed": "image/compressed",
                                            "camera_info": "camera_info"}
    profile = "/opt/ros/share/lanenet_ros/config/fastdds_large_images.xml"
    assert settings["additional_env"] == {"FASTDDS_DEFAULT_PROFILES_FILE": profile}


def test_fastdds_profile_argument_names_another_or_turns_it_off(launch_module):
    share, env = str(ROOT), {"FASTDDS_DEFAULT_PROFILES_FILE": "/etc/mine.xml"}
    packaged = launch_module.fastdds_env("", share, {})
    assert set(packaged.values()) == {str(ROOT / launch_module.FASTDDS_PROFILE)}
    assert (ROOT / launch_module.FASTDDS_PROFILE).is_file()
    assert set(launch_module.fastdds_env("", share, env).values()) == {"/etc/mine.xml"}  # the user's own
    assert set(launch_module.fastdds_env("/x/other.xml", share, env).values()) == {"/x/other.xml"}
    assert launch_module.fastdds_env("none", share, env) == {}
    jazzy = {"ROS_DISTRO": "jazzy"}  # Fast DDS 2 reads the older variable, and only one may be set
    assert launch_module.fastdds_env("", share, jazzy) == {"FASTRTPS_DEFAULT_PROFILES_FILE": packaged.popitem()[1]}


def test_fastdds_profile_gives_shared_memory_room_for_4k_frames_and_keeps_udp():
    from lxml import etree

    ns = {"d": "http://www.eprosima.com"}
    root = etree.parse(str(ROOT / "config" / "fastdds_large_images.xml")).getroot()
    kinds = {t.findtext("d:transport_id", namespaces=ns): t.findtext("d:type", namespaces=ns)
             for t in root.iterfind(".//d:transport_descriptor", ns)}
    participant = root.find(".//d:participant", ns)
    assert participant.get("is_default_profile") == "true"
    used = [kinds[t.text] for t in participant.iterfind("d:rtps/d:userTransports/d:transport_id", ns)]
    assert sorted(used) == ["SHM", "UDPv4"]
    assert participant.findtext("d:rtps/d:useBuiltinTransports", namespaces=ns) == "false"
    segment = int(root.findtext(".//d:transport_descriptor[d:type='SHM']/d:segment_size", namespaces=ns))
    assert segment >= 4 * 3840 * 2160 * 3  # several 4K bgr8 frames in flight


def test_given_arguments_reach_the_node_as_valid_parameters(launch_module):
    values = {**defaults(launch_module), "model": "/models/lanenet.onnx", "backend": "onnxruntime-cpu",
              "use_sim_time": "true", "namespace": "front", "image_topic": "/front/image_raw"}
    settings = launch_module.node_settings(values, "/share")
    overrides = settings["parameters"][1]
    assert overrides == {"use_sim_time": True, "model": "/models/lanenet.onnx", "backend": "onnxruntime-cpu"}
    for name in ("model", "backend"):
        check(name, overrides[name])  # names and values the node accepts
    assert dict(settings["remappings"]) == {"image": "/front/image_raw",
                                            "image/compressed": "/front/image_raw/compressed",
                                            "camera_info": "/front/camera_info"}
    assert "onnxruntime-cpu" in BACKENDS


@pytest.mark.parametrize("image, info", [("image", "camera_info"), ("/cam/image_raw", "/cam/camera_info"),
                                         ("/image_raw", "/camera_info"), ("cam/image", "cam/camera_info")])
def test_camera_info_topic_is_found_beside_the_image_topic(launch_module, image, info):
    assert launch_module.camera_info_beside(image) == info


def test_executable_is_the_one_cmake_installs_and_runs_the_node_main(launch_module):
    cmake = (ROOT / "CMakeLists.txt").read_text(encoding="utf-8")
    assert f"tools/ros_entry/{launch_module.EXECUTABLE}" in cmake
    entry = (ROOT / "tools" / "ros_entry" / launch_module.EXECUTABLE).read_text(encoding="utf-8")
    assert "from lanenet_ros.node.lanenet_node import main" in entry
    assert "lanenet-node = lanenet_ros.node.lanenet_node:main" in (ROOT / "setup.py").read_text(encoding="utf-8")
    assert re.search(r"install\(DIRECTORY launch config", cmake)


def test_rviz_config_shows_the_camera_the_overlay_and_the_markers():
    config = yaml.safe_load((ROOT / "config" / "lanenet.rviz").read_text(encoding="utf-8"))
    displays = {d["Class"]: d for d in config["Visualization Manager"]["Displays"]}
    topics = [d["Topic"]["Value"] for d in config["Visualization Manager"]["Displays"] if "Topic" in d]
    assert topics == ["image", "overlay", "markers"]  # relative: RViz runs in the node's namespace
    assert "rviz_default_plugins/MarkerArray" in displays and "rviz_default_plugins/Image" in displays


def test_remappings_from_the_launch_file_are_what_the_node_subscribes_to(launch_module, tmp_path):
    rclpy = pytest.importorskip("rclpy")
    from node_fixtures import export_stripe_model

    from lanenet_ros.node.lanenet_node import LaneNetNode

    model = export_stripe_model(tmp_path / "stripes.onnx")
    values = {**defaults(launch_module), "model": str(model), "image_topic": "/front/image_raw"}
    settings = launch_module.node_settings(values, str(ROOT))
    params_file, overrides = settings["parameters"]
    args = ["--ros-args", "--params-file", params_file]
    args += [a for name, value in overrides.items() for a in ("-p", f"{name}:={ros_value(value)}")]
    args += [a for old, new in settings["remappings"] for a in ("-r", f"{old}:={new}")]
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=DOMAIN_ID)
    try:
        node = LaneNetNode(context=context, cli_args=args)
        assert node.params.model == str(model) and node.start()
        assert sorted(s.topic_name for s in node.subscriptions) == ["/front/camera_info", "/front/image_raw"]
        node.close()
        node.destroy_node()
    finally:
        context.try_shutdown()


def test_generate_launch_description_declares_every_argument(launch_module):
    pytest.importorskip("launch")
    pytest.importorskip("launch_ros")
    from launch.actions import DeclareLaunchArgument

    description = launch_module.generate_launch_description()
    declared = [e.name for e in description.entities if isinstance(e, DeclareLaunchArgument)]
    assert declared == [name for name, _, _ in launch_module.ARGUMENTS]


def test_launch_starts_a_lifecycle_node_with_the_profile_in_its_environment(launch_module, monkeypatch):
    pytest.importorskip("launch_ros")
    from launch_ros.actions import LifecycleNode

    from launch import LaunchContext

    monkeypatch.delenv("FASTDDS_DEFAULT_PROFILES_FILE", raising=False)
    monkeypatch.setenv("AMENT_PREFIX_PATH", os.environ.get("AMENT_PREFIX_PATH") or sys.prefix)
    context = LaunchContext()
    for entity in launch_module.generate_launch_description().entities[:-1]:
        entity.visit(context)  # declare the arguments with their defaults
    context.launch_configurations["namespace"] = "front"
    (node,) = launch_module._node_actions(context)
    assert isinstance(node, LifecycleNode)
    env = {"".join(k.perform(context) for k in key): "".join(v.perform(context) for v in value)
           for key, value in node.additional_env}
    assert env["FASTDDS_DEFAULT_PROFILES_FILE"].endswith("lanenet_ros/config/fastdds_large_images.xml")
