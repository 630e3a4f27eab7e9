"""Production training of the line model: the recipe recorded in shared/text_recognizer/weights/line_model.json.

    TR_LAB_SIZE=full python setup/train_line_model.py            # train what is missing, evaluate, export, record
    TR_LAB_SIZE=full python setup/train_line_model.py --export   # only evaluate, export and record the last stage

Generation 3 grows the generation-2 model (the production model of commit 0227790, itself three fine-tuning stages
of the lab 4 model made by this script at that commit) into a larger network: convolutions twice as wide and a second,
residual BiLSTM layer (`line_lstm_ctc(..., lstm_layers=2, residual=True)`). `grow` copies every trained weight into
the larger network so that it computes exactly what the smaller one did (new channels start with zero outgoing
weights, the new LSTM with a zero cell input, so it adds nothing), then the stages train it on varied, normalized lines
(`lines_dataset(varied=True)`: EMNIST in the typographic and the reference layout, handwriting fonts, pen redraws,
distortions, scans). Each stage keeps Keras BackupAndRestore checkpoints in data/checkpoints/<stage>/ and its
finished network there as network.keras: run the script again after an interruption (another session, a crash) and
it resumes the unfinished stage at its last finished epoch and skips finished ones; a stage that an earlier commit
exported (`exported_at`) is restored from git history instead of trained again. Stage v3b continues v3a on new lines
with more fonts, thin pens and wider letter spacing (`vary_line(thin_rate=..., spacing=...)`); stage v3c continues v3b
on the same mix drawn anew and normalized upright (all of each line's slant undone; `normalize_line` now undoes
UPRIGHT_SHARE = 3/4 of it, which read better with this model, so a rerun of v3c would draw slightly different lines
from the ones it was trained on); stage v3d continues v3c at half its learning rate on the mix drawn anew as
inference reads it (3/4 of the slant undone), so that training and reading see the same lines, and stage v3e
continues v3d at half its rate again on another draw of that mix, and stage v3f continues v3e the same way
(half the rate, a new draw, 3 epochs), and stage v3g continues v3f at twice v3f's rate on a draw with 19 joined
pen-script fonts added to the training fonts (LINES_VERSION 8). The last stage becomes
weights/line_model.keras and .onnx, with its figures and this recipe in line_model.json and the weights manifest.
"""
import argparse, hashlib, json, os, shutil, subprocess, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHECKPOINTS = ROOT / "data" / "checkpoints"
START = ("0227790", "shared/text_recognizer/weights/line_model.keras")  # generation 2, which generation 3 grows
LARGER = {"widths": (32, 64, 128), "features": 256, "lstm_layers": 2, "residual": True}  # line_lstm_ctc arguments
# the mix of stages v3b-v3e: half the lines in fonts, most redrawn with pens (many thin), letter spacing 0.65-1.9
MIX = {"n_train": 48000, "n_val": 600, "n_test": 600, "varied": True, "font_rate": 0.5,
       "vary": {"pen_rate": 0.7, "thin_rate": 0.6, "spacing": [0.65, 1.9]}}
STAGES = [
    {"name": "line_model_v3a", "init": "grow", "epochs": 5, "learning_rate": 1e-3, "batch_size": 64,
     "dataset_args": {"n_train": 48000, "n_val": 600, "n_test": 600, "varied": True, "font_rate": 0.4}, "seed": 3,
     "exported_at": "b61a17e"},
    # new lines with more fonts, thin pens (vary_line thin_rate) and wider letter spacing, at half the learning rate
    {"name": "line_model_v3b", "init": "line_model_v3a", "epochs": 5, "learning_rate": 5e-4, "batch_size": 64,
     "dataset_args": MIX, "seed": 4,
     "exported_at": "76b1710"},
    # v3b's data drawn anew (seed 5) through normalize_line with all of slant_of undone (LINES_VERSION 6), 4 epochs
    {"name": "line_model_v3c", "init": "line_model_v3b", "epochs": 4, "learning_rate": 5e-4, "batch_size": 64,
     "dataset_args": MIX, "seed": 5,
     "exported_at": "7e290bf"},
    # the same mix drawn anew (seed 6) as it is read (LINES_VERSION 7: UPRIGHT_SHARE of the slant undone), half v3c's rate
    {"name": "line_model_v3d", "init": "line_model_v3c", "epochs": 4, "learning_rate": 2.5e-4, "batch_size": 64,
     "dataset_args": MIX, "seed": 6,
     "exported_at": "958b597"},
    # the same mix drawn anew once more (seed 7), half v3d's rate: v3d's validation CER was still falling
    {"name": "line_model_v3e", "init": "line_model_v3d", "epochs": 4, "learning_rate": 1.25e-4, "batch_size": 64,
     "dataset_args": MIX, "seed": 7,
     "exported_at": "ac3aabe"},
    # another draw (seed 8) at half v3e's rate, 3 epochs: v3e's validation CER had flattened (.170 .172 .169 .169)
    {"name": "line_model_v3f", "init": "line_model_v3e", "epochs": 3, "learning_rate": 6.25e-5, "batch_size": 64,
     "dataset_args": MIX, "seed": 8,
     "exported_at": "d14fae8"},
    # another draw (seed 9) with 19 joined pen-script fonts added to the training fonts (LINES_VERSION 8), twice v3f's
    # rate so that the new fonts can move the weights
    {"name": "line_model_v3g", "init": "line_model_v3f", "epochs": 3, "learning_rate": 1.25e-4, "batch_size": 64,
     "dataset_args": MIX, "seed": 9,
     "exported_at": "31918ba"},
]
WEIGHTS = "shared/text_recognizer/weights"


def stage_network(name: str) -> Path:
    "Where a finished stage keeps its network."
    return CHECKPOINTS / name / "network.keras"


def git_show(commit: str, path: str) -> bytes:
    "The bytes of `path` at `commit` of this repository."
    return subprocess.run(["git", "show", f"{commit}:{path}"], cwd=ROOT, check=True, capture_output=True).stdout


def start_network() -> Path:
    "The generation-2 line model the first stage grows, taken out of git history once."
    path = CHECKPOINTS / "line_model_v2.keras"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(git_show(*START))
    return path


def restore_exported(stage: dict) -> bool:
    """Put a finished stage that commit `stage['exported_at']` made the production model back into data/checkpoints/
    (its network and results, from git history) instead of training it again; False if it has no such commit."""
    if "exported_at" not in stage or stage_network(stage["name"]).exists():
        return False
    info = json.loads(git_show(stage["exported_at"], f"{WEIGHTS}/line_model.json"))
    record = info["training"]["stages"][-1]
    if record["name"] != stage["name"]:
        raise ValueError(f"commit {stage['exported_at']} exported {record['name']}, not {stage['name']}")
    results = {k: record[k] for k in ("train_examples", "train_seconds", "epochs_run", "val_cer", "test_cer", "test_cer_beam")}
    results.update(history={"val_cer": record["val_cer_per_epoch"]}, restored_from=stage["exported_at"])
    network = git_show(stage["exported_at"], f"{WEIGHTS}/line_model.keras")
    if hashlib.sha256(network).hexdigest() != info["keras_sha256"]:
        raise ValueError(f"line_model.keras at commit {stage['exported_at']} does not match its line_model.json")
    stage_network(stage["name"]).parent.mkdir(parents=True, exist_ok=True)
    stage_network(stage["name"]).write_bytes(network)
    (CHECKPOINTS / stage["name"] / "results.json").write_text(json.dumps(results, indent=1))
    print(f"{stage['name']}: restored from commit {stage['exported_at']}")
    return True


def weighted_layers(network) -> list:
    "The layers of `network` that have weights, in order."
    return [layer for layer in network.layers if layer.weights]


def grow(small, large):
    """Copy the weights of the `small` line network into the `large` one (same layers, wider convolutions, more
    LSTM layers) so that `large` computes the same function: extra input channels get zero weights, extra LSTM
    layers (residual) a zero cell input. Returns `large`."""
    import keras
    lstm = lambda layers, want: [l for l in layers if isinstance(l, keras.layers.Bidirectional) == want]
    old, new = weighted_layers(small), weighted_layers(large)
    if len(lstm(old, False)) != len(lstm(new, False)) or len(lstm(old, True)) > len(lstm(new, True)):
        raise ValueError(f"{large.name} does not have the layers of {small.name} (only wider and with more LSTMs)")
    if len(lstm(new, True)) > len(lstm(old, True)) and not any(isinstance(l, keras.layers.Add) for l in large.layers):
        raise ValueError("added LSTM layers must be residual (line_lstm_ctc(..., residual=True)) to start as no-ops")
    pairs = {id(n): o for want in (False, True) for n, o in zip(lstm(new, want), lstm(old, want))}
    for layer in new:
        source = pairs.get(id(layer))
        if source is None:  # an added residual LSTM layer: no cell input (gate c of i, f, c, o), so it outputs 0
            weights = layer.get_weights()
            for w in weights:
                units = w.shape[-1] // 4
                w[..., 2 * units:3 * units] = 0
            layer.set_weights(weights)
            continue
        weights = []
        for o, n in zip(source.get_weights(), layer.get_weights()):
            if n.ndim != o.ndim or any(a < b for a, b in zip(n.shape, o.shape)):
                raise ValueError(f"{layer.name}: weights {n.shape} cannot hold the trained {o.shape}")
            if o.ndim >= 2:  # a kernel (..., inputs, outputs): added inputs must not change the outputs
                n[..., o.shape[-2]:, :] = 0
            n[tuple(slice(0, d) for d in o.shape)] = o
            weights.append(n)
        layer.set_weights(weights)
    return large


def grown_network() -> Path:
    "The generation-2 network grown into the LARGER architecture, saved once in data/checkpoints/."
    path = CHECKPOINTS / "line_model_v2_grown.keras"
    if not path.exists():
        import keras
        from text_recognizer.networks.line import line_lstm_ctc
        small = keras.saving.load_model(start_network(), compile=False)
        large = grow(small, line_lstm_ctc(small.input_shape[1:], small.output_shape[-1], **LARGER))
        large.save(path)
    return path


def run_stage(stage: dict) -> dict:
    "Train one stage (resuming from its checkpoints) unless it is finished; its results dict."
    from text_recognizer.metadata import WEIGHTS_DIR
    from text_recognizer.training.train import train
    results_path = CHECKPOINTS / stage["name"] / "results.json"
    restore_exported(stage)
    if stage_network(stage["name"]).exists() and results_path.exists():
        print(f"{stage['name']}: finished earlier")
        return json.loads(results_path.read_text())
    init = grown_network() if stage["init"] == "grow" else stage_network(stage["init"])
    config = {"dataset": "lines", "dataset_args": stage["dataset_args"], "init": str(init), "model": "line",
              "model_args": {"checkpoint_dir": str(CHECKPOINTS / stage["name"])}, "epochs": stage["epochs"],
              "batch_size": stage["batch_size"], "learning_rate": stage["learning_rate"], "save": stage["name"],
              "seed": stage.get("seed", 0),
              "wandb": os.environ.get("WANDB_MODE") != "disabled"}
    results = train(config, verbose=2)
    shutil.move(WEIGHTS_DIR / f"{stage['name']}.keras", stage_network(stage["name"]))
    results["config"] = {k: v for k, v in config.items() if k not in ("init", "model_args")}
    results_path.write_text(json.dumps(results, indent=1))
    return results


def evaluate(model) -> dict:
    "Figures of a LineModel on the own test lines, held-out font lines and varied test lines (all normalized)."
    from text_recognizer.data.lines import lines_dataset
    figures = {}
    for prefix, kwargs in {"test": dict(n=1000, font_rate=0.0, seed=1), "font_test": dict(n=500, font_rate=1.0, seed=2),
                           "varied_test": dict(n=1000, font_rate=0.35, seed=3, varied=True)}.items():
        data = lines_dataset("test", **kwargs)
        metrics = model.evaluate((data["images"], data["labels"]))
        figures.update({f"{prefix}_lines": kwargs["n"], f"{prefix}_cer_greedy": round(metrics["cer"], 4),
                        f"{prefix}_cer_beam": round(metrics["cer_beam"], 4),
                        f"{prefix}_cer_beam_casefold": round(metrics["cer_beam_casefold"], 4)})
    return figures


def earlier_training(previous: dict | None) -> dict | None:
    "What came before this script's stages: the previous record, or what it kept if its stages begin these ones."
    names = [s.get("name") for s in (previous or {}).get("stages", [])]
    if names and names == [s["name"] for s in STAGES][:len(names)]:
        return previous.get("earlier")
    return previous


def export(stages: list[dict], results: list[dict]) -> dict:
    "Make the last stage the production model: .keras, .onnx, line_model.json (figures, recipe), manifest."
    from text_recognizer.metadata import sha256_file
    from text_recognizer.models.line import LineModel
    from text_recognizer.metadata import CHARSET, WEIGHTS_DIR
    from text_recognizer.inference.weights import MANIFEST, build_manifest, write_json
    shutil.copyfile(stage_network(stages[-1]["name"]), WEIGHTS_DIR / "line_model.keras")
    model = LineModel.load("line_model")
    model.export_onnx(WEIGHTS_DIR / "line_model.onnx")
    info_path = WEIGHTS_DIR / "line_model.json"
    old = json.loads(info_path.read_text()) if info_path.exists() else {}
    info = {"charset": list(CHARSET),
            "input": "float32 (N, 28, W) in [0, 1], light ink on black, normalized by normalize_line; any W >= 32",
            "output": old.get("output", "float32 (N, W // 4, 80) per-step probabilities; index 0 is the CTC blank"),
            "network": "line_lstm_ctc", "params": model.network.count_params(), **evaluate(model),
            "train_minutes": round(sum(r["train_seconds"] for r in results) / 60, 1),
            "keras_sha256": sha256_file(WEIGHTS_DIR / "line_model.keras"),
            "onnx_sha256": sha256_file(WEIGHTS_DIR / "line_model.onnx"),
            "training": {"recipe": "setup/train_line_model.py", "starts_from": f"{START[1]} at commit {START[0]}",
                         "grown_into": {"network": "line_lstm_ctc", **LARGER},
                         "stages": [{**s, **{k: r.get(k) for k in ("train_examples", "train_seconds", "epochs_run",
                                                                     "val_cer", "test_cer", "test_cer_beam")},
                                     "val_cer_per_epoch": r.get("history", {}).get("val_cer")}
                                    for s, r in zip(stages, results)],
                         "earlier": earlier_training(old.get("training"))}}
    write_json(info_path, info)
    write_json(WEIGHTS_DIR / MANIFEST, build_manifest())
    return info


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--export", action="store_true", help="only evaluate, export and record the finished stages")
    args = p.parse_args(argv)
    if os.environ.get("TR_LAB_SIZE") != "full":
        print("setup/train_line_model.py: set TR_LAB_SIZE=full (the glyph banks of the production data)", file=sys.stderr)
        return 2
    started = time.time()
    results = []
    for stage in STAGES:
        if args.export:
            results.append(json.loads((CHECKPOINTS / stage["name"] / "results.json").read_text()))
        else:
            results.append(run_stage(stage))
    info = export(STAGES, results)
    print(json.dumps({k: v for k, v in info.items() if k not in ("charset", "training")}, indent=1))
    print(f"done in {(time.time() - started) / 60:.1f} min")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
