"""lanenet_train: datasets, models, losses, training, evaluation and export for lanenet."""

__version__ = "0.1.0"
