"""Spec files: the seed's TAO example parses, errors name the line and the nearest field, overrides work."""
import re
from pathlib import Path

import pytest

from lanenet_train.spec import SpecError, load_spec, parse_spec, spec_from_dict, spec_to_dict, spec_to_text

SEED = Path("/work/shared/seeds/000_cf7e14393016ae39.txt")
SPECS = Path(__file__).resolve().parent.parent / "config" / "specs"


def seed_example_with_paths_under(root: Path) -> str:
    text = (SPECS / "tao_lanenet_seed_example.txt").read_text()
    for folder in re.findall(r'"(/workspace/[^"]+)"', text):
        (root / folder.lstrip("/")).mkdir(parents=True, exist_ok=True)
    return text.replace('"/workspace/', f'"{root}/workspace/')


def test_seed_example_parses_once_its_paths_exist(tmp_path):
    if SEED.exists():  # the example in config/specs is the seed's own block, verbatim
        block = SEED.read_text().split("```")[1].strip()
        assert block in (SPECS / "tao_lanenet_seed_example.txt").read_text()
    spec = parse_spec(seed_example_with_paths_under(tmp_path), "seed")
    assert spec.model_config.input_image_width == 1280
    assert spec.train_config.learning_rate.soft_start_annealing_schedule.annealing == 0.7
    assert spec.train_config.regularizer.type == "L1"
    assert spec.dataset_config.target_class_mapping[0].value == "lane"
    assert spec.dataset_config.validation_data_sources[0].split == "val"


def test_missing_data_folder_names_its_line(tmp_path):
    text = (SPECS / "tao_lanenet_seed_example.txt").read_text()
    line = next(i for i, s in enumerate(text.splitlines(), 1) if "image_directory_path" in s)
    with pytest.raises(SpecError, match=rf"seed:{line}: .*does not exist"):
        parse_spec(text, "seed")


@pytest.mark.parametrize(("text", "message"), [
    ("model_config {\n  input_image_widht: 512\n}", r"x:2: unknown field 'input_image_widht'.*'input_image_width'"),
    ("train_config {\n\n batch_size: 0 }", r"x:3: train_config.batch_size: 0 is out of range; allowed 1 to 4096"),
    ("train_config { regularizer { type: L3 } }", r"x:1: .*'L3' is not allowed \(did you mean 'L2'\?\)"),
    ("model_config { input_image_width: 500 }", r"x:1: .*multiple of 16"),
    ("model_config { architecture: \"deeplab\" }", r"did you mean 'deeplabv3plus'"),
    ("train_config { epochs: 1.5 }", r"expected int, got '1.5'"),
    ("train_config { epochs: 3 epochs: 4 }", r"given twice"),
    ("train_config { learning_rate { poly_schedule {} soft_start_annealing_schedule {} } }", r"not both"),
    ("augmentation_config { zoom_min: 2 zoom_max: 1.5 }", r"zoom_min 2.0 > zoom_max"),
    ("model_config { input_image_width: 512", r"add the missing '}'"),
    ("evaluation_config {\n  decode: \"max_lanes=6\"\n  decode: \"point_step_px=0.000001\" }",
     r"x:2: evaluation_config.decode: decode setting point_step_px=1e-06 is out of range; allowed 1.0 to 200.0"),
    ("evaluation_config { decode: \"max_lane=6\" }", r"x:1: .*did you mean 'max_lanes'"),
])
def test_bad_spec_is_an_error_naming_the_line(text, message):
    with pytest.raises(SpecError, match=message):
        parse_spec(text, "x")


def test_overrides_set_nested_and_repeated_fields():
    spec = parse_spec("train_config { batch_size: 2 }", "x", [
        "train_config.batch_size=8", "model_config.atrous_rates=12,24,36",
        "train_config.learning_rate.poly_schedule.power=0.5", "train_config.amp=false"])
    assert spec.train_config.batch_size == 8
    assert spec.model_config.atrous_rates == [12, 24, 36]
    assert spec.train_config.learning_rate.poly_schedule.power == 0.5
    assert spec.train_config.learning_rate.soft_start_annealing_schedule is None
    assert spec.train_config.amp is False
    with pytest.raises(SpecError, match=r"override 'train_config.bach_size=3'.*'batch_size'"):
        parse_spec("", "x", ["train_config.bach_size=3"])


def test_round_trips_through_text_and_dict(tmp_path):
    spec = parse_spec(seed_example_with_paths_under(tmp_path), "seed")
    assert parse_spec(spec_to_text(spec), "again") == spec
    assert spec_from_dict(spec_to_dict(spec)) == spec


@pytest.mark.parametrize("name", ["lanenet_tusimple.txt", "lanenet_tusimple_finetune.txt",
                                  "lanenet_tusimple_camera.txt", "lanenet_tusimple_realroads.txt",
                                  "deeplabv3plus_apollo.txt"])
def test_example_specs_are_valid(name):
    spec = load_spec(SPECS / name, check_paths=False)
    assert spec.model_config.architecture in name.replace("tusimple", "lanenet")


def test_finetune_spec_differs_from_the_first_stage_only_in_data_and_schedule():
    import dataclasses

    first = load_spec(SPECS / "lanenet_tusimple.txt", check_paths=False)
    tune = load_spec(SPECS / "lanenet_tusimple_finetune.txt", check_paths=False)
    assert tune.dataset_config.data_sources[0] == first.dataset_config.data_sources[0]
    assert len(tune.dataset_config.data_sources) == 5  # + bare edges, fresh, real-road scenes, bends
    same = dataclasses.replace(tune, dataset_config=first.dataset_config, train_config=dataclasses.replace(
        tune.train_config, epochs=first.train_config.epochs, learning_rate=first.train_config.learning_rate))
    assert same == first


def test_every_spec_field_is_documented():
    import dataclasses

    from lanenet_train.spec import schema

    doc = (SPECS.parent.parent / "docs" / "training.md").read_text()
    for cls in (schema.DatasetConfig, schema.DataSource, schema.ClassMapping, schema.ModelConfig,
                schema.TrainConfig, schema.SoftStartAnnealingSchedule, schema.PolySchedule, schema.Regularizer,
                schema.AugmentationConfig, schema.LossConfig, schema.EvaluationConfig):
        for f in dataclasses.fields(cls):
            assert f"`{f.name}`" in doc or f"{f.name} {{" in doc or f".{f.name}" in doc, f"{cls.__name__}.{f.name}"


def test_camera_spec_is_the_finetune_spec_with_one_more_source_and_a_shorter_schedule():
    import dataclasses

    tune = load_spec(SPECS / "lanenet_tusimple_finetune.txt", check_paths=False)
    camera = load_spec(SPECS / "lanenet_tusimple_camera.txt", check_paths=False)
    sources = camera.dataset_config.data_sources
    assert sources[:-1] == tune.dataset_config.data_sources
    assert str(sources[-1].dataset_root).endswith("data/tusimple_camera")
    same = dataclasses.replace(camera, dataset_config=tune.dataset_config, train_config=dataclasses.replace(
        camera.train_config, epochs=tune.train_config.epochs, learning_rate=tune.train_config.learning_rate))
    assert same == tune


def test_realroads_spec_is_the_finetune_spec_from_the_shipped_model_with_a_night_set_and_no_bonnet_head():
    import dataclasses

    tune = load_spec(SPECS / "lanenet_tusimple_finetune.txt", check_paths=False)
    roads = load_spec(SPECS / "lanenet_tusimple_realroads.txt", check_paths=False)
    nights = [s for s in roads.dataset_config.data_sources if Path(s.dataset_root).name == "tusimple_nights"]
    assert len(nights) == 1
    assert [s for s in roads.dataset_config.data_sources if s not in nights] == tune.dataset_config.data_sources[1:]
    shipped = load_spec(SPECS.parent.parent / "lanenet_ros" / "models" / "default.spec.txt", check_paths=False)
    assert roads.loss_config.class_weights == shipped.loss_config.class_weights  # lane_threshold keeps its meaning
    # the shipped network without its heads: a bonnet head trained with the network cost the held-out drives
    # (docs/training.md, "The bonnet head"); the shipped heads are trained beside the frozen network
    assert roads.model_config == dataclasses.replace(shipped.model_config, num_classes=0, hood_output=False,
                                                     marking_output=False)
    assert not roads.model_config.hood_output
    same = dataclasses.replace(
        roads, dataset_config=tune.dataset_config, loss_config=tune.loss_config, model_config=tune.model_config,
        train_config=dataclasses.replace(roads.train_config, epochs=tune.train_config.epochs,
                                         learning_rate=tune.train_config.learning_rate))
    assert same == tune


def test_heads_spec_trains_only_a_bonnet_and_a_marking_head_beside_the_shipped_network():
    import dataclasses

    hood = load_spec(SPECS / "lanenet_tusimple_heads.txt", check_paths=False)
    shipped = load_spec(SPECS.parent.parent / "lanenet_ros" / "models" / "default.spec.txt", check_paths=False)
    assert hood.train_config.train_only == ["heads"]
    assert hood.model_config == dataclasses.replace(shipped.model_config, num_classes=0, hood_output=True,
                                                    marking_output=True)
    assert hood.loss_config.class_weights == shipped.loss_config.class_weights
    roads = load_spec(SPECS / "lanenet_tusimple_realroads.txt", check_paths=False)
    assert hood.evaluation_config.decode == roads.evaluation_config.decode
    names = [Path(s.dataset_root).name for s in hood.dataset_config.data_sources]
    assert names == ["tusimple_realroads", "tusimple_bends", "tusimple_fresh"]  # the sets that show bonnets
