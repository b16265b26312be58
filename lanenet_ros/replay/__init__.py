"""Bags and replay: the bag tools, offline and live replay through the pipeline, the replay report, the demo."""
