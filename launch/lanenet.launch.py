"""Launch the lanenet node for one camera, optionally with RViz.

    ros2 launch lanenet_ros lanenet.launch.py image_topic:=/front/image_raw namespace:=front rviz:=true

Arguments: ``params_file`` (default: the package's config/lanenet.yaml), ``image_topic`` (raw image; its
``/compressed`` sibling is used with ``input: compressed``), ``camera_info_topic`` (default: ``camera_info``
beside the image topic), ``model`` and ``backend`` (override the parameters file when given),
``namespace`` (one per camera), ``use_sim_time`` (bag replay), ``rviz`` (opens config/lanenet.rviz),
``fastdds_profile`` (the Fast DDS profile the node loads: see :func:`fastdds_env`).
Several cameras: include this file once per camera with its own namespace and image topic.

The node is a launch_ros ``LifecycleNode``: launch sees its transitions (``StateTransition`` events) and can
request them (``ChangeState``); the node still configures and activates itself (its ``autostart``).

``launch`` and ``launch_ros`` are imported inside :func:`generate_launch_description`, so this file can be
imported (and its arguments inspected) on a machine without them.
"""
from __future__ import annotations

PACKAGE = "lanenet_ros"
EXECUTABLE = "lanenet_node"
NODE_NAME = "lanenet"

# (name, default, description); "" defaults are resolved when launched (see _node_actions)
ARGUMENTS = (
    ("params_file", "", "Parameters YAML (default: the package's config/lanenet.yaml)"),
    ("image_topic", "image", "Camera image topic; with input: compressed, <image_topic>/compressed is used"),
    ("camera_info_topic", "", "Camera info topic (default: camera_info beside image_topic)"),
    ("model", "", "Model file (.onnx or TensorRT engine) or a packaged model by name (default, default_heads); "
              "empty keeps the parameters file's value"),
    ("backend", "", "auto, tensorrt, onnxruntime-trt, onnxruntime-cuda or onnxruntime-cpu; empty keeps "
                    "the parameters file's value"),
    ("namespace", "", "Namespace of the node and its topics (one per camera)"),
    ("use_sim_time", "false", "Use /clock (true when replaying a bag)"),
    ("rviz", "false", "Also open RViz with config/lanenet.rviz"),
    ("fastdds_profile", "", "Fast DDS XML profile for the node (default: the one the environment names, "
                            "else the package's config/fastdds_large_images.xml: shared memory for big "
                            "images); 'none' sets nothing"),
)
FASTDDS_PROFILE = "config/fastdds_large_images.xml"
# Fast DDS 3 (Kilted on) reads FASTDDS_DEFAULT_PROFILES_FILE; Fast DDS 2 (Humble, Iron, Jazzy) reads
# FASTRTPS_DEFAULT_PROFILES_FILE. Only one is set: Fast DDS 3 reads the old one too and, given both, loads the
# file twice (XML errors).
FASTDDS_VARIABLE, FASTDDS2_VARIABLE = "FASTDDS_DEFAULT_PROFILES_FILE", "FASTRTPS_DEFAULT_PROFILES_FILE"
FASTDDS2_DISTROS = ("humble", "iron", "jazzy")


def camera_info_beside(image_topic: str) -> str:
    """The camera_info topic that image_transport pairs with an image topic (``/cam/image_raw`` ->
    ``/cam/camera_info``)."""
    head, _, _ = image_topic.rstrip("/").rpartition("/")
    return f"{head}/camera_info" if head or image_topic.startswith("/") else "camera_info"


def fastdds_env(profile: str, share: str, environ: dict[str, str]) -> dict[str, str]:
    """The environment that makes the node load a Fast DDS profile.

    Args:
        profile: the ``fastdds_profile`` argument: a file, ``none``, or empty for the default (the
            environment's ``FASTDDS_DEFAULT_PROFILES_FILE`` when set, else the packaged profile).
        share: the package's share directory.
        environ: the launching environment (its ``ROS_DISTRO`` picks the variable Fast DDS reads).

    Returns:
        The variable to add to the node's environment (none for ``none``).
    """
    if profile.lower() == "none":
        return {}
    variable = FASTDDS2_VARIABLE if environ.get("ROS_DISTRO", "").lower() in FASTDDS2_DISTROS else FASTDDS_VARIABLE
    return {variable: profile or environ.get(variable) or f"{share}/{FASTDDS_PROFILE}"}


def node_settings(values: dict[str, str], share: str, environ: dict[str, str] | None = None) -> dict:
    """What the node is started with, from resolved argument values (pure: tested without launch).

    Args:
        values: argument name -> resolved string value.
        share: the package's share directory.
        environ: the launching environment (default: empty).

    Returns:
        ``parameters`` (a params-file path and a dict of overrides), ``remappings``, ``namespace`` and
        ``additional_env`` (the Fast DDS profile).
    """
    params_file = values["params_file"] or f"{share}/config/lanenet.yaml"
    overrides: dict[str, object] = {"use_sim_time": values["use_sim_time"].lower() in ("true", "1", "yes")}
    for name in ("model", "backend"):
        if values[name]:
            overrides[name] = values[name]
    image = values["image_topic"]
    info = values["camera_info_topic"] or camera_info_beside(image)
    remappings = [("image", image), ("image/compressed", f"{image}/compressed"), ("camera_info", info)]
    return {"parameters": [params_file, overrides], "remappings": remappings, "namespace": values["namespace"],
            "additional_env": fastdds_env(values["fastdds_profile"], share, environ or {})}


def _node_actions(context, *_args, **_kwargs):
    import os

    from launch_ros.actions import LifecycleNode, Node
    from launch_ros.substitutions import FindPackageShare

    share = FindPackageShare(PACKAGE).perform(context)
    values = {name: context.launch_configurations[name] for name, _, _ in ARGUMENTS}
    settings = node_settings(values, share, dict(os.environ))
    actions = [LifecycleNode(package=PACKAGE, executable=EXECUTABLE, name=NODE_NAME, output="screen",
                             emulate_tty=True, **settings)]
    if values["rviz"].lower() in ("true", "1", "yes"):
        actions.append(Node(package="rviz2", executable="rviz2", name="rviz", namespace=settings["namespace"],
                            arguments=["-d", f"{share}/config/lanenet.rviz"],
                            remappings=[("image", values["image_topic"])],
                            additional_env=settings["additional_env"],  # it receives images too
                            parameters=[{"use_sim_time": settings["parameters"][1]["use_sim_time"]}]))
    return actions


def generate_launch_description():
    """The launch description: the arguments above, then the node (and RViz when asked)."""
    from launch.actions import DeclareLaunchArgument, OpaqueFunction
    from launch.launch_description import LaunchDescription

    arguments = [DeclareLaunchArgument(name, default_value=default, description=text)
                 for name, default, text in ARGUMENTS]
    return LaunchDescription([*arguments, OpaqueFunction(function=_node_actions)])
