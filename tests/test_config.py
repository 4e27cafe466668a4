import pytest

from polydiff.app.config import (
    ConfigError,
    SampleConfig,
    apply_overrides,
    build_dataclass,
    check_options,
    load_file,
    parse_options,
    parse_value,
)


def test_unknown_key_names_key_and_valid_options():
    with pytest.raises(ConfigError, match=r"unknown key sample\.stpes \(did you mean 'steps'\?\).*valid keys"):
        build_dataclass(SampleConfig, {"stpes": 3}, "sample")


def test_bad_literal_value_lists_choices():
    msg = "sample.grid = 'cosine' is not valid; choose one of: uniform_t, karras, logsnr, optimized"
    with pytest.raises(ConfigError, match=msg):
        build_dataclass(SampleConfig, {"grid": "cosine"}, "sample")


def test_cli_strings_are_coerced_and_checked():
    cfg = build_dataclass(SampleConfig, {"steps": "12", "cfg_scale": "none", "n": 5}, "sample")
    assert cfg.steps == 12 and cfg.cfg_scale is None
    with pytest.raises(ConfigError, match="sample.steps must be an integer"):
        build_dataclass(SampleConfig, {"steps": "many"}, "sample")
    with pytest.raises(ConfigError, match="sample.steps must be an integer"):
        build_dataclass(SampleConfig, {"steps": 1.5}, "sample")


def test_plugin_options_follow_declared_defaults():
    out = check_options({"width": "64"}, {"width": 256, "depth": 3}, "model", "backbone 'mlp'")
    assert out == {"width": 64, "depth": 3}
    msg = r"model.wdith \(did you mean 'width'\?\): backbone 'mlp' accepts depth, width"
    with pytest.raises(ConfigError, match=msg):
        check_options({"wdith": 1}, {"width": 256, "depth": 3}, "model", "backbone 'mlp'")


def test_overrides_and_values():
    raw = apply_overrides({"train": {"steps": 1}}, ["train.steps=500", "modality=points", "data.radius=2.5",
                                                    "model.class_cond=true"])
    assert raw == {"train": {"steps": 500}, "modality": "points", "data": {"radius": 2.5},
                   "model": {"class_cond": True}}
    assert parse_value("[1, 2]") == [1, 2] and parse_value("heun") == "heun"
    with pytest.raises(ConfigError, match="section one of"):
        apply_overrides({}, ["trian.steps=3"])
    with pytest.raises(ConfigError, match="section.key=value"):
        apply_overrides({}, ["train.steps"])


def test_key_value_options_parse_values_and_name_a_bad_item():
    assert parse_options(["solver=ddpm", "sigma_restart=0.2", "restarts=3"], "--x") == {
        "solver": "ddpm", "sigma_restart": 0.2, "restarts": 3}
    with pytest.raises(ConfigError, match=r"--mask-option takes KEY=VALUE, got 'ratio'"):
        parse_options(["ratio"], "--mask-option")


def test_toml_yaml_json_files_agree(tmp_path):
    (tmp_path / "a.toml").write_text('modality = "points"\n[train]\nsteps = 10\n')
    (tmp_path / "a.yaml").write_text("modality: points\ntrain:\n  steps: 10\n")
    (tmp_path / "a.json").write_text('{"modality": "points", "train": {"steps": 10}}')
    assert load_file(tmp_path / "a.toml") == load_file(tmp_path / "a.yaml") == load_file(tmp_path / "a.json")
    (tmp_path / "bad.toml").write_text("modality = \n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_file(tmp_path / "bad.toml")
    with pytest.raises(ConfigError, match="does not exist"):
        load_file(tmp_path / "missing.toml")


def test_plugin_options_may_not_shadow_section_keys():
    with pytest.raises(ConfigError, match="declares option.*holdout.*must rename"):
        check_options({}, {"holdout": 0.5, "n": 3}, "data", "dataset 'x'", reserved={"dataset", "holdout"})


def test_a_field_its_kind_does_not_read_is_an_error_but_a_saved_run_loads(tmp_path):
    from polydiff.app.runs import Run, resolve_config

    with pytest.raises(ConfigError, match=r'noise_levels.p_mean = -2 is read only by noise_levels.kind = "lognormal", '
                                          r'and this config\'s kind is "uniform_t", the default: set'):
        resolve_config({"modality": "points", "noise_levels": {"p_mean": -2.0}})
    with pytest.raises(ConfigError, match=r'weighting.gamma = 3 is read only by weighting.kind = "min_snr".*"edm"\:'):
        resolve_config({"modality": "points", "weighting": {"kind": "edm", "gamma": 3}})
    ok = resolve_config({"modality": "points", "noise_levels": {"kind": "lognormal", "p_mean": -2.0},
                         "weighting": {"kind": "edm", "gamma": 5.0}})  # gamma at its default: harmless
    assert ok.noise_levels.p_mean == -2.0
    saved = ok.to_dict()  # every field written, whatever the kind
    saved["noise_levels"] = {**saved["noise_levels"], "kind": "uniform_t"}
    (tmp_path / "config.json").write_text(__import__("json").dumps(saved))
    assert Run.open(tmp_path).config.noise_levels.p_mean == -2.0  # a run made before the check still opens
