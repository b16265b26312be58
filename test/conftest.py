"""Shared test fixtures.

ROS tests talk over real Fast DDS. Each test process gets its own ROS_DOMAIN_ID so that
parallel runs on one machine (several checkouts, CI) do not hear each other.
"""
from __future__ import annotations

import os

os.environ.setdefault("ROS_DOMAIN_ID", str(os.getpid() % 150 + 50))
os.environ.setdefault("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")
