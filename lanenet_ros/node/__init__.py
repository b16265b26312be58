"""The ROS 2 node: the rclpy lifecycle node, its parameter table, message conversion and frame bookkeeping.

Only lanenet_node, ros_params and convert import rclpy; params, configure and stats are ROS-free.
"""
