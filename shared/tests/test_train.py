"""Tests of text_recognizer.training.train: config and command-line parsing, registries, a tiny run in-process and via the CLI,
the CLI as a user runs it (a clean shell) and what its offline W&B run holds."""
import json, os, struct, subprocess, sys
from pathlib import Path

import numpy as np
import pytest

import text_recognizer.metadata as metadata

from text_recognizer.training import train as tr
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
    from text_recognizer.networks.character import lenet
    assert tr.resolve(tr.NETWORKS, "lenet") is lenet
    assert tr.resolve(tr.DATASETS, "text_recognizer.models.character:emnist_data").__name__ == "emnist_data"
    assert {"emnist", "lines", "paragraphs"} <= tr.DATASETS.keys() and {"character", "line"} <= tr.MODELS.keys()
    assert {"mlp", "lenet", "line_cnn_sliding_window", "line_lstm_ctc"} <= tr.NETWORKS.keys()
    with pytest.raises(ValueError, match="unknown network 'resnet'"):
        tr.resolve(tr.NETWORKS, "resnet", "network")
    with pytest.raises(ValueError, match="cannot be imported"):
        tr.resolve({"x": "text_recognizer.no_such_module:f"}, "x")
    with pytest.raises(ValueError, match="has no"):
        tr.resolve({"x": "text_recognizer.networks.character:no_such"}, "x")


def test_tiny_mixed_precision_run_returns_figures_and_restores_the_policy():
    import keras
    results, model = tr.train({**TINY, "mixed_precision": True}, verbose=0, return_model=True)
    assert results["train_examples"] == 300 and results["epochs_run"] == 2 and results["device"] in ("CPU", "GPU")
    assert results["examples_per_second"] > 0 and 0 <= results["test_accuracy"] <= 1 and results["params"] > 0
    assert len(results["history"]["loss"]) == 2 and model.network.count_params() == results["params"]
    assert keras.mixed_precision.global_policy().name == "float32"


def test_cli_runs_and_prints_json(tmp_path):
    env = {**os.environ, "WANDB_MODE": "disabled", "TF_CPP_MIN_LOG_LEVEL": "3"}
    command = [sys.executable, "-m", "text_recognizer.training.train", "--epochs", "1", "--dataset-args", '{"limit": 200}',
               "--network", "mlp", "--network-args", '{"layer_sizes": [16]}', "--no-wandb"]
    out = subprocess.run(command, capture_output=True, text=True, cwd=project_root(), env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    results = json.loads(out.stdout[out.stdout.index("{\n"):])
    assert results["train_examples"] == 200 and "history" not in results


def test_init_starts_from_a_saved_network(tmp_path, monkeypatch):
    import numpy as np
    monkeypatch.setattr(metadata, "WEIGHTS_DIR", tmp_path)
    monkeypatch.delenv("TR_WEIGHTS_DIR", raising=False)
    first, model = tr.train({**TINY, "save": "tiny"}, verbose=0, return_model=True)
    assert (tmp_path / "tiny.keras").exists()
    frozen = {**TINY, "init": "tiny", "epochs": 1, "learning_rate": 0.0, "lr_schedule": "constant"}
    again, resumed = tr.train(frozen, verbose=0, return_model=True)
    kernels = lambda m: [w for w in m.network.get_weights() if w.ndim > 1]  # conv and dense kernels
    assert all(np.array_equal(a, b) for a, b in zip(kernels(model), kernels(resumed)))
    assert tr.parse_args(["--init", "tiny"])["init"] == "tiny"
    with pytest.raises(FileNotFoundError, match="no_such.keras"):
        tr.train({**TINY, "init": "no_such"}, verbose=0)


class RecordingRun:
    "Stands in for a W&B run: keeps the rows logged."
    def __init__(self):
        self.rows = []

    def log(self, row, step=None):
        self.rows.append(row)


def test_the_callback_logs_the_learning_rate_of_every_epoch():
    import keras
    from text_recognizer.models.character import learning_rate_schedule
    run, network = RecordingRun(), keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    schedule = learning_rate_schedule(0.1, "cosine", 3 * 4)
    network.compile(keras.optimizers.AdamW(schedule), "mse")
    network.fit(np.zeros((16, 3)), np.zeros(16), batch_size=4, epochs=3, verbose=0, callbacks=[tr.wandb_callback(run)])
    assert [row["epoch"] for row in run.rows] == [1, 2, 3] and all("loss" in row for row in run.rows)
    assert [row["learning_rate"] for row in run.rows] == pytest.approx([float(schedule(4 * k)) for k in (1, 2, 3)])
    assert all(type(row["learning_rate"]) is float for row in run.rows)
    assert tr.current_learning_rate(keras.optimizers.AdamW(0.02)) == pytest.approx(0.02)


def test_prediction_logs_of_a_line_model():
    import wandb
    from text_recognizer.models.line import LineModel
    from text_recognizer.networks.line import line_lstm_ctc
    from test_line_model import tiny_lines
    images, labels = tiny_lines()
    model = LineModel(line_lstm_ctc(widths=(8, 8, 8), features=16, lstm_units=16))
    logs = tr.prediction_logs(model, (images, labels), n=3)
    assert logs.keys() == {"val_predictions", "val_samples", "val_cer"}
    assert isinstance(logs["val_predictions"], wandb.Table) and len(logs["val_predictions"].data) == 3
    assert [row[1] for row in logs["val_predictions"].data] == ["ab 12", "Hello", "x"]
    assert isinstance(logs["val_samples"], wandb.Image) and isinstance(logs["val_cer"], wandb.Image)
    assert tr.prediction_logs(object(), (images, labels)) == {}  # a model it does not know: nothing to log


def test_a_failure_to_log_predictions_costs_only_a_warning(monkeypatch):
    "The pictures of a run are welcome, but a finished training's results matter more."
    def broken(model, split):
        raise RuntimeError("no pictures today")
    monkeypatch.setattr(tr, "prediction_logs", broken)
    monkeypatch.setenv("WANDB_MODE", "offline")  # the root conftest points WANDB_DIR at a temporary folder
    with pytest.warns(UserWarning, match="could not be logged.*no pictures today"):
        results = tr.train({**TINY, "epochs": 1, "wandb": True}, verbose=0)
    assert results["epochs_run"] == 1 and 0 <= results["test_accuracy"] <= 1


def test_drop_native_logs_keeps_everything_else():
    text = ("WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
            "I0000 00:00:1796183667.710185    7627 port.cc:153] oneDNN custom operations are on.\n"
            "E0000 00:00:1796183671.186281    7627 cuda_platform.cc:52] failed call to cuInit: UNKNOWN ERROR (303)\n"
            "ValueError: a real problem\n")
    assert tr.drop_native_logs(text) == "ValueError: a real problem\n"
    assert tr.drop_native_logs(text, 2) == "".join(text.splitlines(True)[2:])
    assert tr.drop_native_logs(text, 0) == text


def wandb_records(path: Path):
    "The records (wandb_internal_pb2.Record) of a .wandb run file: W&B's header, then LevelDB-log chunks."
    from wandb.proto import wandb_internal_pb2
    data, block, pos, parts = path.read_bytes(), 32768, 7, b""
    assert data[:7] == b":W&B\xe1\xbe\x00", f"{path.name} is not a W&B run file (version 0)"
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # a block's tail too short for a chunk header is padding
            pos += block - pos % block
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        if kind == 0:
            pos += block - pos % block
            continue
        parts, pos = parts + data[pos + 7:pos + 7 + length], pos + 7 + length
        if kind in (1, 4):  # a full record, or the last chunk of one
            record = wandb_internal_pb2.Record()
            record.ParseFromString(parts)
            parts = b""
            yield record


TF_NATIVE_CHATTER = ("absl::InitializeLog", "oneDNN", "cuInit", "cudart_stub", "cuda_driver", "cpu_feature_guard")


def test_cli_in_a_clean_shell_trains_and_logs_an_offline_wandb_run(tmp_path):
    "`text-recognizer-train` as a user runs it: no setup/env.sh, no PYTHONPATH, W&B at its default (offline)."
    script = Path(sys.executable).parent / "text-recognizer-train"
    assert script.exists(), "the console script is missing: reinstall the package (pip install -e .)"
    wandb_dir, home = tmp_path / "wandb_dir", tmp_path / "home"
    wandb_dir.mkdir(), home.mkdir()
    env = {"PATH": str(script.parent), "HOME": str(home), "TR_LAB_SIZE": "ci", "WANDB_DIR": str(wandb_dir)}
    command = [script.name, "--dataset", "emnist", "--dataset-args", '{"limit": 200}', "--network", "lenet",
               "--network-args", '{"widths": [4, 8], "dense_size": 16}', "--epochs", "2", "--batch-size", "64"]
    out = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, env=env, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert not [line for line in out.stderr.splitlines() if any(c in line for c in TF_NATIVE_CHATTER)], out.stderr[-3000:]
    results = json.loads(out.stdout[out.stdout.index("{\n"):])
    assert results["train_examples"] == 200 and results["epochs_run"] == 2 and "history" not in results
    assert 0 <= results["val_accuracy"] <= 1 and 0 <= results["test_accuracy"] <= 1 and results["params"] > 0

    runs = list((wandb_dir / "wandb").glob("offline-run-*"))
    assert len(runs) == 1, f"expected one offline run in WANDB_DIR, found {runs}"
    run_dir = runs[0]
    history, config = [], {}
    for record in wandb_records(next(run_dir.glob("run-*.wandb"))):
        kind = record.WhichOneof("record_type")
        if kind == "history":
            history.append({item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in record.history.item})
        elif kind == "run":  # the run's config travels with its start
            config.update({item.key: json.loads(item.value_json) for item in record.run.config.update})
    assert config["epochs"] == 2 and config["network_args"] == {"widths": [4, 8], "dense_size": 16}

    # the metrics and the learning rate of every epoch: the cosine schedule after 4 and 8 steps (200 images, batches of 64)
    epochs = [row for row in history if "epoch" in row]
    assert [row["epoch"] for row in epochs] == [1, 2]
    assert all({"loss", "accuracy", "val_loss", "val_accuracy"} <= row.keys() for row in epochs)
    from text_recognizer.models.character import learning_rate_schedule
    schedule = learning_rate_schedule(tr.DEFAULT_CONFIG["learning_rate"], "cosine", 2 * 4)
    assert [row["learning_rate"] for row in epochs] == pytest.approx([float(schedule(4)), float(schedule(8))], rel=1e-4)

    # what the model does on the validation split: a table of samples, a grid of them and a confusion matrix
    logged = {key.split("/")[0] for row in history for key in row}
    assert {"val_predictions", "val_samples", "val_confusion"} <= logged
    media = run_dir / "files" / "media"
    tables = list((media / "table").glob("val_predictions_*.table.json"))
    assert len(tables) == 1
    table = json.loads(tables[0].read_text())
    assert table["columns"] == ["image", "truth", "prediction", "confidence"] and len(table["data"]) == 16
    from text_recognizer.models.character import emnist_data
    from text_recognizer.metadata import CHARSET
    _, y_val = emnist_data({"dataset_args": {"limit": 200}, "seed": 0})["val"]
    assert [row[1] for row in table["data"]] == [CHARSET[i] for i in y_val[:16]]
    assert all(row[2] in CHARSET and 0 <= row[3] <= 1 for row in table["data"])
    from PIL import Image
    for name in ("val_samples", "val_confusion"):
        images = list((media / "images").glob(f"{name}_*.png"))
        assert len(images) == 1, f"no {name} picture in {media}"
        with Image.open(images[0]) as image:
            assert min(image.size) > 100
