"""Synthetic dash-cam road scenes with exact lane ground truth (`lanenet-train synth`).

``render_frame(config, seed)`` renders one independent frame; ``iter_drive(config, seed, n_frames, fps)``
a continuous drive. Both are deterministic for a seed.
"""
from lanenet_train.synth.camera import CameraParams
from lanenet_train.synth.config import SynthConfig
from lanenet_train.synth.markings import SynthLane
from lanenet_train.synth.render import SynthFrame, iter_drive, render_frame

__all__ = ["CameraParams", "SynthConfig", "SynthFrame", "SynthLane", "iter_drive", "render_frame"]
