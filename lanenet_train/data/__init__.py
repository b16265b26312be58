"""Lane datasets: the canonical layout (docs/dataset_layout.md), converters from TuSimple, CULane,
Apollo lane marks and image/mask folders, and class statistics (`lanenet-train convert`, `stats`)."""
