"""Paragraph CER of the production ParagraphTextRecognizer on held-out synthetic pages; prints figures, asserts nothing.

    python shared/benchmarks/evaluate_paragraphs.py [--pages 100] [--seed 7] [--write]

For EMNIST pages and for all-font pages (`make_paragraphs(pages, "test", seed, font_rate=...)`) it prints the CER of
the whole page text beside two references that use the true line positions instead of the detector's:
`true_body` (straightened strips along the true body masks, cut as the pipeline cuts detected lines) and
`true_box` (`paragraphs.line_crops` of the true boxes). The gap between the paragraph CER and `true_body` is the
detector's share of the error. It also prints the line model's CER on lab 3's test lines. `--write` records the
page figures in `weights/line_detector.json` (`paragraph_metrics`) and refreshes `weights/manifest.json`.
"""
import argparse, json, sys, time

import numpy as np


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pages", type=int, default=100, help="test pages of each kind")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--lines", type=int, default=1000, help="lab 3 test lines for the line model's own CER")
    p.add_argument("--write", action="store_true", help="record the figures in weights/line_detector.json")
    args = p.parse_args(argv)

    from text_recognizer.inference.ctc import character_error_rate
    from text_recognizer.inference.detector import body_target, find_lines, ink_image
    from text_recognizer.training.detection import line_scores
    from text_recognizer.data.lines import lines_dataset
    from text_recognizer.metadata import WEIGHTS_DIR
    from text_recognizer.inference.weights import MANIFEST, build_manifest, write_json
    from text_recognizer.inference.paragraph import ParagraphTextRecognizer, line_strip
    from text_recognizer.data.paragraphs import line_crops, make_paragraphs

    recognizer = ParagraphTextRecognizer()
    reader = recognizer.line_predictor

    def read_all(strips) -> str:
        texts = [t for t, _ in reader.predict_lines([reader.preprocess(s) for s in strips])]
        return "\n".join(texts)

    metrics = {}
    for kind, font_rate in (("emnist", 0.0), ("fonts", 1.0)):
        test = make_paragraphs(args.pages, "test", seed=args.seed, font_rate=font_rate)
        t0 = time.perf_counter()
        results = [recognizer.predict(image) for image in test["images"]]
        seconds = (time.perf_counter() - t0) / len(results)
        predicted = [r["text"] for r in results]
        true_boxes = [read_all(line_crops(image, boxes)) for image, boxes in zip(test["images"], test["boxes"])]
        true_bodies = []
        for image, mask in zip(test["images"], test["masks"]):
            ink, lines = ink_image(image), find_lines(body_target(mask), mask.shape)
            true_bodies.append(read_all(line_strip(ink, *a) for a in zip(lines["boxes"], lines["centres"],
                                                                          lines["thickness"])))
        found = [np.array([line["box"] for line in r["lines"]]).reshape(-1, 4) for r in results]
        metrics[kind] = {"pages": args.pages, "paragraph_cer": character_error_rate(predicted, test["texts"]),
                         "true_body_cer": character_error_rate(true_bodies, test["texts"]),
                         "true_box_cer": character_error_rate(true_boxes, test["texts"]),
                         "paragraph_cer_casefold": character_error_rate(predicted, test["texts"], ignore_case=True),
                         "line_f1_after_reading": line_scores(found, test["boxes"])["f1"],
                         "ms_per_page": 1e3 * seconds}
        print(f"{kind:6} pages: " + ", ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}"
                                              for k, v in metrics[kind].items()), flush=True)
    lines = lines_dataset("test", args.lines, font_rate=0.0, seed=1)
    readings = [t for t, _ in reader.predict_lines([reader.preprocess(image) for image in lines["images"]])]
    line_cer = character_error_rate(readings, lines["texts"])
    print(f"line model on {args.lines} lab 3 test lines (EMNIST, beam search): CER {line_cer:.4f}")

    if args.write:
        rounded = {kind: {k: round(v, 4) if isinstance(v, float) else v for k, v in m.items()}
                   for kind, m in metrics.items()}
        info_path = WEIGHTS_DIR / "line_detector.json"
        info = json.loads(info_path.read_text())
        info["paragraph_metrics"] = {**rounded, "note": (
            f"ParagraphTextRecognizer on held-out test pages (make_paragraphs({args.pages}, 'test', seed={args.seed}), "
            "EMNIST pages and all-font pages) with the line_model.onnx of the manifest; true_body: straightened strips "
            "along the true body masks; true_box: paragraphs.line_crops of the true boxes; "
            "shared/benchmarks/evaluate_paragraphs.py --write")}
        write_json(info_path, info)
        write_json(WEIGHTS_DIR / MANIFEST, build_manifest())
        print(f"wrote {info_path.name} and {MANIFEST}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
