"The production training recipe (setup/train_line_model.py): growing a trained line network keeps what it computes."
import importlib.util, json, subprocess
from pathlib import Path

import keras
import numpy as np
import pytest

from text_recognizer.networks.line import line_lstm_ctc

RECIPE = Path(__file__).resolve().parents[2] / "setup" / "train_line_model.py"


@pytest.fixture(scope="module")
def recipe():
    spec = importlib.util.spec_from_file_location("train_line_model", RECIPE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def trained_looking(network, rng):
    "Random weights everywhere, positive variances: a network whose copy cannot pass by chance."
    for layer in network.layers:
        if layer.weights:
            layer.set_weights([rng.uniform(0.5, 1.5, w.shape).astype(np.float32) if "variance" in v.path
                               else rng.normal(0, 0.3, w.shape).astype(np.float32)
                               for v, w in zip(layer.weights, layer.get_weights())])
    return network


def test_a_grown_network_reads_exactly_as_the_small_one(recipe):
    rng = np.random.default_rng(0)
    small = trained_looking(line_lstm_ctc(widths=(4, 8, 8), features=16, lstm_units=8), rng)
    large = recipe.grow(small, line_lstm_ctc(widths=(8, 16, 12), features=24, lstm_units=8, lstm_layers=2,
                                             residual=True))
    assert large.count_params() > 2 * small.count_params()
    lines = rng.random((2, 28, 96)).astype(np.float32)
    np.testing.assert_allclose(large.predict_on_batch(lines), small.predict_on_batch(lines), atol=1e-4)


def test_the_added_layers_learn(recipe):
    rng = np.random.default_rng(1)
    small = trained_looking(line_lstm_ctc(widths=(4, 8, 8), features=16, lstm_units=8), rng)
    large = recipe.grow(small, line_lstm_ctc(widths=(8, 16, 8), features=16, lstm_units=8, lstm_layers=2,
                                             residual=True))
    added = [layer for layer in large.layers if isinstance(layer, keras.layers.Bidirectional)][1]
    cell_input = lambda: added.get_weights()[0][:, 16:24]  # forward kernel, gate c of (i, f, c, o)
    assert not cell_input().any()
    large.compile(optimizer=keras.optimizers.Adam(1e-2), loss=keras.losses.CTC())
    large.train_on_batch(rng.random((4, 28, 96)).astype(np.float32), rng.integers(1, 80, (4, 5)).astype(np.int32))
    assert np.abs(cell_input()).max() > 1e-4


def test_growing_what_cannot_compute_the_same_is_refused(recipe):
    small = line_lstm_ctc(widths=(8, 16, 16), features=32, lstm_units=8)
    with pytest.raises(ValueError, match="cannot hold"):
        recipe.grow(small, line_lstm_ctc(widths=(4, 8, 8), features=16, lstm_units=8))
    with pytest.raises(ValueError, match="residual"):
        recipe.grow(small, line_lstm_ctc(widths=(8, 16, 16), features=32, lstm_units=8, lstm_layers=2))


def test_a_stage_an_earlier_commit_exported_comes_back_from_git(recipe, tmp_path, monkeypatch):
    stage = next(s for s in recipe.STAGES if "exported_at" in s)
    if subprocess.run(["git", "cat-file", "-e", f"{stage['exported_at']}^{{commit}}"], cwd=RECIPE.parents[1]).returncode:
        pytest.skip(f"commit {stage['exported_at']} is not in this clone (a shallow one)")
    monkeypatch.setattr(recipe, "CHECKPOINTS", tmp_path)
    assert recipe.restore_exported(stage) and not recipe.restore_exported(stage)  # once: then it is there
    results = json.loads((tmp_path / stage["name"] / "results.json").read_text())
    assert results["restored_from"] == stage["exported_at"] and len(results["history"]["val_cer"]) == stage["epochs"]
    network = keras.saving.load_model(recipe.stage_network(stage["name"]), compile=False)
    assert network.output_shape[-1] == 80 and network.count_params() > 1_000_000
    wrong = {**stage, "name": "line_model_v2c"}  # a stage that commit did not export
    with pytest.raises(ValueError, match="exported line_model_v3a, not line_model_v2c"):
        recipe.restore_exported(wrong)
