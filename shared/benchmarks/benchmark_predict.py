"""Time the compiled (onnxruntime) models against the Keras ones on this machine; prints a table, asserts nothing.

    python shared/benchmarks/benchmark_predict.py [--repeats 30] [--pages 20] [--batch 16] [--threads 1]

Rows: the line model's forward pass (batch 1 and a batch of lines); a line read (preprocessing + forward pass + beam
search) alone and as the lines of a page (`LinePredictor.predict_lines`); the detector's forward pass on a page; a
whole page read by `ParagraphTextRecognizer` (detection, strips, each line read on its own, beam search). Each row runs
once with the ONNX models and once with the Keras models in the same code (compiled graphs: `predict_on_batch`).
Figures: median (p50) and 95th percentile (p95) in milliseconds per call, and per line where a call holds several
lines (for pages: the page's time over its lines, p50 over pages).
"""
import argparse, os, sys, time

import numpy as np


def percentiles(f, repeats: int) -> tuple[float, float]:
    "p50 and p95 of `repeats` timed calls of `f` (after one warm-up call), in milliseconds."
    f()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        f()
        times.append(time.perf_counter() - t0)
    return 1e3 * float(np.percentile(times, 50)), 1e3 * float(np.percentile(times, 95))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=30, help="timed calls per row")
    p.add_argument("--pages", type=int, default=20, help="test pages for the page rows")
    p.add_argument("--batch", type=int, default=16, help="lines per batched call")
    p.add_argument("--threads", type=int, default=1, help="onnxruntime threads per model (0: one per core)")
    args = p.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

    import keras
    from text_recognizer.models.detector import LineDetectorModel
    from text_recognizer.models.line import LineModel
    from text_recognizer.inference.line import LinePredictor, prepare_line
    from text_recognizer.data.lines import make_lines
    from text_recognizer.metadata import WEIGHTS_DIR
    from text_recognizer.inference.paragraph import ParagraphTextRecognizer
    from text_recognizer.data.paragraphs import make_paragraphs
    from text_recognizer.inference.character import OnnxModel

    line_onnx = LinePredictor()
    line_onnx.model = OnnxModel(line_onnx.model.path, threads=args.threads)
    line_keras_model = LineModel.load("line_model")
    line_keras = LinePredictor()  # the same predictor with the Keras network (and a softmax) in place of ONNX
    line_keras.model = lambda x: keras.ops.convert_to_numpy(keras.ops.softmax(line_keras_model.network.predict_on_batch(x)))
    detector_keras = LineDetectorModel.load("line_detector")
    paragraph_onnx = ParagraphTextRecognizer(line_predictor=line_onnx)
    paragraph_onnx.detector = OnnxModel(WEIGHTS_DIR / "line_detector.onnx", threads=args.threads)
    paragraph_keras = ParagraphTextRecognizer(line_predictor=line_keras)
    paragraph_keras.detector = lambda x: detector_keras.body_probs(x, 1)

    lines = make_lines(args.batch, "test", seed=5)["images"]
    prepared = [prepare_line(line) for line in lines]
    width = max(p.shape[1] for p in prepared)
    batch = np.zeros((len(prepared), 28, width), np.float32)
    for i, p in enumerate(prepared):
        batch[i, :, :p.shape[1]] = p / 255.0
    typical = int(np.argsort([p.shape[1] for p in prepared])[len(prepared) // 2])  # the line of median width
    one = batch[typical:typical + 1, :, :prepared[typical].shape[1]]
    pages = make_paragraphs(args.pages, "test", seed=6)["images"]
    squeezed = detector_keras.inputs(pages[:1])
    lines_per_page = np.mean([len(paragraph_onnx.detect(page)) for page in pages])

    def each_page(recognizer):
        turn = iter(range(10 ** 9))
        return lambda: recognizer.predict(pages[next(turn) % len(pages)])

    rows = [  # (what, runtime, batch, lines per call, function)
        ("line forward", "onnxruntime", 1, 1, lambda: line_onnx.model(one)),
        ("line forward", "keras", 1, 1, lambda: line_keras.model(one)),
        ("line forward", "onnxruntime", len(batch), len(batch), lambda: line_onnx.model(batch)),
        ("line forward", "keras", len(batch), len(batch), lambda: line_keras.model(batch)),
        ("line read (prepare+beam)", "onnxruntime", 1, 1, lambda: line_onnx.predict(lines[typical])),
        ("line read (prepare+beam)", "keras", 1, 1, lambda: line_keras.predict(lines[typical])),
        ("lines read (prepare+beam)", "onnxruntime", len(lines), len(lines),
         lambda: line_onnx.predict_lines([prepare_line(line) for line in lines])),
        ("lines read (prepare+beam)", "keras", len(lines), len(lines),
         lambda: line_keras.predict_lines([prepare_line(line) for line in lines])),
        ("detector forward, page", "onnxruntime", 1, 0, lambda: paragraph_onnx.detector(squeezed)),
        ("detector forward, page", "keras", 1, 0, lambda: detector_keras.network.predict_on_batch(squeezed)),
        ("page read", "onnxruntime", 1, lines_per_page, each_page(paragraph_onnx)),
        ("page read", "keras", 1, lines_per_page, each_page(paragraph_keras)),
    ]
    print(f"{os.cpu_count()} cores, onnxruntime threads={args.threads or 'one per core'} per model, keras {keras.__version__}, "
          f"{args.repeats} repeats ({len(pages)} for whole pages: each page once); batch-1 line {one.shape[2]} px wide; "
          f"{lines_per_page:.1f} lines per page on {len(pages)} test pages")
    print(f"| {'what':26} | {'runtime':11} | batch | p50 ms | p95 ms | ms/line (p50) |")
    print(f"|{'-' * 28}|{'-' * 13}|-------|--------|--------|---------------|")
    p50s = {}
    for what, runtime, size, per_call, f in rows:
        repeats = len(pages) if what == "page read" else args.repeats
        p50, p95 = percentiles(f, repeats)
        p50s[what, runtime, size] = p50
        per_line = f"{p50 / per_call:13.1f}" if per_call else " " * 13
        p50s[what, runtime, size, "line"] = p50 / per_call if per_call else None
        print(f"| {what:26} | {runtime:11} | {size:5} | {p50:6.1f} | {p95:6.1f} | {per_line} |", flush=True)
    print("speed-up of onnxruntime over keras (p50):", ", ".join(
        f"{what} batch {size}: {p50s[what, 'keras', size] / p50s[what, 'onnxruntime', size]:.1f}×"
        for what, runtime, size, _, _ in rows if runtime == "onnxruntime"))
    page_line = p50s["page read", "onnxruntime", 1, "line"]
    page_speedup = p50s["page read", "keras", 1] / p50s["page read", "onnxruntime", 1]
    print(f"targets (p50 <= 30 ms per line, compiled >= 2x faster than keras): page read {page_line:.1f} ms per line, "
          f"{page_speedup:.1f}x faster")
    return 0


if __name__ == "__main__":
    sys.exit(main())
