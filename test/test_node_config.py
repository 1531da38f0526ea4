"""The node's parameters outside ROS: one table for the node, the replay and the docs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tactile_grasp_predictor.errors import ConfigError
from tactile_grasp_predictor.node_config import (
    PARAMETERS,
    NodeConfig,
    config_from_file,
    defaults,
    markdown_table,
    read_param_file,
    resolve_name,
    section_matches,
)
from tactile_grasp_predictor.tracker import TriggerConfig, trigger_doc

ROOT = Path(__file__).resolve().parents[1]


def test_docs_parameter_table_is_the_generated_one() -> None:
    text = (ROOT / "docs" / "node.md").read_text()
    m = re.search(r"<!-- generated: [^\n]*-->\n(.*?)<!-- end of generated table -->", text, re.S)
    assert m, "docs/node.md lost its generated parameter table markers"
    assert m.group(1) == markdown_table(), "run: python -m tactile_grasp_predictor.node_config"


def test_config_predictor_yaml_names_only_parameters_and_shows_the_defaults() -> None:
    given = read_param_file(ROOT / "config" / "predictor.yaml")
    assert set(given) <= {s.name for s in PARAMETERS}
    d = {k: resolve_name(v) if k.endswith("_topic") and v else v for k, v in defaults().items()}
    assert {k: v for k, v in given.items() if v != d[k]} == {}  # "values shown are the defaults"
    assert given["image_topic"] == "/gelsight_left/image_raw"  # what tgp bag record writes
    assert given["joint_states_topic"] == "/wsg50/joint_states"
    demo = config_from_file(ROOT / "config" / "demo.yaml")
    assert demo.trigger.tb_delay_s == 0.75 and demo["backend"] == "torch"


def test_a_namespaced_node_reads_the_wildcard_and_its_own_sections() -> None:
    """`/**` applies to every node, `/<ns>/predictor_node` to one; topics resolve in the namespace."""
    path = ROOT / "config" / "two_arms.yaml"
    left = read_param_file(path, namespace="/left_arm")
    right = read_param_file(path, namespace="right_arm")
    assert left["image_topic"] == "/left_arm/gelsight_left/image_raw"
    assert right["joint_states_topic"] == "/right_arm/wsg50/joint_states"
    assert (left["frame_id"], right["frame_id"]) == ("left_arm_gelsight", "right_arm_gelsight")
    assert "image_encodings" not in left and right["image_encodings"] == ["bgr8", "8UC3"]
    with pytest.raises(ConfigError, match="no section for /elsewhere/predictor_node"):
        read_param_file(ROOT / "config" / "demo.yaml", namespace="/elsewhere")  # keyed /predictor_node


@pytest.mark.parametrize(("key", "fqn", "matches"), [
    ("/**", "/a/b/predictor_node", True), ("/**/predictor_node", "/predictor_node", True),
    ("/*/predictor_node", "/a/predictor_node", True), ("/*/predictor_node", "/a/b/predictor_node", False),
    ("predictor_node", "/predictor_node", True),
    ("/left_arm/predictor_node", "/right_arm/predictor_node", False),
])
def test_section_keys_match_as_rcl_matches_them(key: str, fqn: str, matches: bool) -> None:
    assert section_matches(key, fqn) is matches


def test_resolve_name() -> None:
    assert resolve_name("gelsight_left/image_raw", "/left_arm/") == "/left_arm/gelsight_left/image_raw"
    assert resolve_name("~/debug_image", "/a", "n") == "/a/n/debug_image"
    assert resolve_name("/abs", "/a") == "/abs" and resolve_name("x") == "/x"


def test_trigger_parameters_come_from_the_core_with_their_descriptions() -> None:
    specs = {s.name: s for s in PARAMETERS}
    for name in TriggerConfig.__dataclass_fields__:
        spec = specs[f"trigger.{name}"]
        assert spec.description.startswith(trigger_doc(name)) and len(trigger_doc(name)) > 20
    assert NodeConfig.from_values({}).trigger == TriggerConfig()


def test_param_file_layouts(tmp_path: Path) -> None:
    f = tmp_path / "p.yaml"
    f.write_text("/**:\n  ros__parameters:\n    use_sim_time: true\n    time_base: receive\n"
                 "    trigger:\n      tb_delay_s: 0.4\n      max_stamp_lag_s: -1.0\n")
    cfg = config_from_file(f)
    assert cfg["time_base"] == "receive" and cfg.trigger.tb_delay_s == 0.4
    assert cfg.trigger.max_stamp_lag_s is None
    f.write_text("tb_delay_s: 0.3\nsettle_window_s: 0.25\n")  # a plain mapping of TriggerConfig fields
    assert read_param_file(f) == {"trigger.tb_delay_s": 0.3, "trigger.settle_window_s": 0.25}
    f.write_text("/other_node:\n  ros__parameters:\n    x: 1\n/predictor_node:\n  ros__parameters:\n"
                 "    threshold: 0.6\n")
    assert config_from_file(f).threshold == 0.6


@pytest.mark.parametrize(("text", "needle"), [
    ("/predictor_node:\n  ros__parameters:\n    image_topc: /x\n", "image_topc: not a parameter of this node "
     "(did you mean 'image_topic'?)"),
    ("/predictor_node:\n  ros__parameters:\n    threshold: 2.0\n", "threshold: 2.0 is above 1.0"),
    ("/predictor_node:\n  ros__parameters:\n    trigger:\n      tb_timeout_s: 0.1\n", "tb_timeout_s"),
    ("[1, 2]\n", "expected a mapping"),
    ("a: [\n", "cannot read parameters"),
])
def test_bad_param_files_are_refused_naming_the_file_and_parameter(tmp_path: Path, text: str,
                                                                   needle: str) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text(text)
    with pytest.raises(ConfigError, match=re.escape(needle)) as info:
        config_from_file(f)
    assert str(f) in str(info.value)


def test_cross_checks() -> None:
    with pytest.raises(ConfigError, match="grasp_state_type"):
        NodeConfig.from_values({"grasp_state_topic": "/wsg/status", "grasp_state_type": "Status"})
    with pytest.raises(ConfigError, match="inference_cpus"):
        NodeConfig.from_values({"inference_cpus": "a-b"})
    with pytest.raises(ConfigError, match="joint_names"):
        NodeConfig.from_values({"width_mode": "single"})  # two joints for one width
    assert NodeConfig.from_values({"threshold": -1.0}).threshold is None


def test_the_default_topics_are_what_tgp_bag_record_writes() -> None:
    """The relative defaults resolve, in the root namespace, to the topics of a bag tgp bag record writes."""
    from training.bag_record import RecordOptions

    d, rec = defaults(), RecordOptions()
    assert resolve_name(d["image_topic"]) == rec.image_topic
    assert resolve_name(d["joint_states_topic"]) == rec.joint_topic
    assert not d["image_topic"].startswith("/") and not d["joint_states_topic"].startswith("/")
