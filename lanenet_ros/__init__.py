"""lanenet_ros: lane detection for ROS 2.

The ROS-free core (preprocessing, backends, decoding, metrics) imports neither rclpy nor
torch; the node and the message conversion are the only modules that import rclpy.
"""
from pkgutil import extend_path

# The generated message code (lanenet_ros.msg and its type-support modules) is installed
# beside this package when it comes from a pip install; join both directories into one package.
__path__ = extend_path(__path__, __name__)

__version__ = "0.1.0"
