"""pip install for lanenet (lanenet_ros runtime + lanenet_train toolkit).

ROS 2 users build this repository with colcon (package.xml / CMakeLists.txt); this file
serves machines without ROS, such as a training server: `pip install .[train]`.
"""
from pathlib import Path

from setuptools import find_packages, setup

setup(
    name="lanenet",
    version="0.1.0",
    description="Lane detection for ROS 2 and its training toolkit",
    long_description=Path(__file__).with_name("README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["lanenet_ros", "lanenet_ros.*", "lanenet_train", "lanenet_train.*"]),
    package_data={"lanenet_ros": ["models/*.onnx", "models/*.json", "models/*.pth"]},
    install_requires=[
        "numpy>=1.24",
        "opencv-python-headless>=4.8",
        "onnxruntime>=1.16",
        "pyyaml>=6",
        "tqdm>=4.60",
        "rosbags>=0.10",
        "numba>=0.58",  # the decoder's compiled kernels (lanenet_ros.decode.jit)
    ],
    extras_require={
        "train": ["torch==2.13.0", "onnx>=1.15", "tensorboard>=2.14", "cryptography>=42", "matplotlib>=3.7"],
        "tensorrt": ["tensorrt>=10", "cuda-python>=12"],
        "dev": ["pytest>=8", "pytest-timeout>=2", "ruff>=0.6", "scikit-learn>=1.3", "lxml>=5"],
    },
    entry_points={
        "console_scripts": [
            "lanenet-train = lanenet_train.cli:main",
            "lanenet-node = lanenet_ros.node.lanenet_node:main",
            "lanenet-replay = lanenet_ros.replay.cli:main",
            "lanenet-bag = lanenet_ros.replay.bags:main",
        ],
    },
)
