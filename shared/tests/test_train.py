"""Tests of text_recognizer.train: config and command-line parsing, registries, a tiny run in-process and via the CLI."""
import json, os, subprocess, sys

import pytest

from text_recognizer import train as tr
from text_recognizer.metadata import project_root

TINY = {"dataset_args": {"limit": 300}, "network_args": {"widths": [4, 8], "dense_size": 16}, "epochs": 2,
        "batch_size": 64, "wandb": False}


def test_make_config_fills_defaults_and_refuses_typos():
    assert tr.make_config({"epochs": 3}) == {**tr.DEFAULT_CONFIG, "epochs": 3}
    with pytest.raises(ValueError, match="epoch"):
        tr.make_config({"epoch": 3})


def test_parse_args():
    config = tr.parse_args(["--network", "mlp", "--network-args", '{"layer_sizes": [32]}', "--epochs", "4",
                            "--batch-size", "64", "--no-wandb", "--save", "x", "--lr", "0.01", "--mixed-precision"])
    assert config["network"] == "mlp" and config["network_args"] == {"layer_sizes": [32]}
    assert (config["epochs"], config["batch_size"], config["learning_rate"]) == (4, 64, 0.01)
    assert config["wandb"] is False and config["save"] == "x" and config["mixed_precision"] is True
    assert tr.parse_args([]) == tr.DEFAULT_CONFIG
    for bad in (["--network-args", "{oops"], ["--network-args", "[1, 2]"], ["--epochs", "0"]):
        with pytest.raises(SystemExit):
            tr.parse_args(bad)


def test_registries_resolve_lazily():
    from text_recognizer.networks import lenet
    assert tr.resolve(tr.NETWORKS, "lenet") is lenet
    assert tr.resolve(tr.DATASETS, "text_recognizer.character_model:emnist_data").__name__ == "emnist_data"
    assert {"emnist", "lines", "paragraphs"} <= tr.DATASETS.keys() and {"character", "line"} <= tr.MODELS.keys()
    assert {"mlp", "lenet", "line_cnn_sliding_window", "line_lstm_ctc"} <= tr.NETWORKS.keys()
    with pytest.raises(ValueError, match="unknown network 'resnet'"):
        tr.resolve(tr.NETWORKS, "resnet", "network")
    with pytest.raises(ValueError, match="cannot be imported"):
        tr.resolve({"x": "text_recognizer.no_such_module:f"}, "x")
    with pytest.raises(ValueError, match="has no"):
        tr.resolve({"x": "text_recognizer.networks:no_such"}, "x")


def test_tiny_mixed_precision_run_returns_figures_and_restores_the_policy():
    import keras
    results, model = tr.train({**TINY, "mixed_precision": True}, verbose=0, return_model=True)
    assert results["train_examples"] == 300 and results["epochs_run"] == 2 and results["device"] in ("CPU", "GPU")
    assert results["examples_per_second"] > 0 and 0 <= results["test_accuracy"] <= 1 and results["params"] > 0
    assert len(results["history"]["loss"]) == 2 and model.network.count_params() == results["params"]
    assert keras.mixed_precision.global_policy().name == "float32"


def test_cli_runs_and_prints_json(tmp_path):
    env = {**os.environ, "WANDB_MODE": "disabled", "TF_CPP_MIN_LOG_LEVEL": "3"}
    command = [sys.executable, "-m", "text_recognizer.train", "--epochs", "1", "--dataset-args", '{"limit": 200}',
               "--network", "mlp", "--network-args", '{"layer_sizes": [16]}', "--no-wandb"]
    out = subprocess.run(command, capture_output=True, text=True, cwd=project_root(), env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    results = json.loads(out.stdout[out.stdout.index("{\n"):])
    assert results["train_examples"] == 200 and "history" not in results


def test_init_starts_from_a_saved_network(tmp_path, monkeypatch):
    import numpy as np
    from text_recognizer import character_model
    monkeypatch.setattr(character_model, "WEIGHTS_DIR", tmp_path)
    first, model = tr.train({**TINY, "save": "tiny"}, verbose=0, return_model=True)
    assert (tmp_path / "tiny.keras").exists()
    frozen = {**TINY, "init": "tiny", "epochs": 1, "learning_rate": 0.0, "lr_schedule": "constant"}
    again, resumed = tr.train(frozen, verbose=0, return_model=True)
    kernels = lambda m: [w for w in m.network.get_weights() if w.ndim > 1]  # conv and dense kernels
    assert all(np.array_equal(a, b) for a, b in zip(kernels(model), kernels(resumed)))
    assert tr.parse_args(["--init", "tiny"])["init"] == "tiny"
    with pytest.raises(FileNotFoundError, match="no_such.keras"):
        tr.train({**TINY, "init": "no_such"}, verbose=0)
