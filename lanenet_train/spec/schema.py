# ruff: noqa: RUF009  -- opt() returns dataclasses.field(...), which ruff cannot see through
"""The training spec's typed schema: one dataclass per message of the protobuf-text spec file.

Field metadata carries the documentation, the allowed range or choices, so that the parser validates
every value in one place and ``docs/training.md`` can list them. The first four sections and their field
names are those of the TAO LaneNet spec (seed document); the rest are lanenet's additions.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


def opt(default: Any, doc: str, *, range: tuple[float, float] | None = None,
        choices: tuple[Any, ...] | None = None) -> Any:
    """A spec field with its default, documentation and allowed range or choices.

    Args:
        default: default value (a list default is copied per instance).
        doc: one-line meaning, shown in errors and docs.
        range: inclusive (low, high) bounds for numbers (and for every item of a repeated number).
        choices: allowed values.

    Returns:
        A ``dataclasses.field``.
    """
    meta = {"doc": doc, "range": range, "choices": choices}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=meta)
    if isinstance(default, type):
        return field(default_factory=default, metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class DataSource:
    """One data source: a canonical dataset (docs/dataset_layout.md) or image + mask folders."""

    dataset_root: str = opt("", "root of a converted dataset (dataset.json + index.jsonl)")
    split: str = opt("", "split of dataset_root to read; default train (data_sources) or val (validation)")
    image_directory_path: str = opt("", "folder of images (TAO form; used when dataset_root is empty)")
    label_directory_path: str = opt("", "folder of single-channel class-id masks named like the images")
    instance_directory_path: str = opt("", "optional folder of lane instance-id masks (0 none, 1..N, 255 ignore)")


@dataclass
class ClassMapping:
    """Maps a dataset class name (key) to a training class name (value); unmapped classes become background."""

    key: str = opt("", "class name in the dataset")
    value: str = opt("", "class name the model learns")


@dataclass
class DatasetConfig:
    data_sources: list[DataSource] = opt([], "training data (repeat for several sources)")
    validation_data_sources: list[DataSource] = opt([], "validation data (repeat for several sources)")
    image_extension: str = opt("jpg", "image extension of folder sources", choices=("jpg", "jpeg", "png", "bmp"))
    target_class_mapping: list[ClassMapping] = opt([], "class merge table; empty keeps the dataset's classes")
    num_workers: int = opt(2, "DataLoader worker processes", range=(0, 64))


@dataclass
class ModelConfig:
    input_image_width: int = opt(512, "network input width (multiple of 16)", range=(32, 4096))
    input_image_height: int = opt(256, "network input height (multiple of 16)", range=(32, 4096))
    input_image_channels: int = opt(3, "network input channels", range=(3, 3))
    anchor_stride: int = opt(16, "TAO field, kept for compatibility; not used by these models", range=(1, 64))
    architecture: str = opt("lanenet", "network", choices=("lanenet", "deeplabv3plus"))
    width_multiplier: float = opt(1.0, "scales every channel count (0.5 = 4x cheaper)", range=(0.125, 4.0))
    dropout: float = opt(0.1, "spatial dropout of the LaneNet bottlenecks", range=(0.0, 0.9))
    embedding_dim: int = opt(4, "LaneNet instance-embedding dimension", range=(1, 64))
    hood_output: bool = opt(False, "LaneNet: also learn the ego vehicle's bonnet (output hood_logits; needs "
                            "data whose masks have a hood class, `synth --label-hood`)")
    marking_output: bool = opt(False, "LaneNet: also learn each lane's marking type and colour (output "
                               "marking_logits; needs data that labels them, the generator's TuSimple sets)")
    painted_output: bool = opt(False, "LaneNet: also learn whether what the lane branch marks is a painted line "
                               "(output painted_logits: 1 on labelled lanes, 0 where the lane branch fires away "
                               "from them, e.g. bare road edges; for a frozen network, train_only: heads)")
    num_classes: int = opt(0, "classes incl. background; 0 = from the dataset (after mapping)", range=(0, 256))
    atrous_rates: list[int] = opt([6, 12, 18], "DeepLabV3+ ASPP atrous rates", range=(1, 64))
    output_stride: int = opt(16, "DeepLabV3+ backbone output stride", choices=(8, 16))
    decoder_output_stride: int = opt(4, "DeepLabV3+ low-level feature stride (4 only)", range=(4, 4))
    aspp_channels: int = opt(128, "DeepLabV3+ ASPP / decoder channels", range=(8, 1024))
    channel_order: str = opt("rgb", "channel order fed to the network", choices=("rgb", "bgr"))
    mean: list[float] = opt([0.485, 0.456, 0.406], "per-channel mean of pixels scaled to [0, 1]", range=(0, 1))
    std: list[float] = opt([0.229, 0.224, 0.225], "per-channel std of pixels scaled to [0, 1]", range=(1e-3, 10))
    roi_top: float = opt(0.0, "fraction of rows cut from the top before resizing", range=(0.0, 0.9))


@dataclass
class SoftStartAnnealingSchedule:
    """TAO: log-linear warm-up from min to max over ``soft_start``, hold, then log-linear decay from ``annealing``."""

    min_learning_rate: float = opt(1e-5, "learning rate at the start and the end", range=(0.0, 10.0))
    max_learning_rate: float = opt(1e-3, "plateau learning rate", range=(1e-9, 10.0))
    soft_start: float = opt(0.1, "fraction of training spent warming up", range=(0.0, 1.0))
    annealing: float = opt(0.7, "fraction of training after which the rate decays", range=(0.0, 1.0))


@dataclass
class PolySchedule:
    """DeepLab: ``lr = base * (1 - step / total) ** power``."""

    base_learning_rate: float = opt(0.005, "learning rate at step 0", range=(1e-9, 10.0))
    power: float = opt(0.9, "exponent of the decay", range=(0.0, 10.0))
    min_learning_rate: float = opt(0.0, "floor of the rate", range=(0.0, 10.0))


@dataclass
class LearningRate:
    """Exactly one schedule; soft_start_annealing when neither is given."""

    soft_start_annealing_schedule: SoftStartAnnealingSchedule | None = opt(None, "TAO schedule")
    poly_schedule: PolySchedule | None = opt(None, "DeepLab poly schedule")


@dataclass
class Regularizer:
    type: str = opt("NO_REG", "penalty on conv/linear weights added to the loss", choices=("NO_REG", "L1", "L2"))
    weight: float = opt(0.0, "penalty weight", range=(0.0, 1.0))


@dataclass
class TrainConfig:
    batch_size: int = opt(4, "global batch per step (split over DDP processes)", range=(1, 4096))
    epochs: int = opt(80, "training epochs", range=(1, 100000))
    learning_rate: LearningRate = opt(LearningRate, "schedule")
    regularizer: Regularizer = opt(Regularizer, "L1 / L2 weight penalty")
    optimizer: str = opt("adamw", "optimizer", choices=("sgd", "adamw"))
    momentum: float = opt(0.9, "SGD momentum / AdamW beta1", range=(0.0, 0.9999))
    nesterov: bool = opt(False, "SGD Nesterov momentum")
    weight_decay: float = opt(0.0, "optimizer's own (decoupled for AdamW) weight decay", range=(0.0, 1.0))
    amp: bool = opt(True, "automatic mixed precision (CUDA only; ignored on CPU)")
    seed: int = opt(42, "random seed of weights, shuffling and augmentation", range=(0, 2**31 - 1))
    max_steps_per_epoch: int = opt(0, "cap on steps per epoch; 0 = whole dataset", range=(0, 10**9))
    checkpoint_interval: int = opt(1, "epochs between checkpoints", range=(1, 100000))
    validation_interval: int = opt(1, "epochs between validation loss passes; 0 = never", range=(0, 100000))
    log_interval: int = opt(10, "steps between TensorBoard scalars", range=(1, 100000))
    pretrained_model_path: str = opt("", "start from the weights of this checkpoint (fine-tuning); its network "
                                     "must match model_config; optimizer and schedule start afresh")
    train_only: list[str] = opt([], "train only these modules (names or prefixes, e.g. heads); the rest "
                                "stays frozen, batch norm and dropout in evaluation mode; empty = the whole "
                                "network")


@dataclass
class AugmentationConfig:
    output_width: int = opt(0, "training image width; 0 or the model input width", range=(0, 4096))
    output_height: int = opt(0, "training image height; 0 or the model input height", range=(0, 4096))
    horizontal_flip: float = opt(0.5, "probability of a horizontal flip (lane ids re-ordered)", range=(0.0, 1.0))
    crop_and_resize_prob: float = opt(0.5, "probability of a random crop resized back (zoom)", range=(0.0, 1.0))
    zoom_min: float = opt(1.0, "smallest zoom factor of crop-and-resize", range=(1.0, 8.0))
    zoom_max: float = opt(2.0, "largest zoom factor of crop-and-resize", range=(1.0, 8.0))
    brightness: float = opt(0.2, "photometric jitter: brightness +- fraction", range=(0.0, 1.0))
    contrast: float = opt(0.2, "photometric jitter: contrast +- fraction", range=(0.0, 1.0))
    saturation: float = opt(0.2, "photometric jitter: saturation +- fraction", range=(0.0, 1.0))


@dataclass
class LossConfig:
    class_weights: list[float] = opt([], "cross-entropy weight per class; empty = dataset or uniform",
                                     range=(0.0, 1e6))
    class_weights_from_dataset: bool = opt(True, "use dataset.json class_weights (from `stats`) when given")
    ignore_index: int = opt(255, "label value that the loss skips", range=(0, 255))
    segmentation_weight: float = opt(1.0, "weight of the cross-entropy term", range=(0.0, 1e3))
    embedding_weight: float = opt(1.0, "weight of the discriminative embedding term", range=(0.0, 1e3))
    hard_negative_weight: float = opt(0.0, "weight of the hard-negative term (0 = off): the hardest background "
                                      "pixels away from lanes", range=(0.0, 1e3))
    hard_negative_fraction: float = opt(0.01, "share of the eligible background pixels the hard-negative term keeps",
                                        range=(1e-6, 1.0))
    hard_negative_margin: int = opt(4, "pixels (network input scale) around labelled pixels that the hard-negative "
                                    "term leaves out", range=(0, 64))
    hood_weight: float = opt(1.0, "weight of the bonnet term (binary cross-entropy of hood_logits; "
                             "model_config.hood_output)", range=(0.0, 1e3))
    marking_weight: float = opt(1.0, "weight of the marking terms (cross-entropy of marking_logits' types and "
                                "colours over labelled lane pixels; model_config.marking_output)", range=(0.0, 1e3))
    painted_weight: float = opt(1.0, "weight of the painted-line term (binary cross-entropy of painted_logits; "
                                "model_config.painted_output)", range=(0.0, 1e3))
    painted_margin: int = opt(6, "pixels (network input scale) around labelled lane pixels where the lane "
                              "branch's marks are not taught as unpainted (a lane's mark is wider than its label)",
                              range=(0, 64))
    delta_v: float = opt(0.5, "pull margin of the embedding loss", range=(0.0, 100.0))
    delta_d: float = opt(3.0, "push margin of the embedding loss", range=(0.0, 100.0))
    variance_weight: float = opt(1.0, "alpha: pull term weight", range=(0.0, 1e3))
    distance_weight: float = opt(1.0, "beta: push term weight", range=(0.0, 1e3))
    regularization_weight: float = opt(0.001, "gamma: mean-norm term weight", range=(0.0, 1e3))


@dataclass
class EvaluationConfig:
    batch_size: int = opt(4, "images per inference batch", range=(1, 1024))
    num_worst_frames: int = opt(9, "frames in the worst-frames picture", range=(0, 100))
    culane_lane_width: int = opt(30, "CULane: lane width in pixels at 1640x590", range=(1, 200))
    culane_iou_threshold: float = opt(0.5, "CULane: IoU for a match", range=(0.0, 1.0))
    decode: list[str] = opt([], "decoder setting NAME=VALUE (docs/node.md lists them), e.g. max_lanes=5")


@dataclass
class Spec:
    dataset_config: DatasetConfig = opt(DatasetConfig, "data")
    model_config: ModelConfig = opt(ModelConfig, "network")
    train_config: TrainConfig = opt(TrainConfig, "optimisation")
    augmentation_config: AugmentationConfig = opt(AugmentationConfig, "augmentation")
    loss_config: LossConfig = opt(LossConfig, "losses")
    evaluation_config: EvaluationConfig = opt(EvaluationConfig, "evaluation")
