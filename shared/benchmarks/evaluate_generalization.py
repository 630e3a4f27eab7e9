"""Generalization benchmark (issue #19): CER of the recognizer on writing its own generator did not draw; prints one table.

    python shared/benchmarks/evaluate_generalization.py [--size tiny|default] [--n-lines N] [--n-pages N] [--seed 0]
                                                        [--skip-tesseract] [--write]

Rows: `CharacterPredictor` (single characters), `LinePredictor` (lines), `ParagraphTextRecognizer` (pages), the HTTP
service (`text_recognizer.serving.app.create_app`, POST /v1/predict through Flask's test client; lines and pages) and the
peer Tesseract 5 (the `tesseract` binary, `--psm 7` for lines, `--psm 6` for pages, images dark on light).
Columns, one per test suite:
- own test: today's test data (`make_lines` / `make_paragraphs` on the test split; EMNIST test characters). Comparison only.
- reference layout: EMNIST lines in the 2019 FSDL course format (28×952, full cells; letters, digits and spaces).
- independent renderer: `independent_renderer.render_lines` / `render_pages` (own sizing, both polarities, noise).
- held-out fonts: text written with PIL in the fonts of `handwriting_fonts("test")`.
- real handwriting: data/real_handwriting/ (107 lines, 3 pages of 1905 letters; evaluation only).
- pen S / M / L: EMNIST skeletons drawn with the web page's round pen, capitals ~20 / 45 / 90 px tall.
Each cell is the CER micro-averaged over the suite (sum of Levenshtein distances / sum of truth lengths, whitespace runs
squashed to one space; a page's lines are joined by newlines first) with the number of items; `-` where a row does not
read that suite. For characters the CER is the error rate. Latency: p50 over every call of the row, in ms per line
(for pages: the page's time over its true lines) and per page. All data is fixed by `--seed`.
`--write` also writes the table to evaluate_generalization.txt beside this file.
"""
import argparse, base64, io, json, os, shutil, subprocess, sys, time
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

HERE = Path(__file__).resolve().parent
SUITES = ("own test", "reference layout", "independent renderer", "held-out fonts", "real handwriting",
          "pen S", "pen M", "pen L")
REAL = "real handwriting"
SIZES = {"tiny": dict(lines=4, pages=1, chars=12, real_lines=6, real_pages=1),
         "default": dict(lines=200, pages=30, chars=1000, real_lines=None, real_pages=None)}
ASCII = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u2013": "-", "\u2014": "-"})


def squash(text: str) -> str:
    "Runs of whitespace (newlines too) as one space, stripped."
    return " ".join(text.split())


def micro_cer(predictions: list[str], truths: list[str]) -> float:
    "Sum of edit distances over the sum of truth lengths, whitespace squashed on both sides."
    from text_recognizer.inference.ctc import character_error_rate
    return character_error_rate([squash(p) for p in predictions], [squash(t) for t in truths])


# ------------------------------------------------------------------------------------------------------------ suites
def page_texts(n: int, rng) -> list[list[str]]:
    "`n` pages of 2-8 lines of 16-32 characters of running held-out (test-split) text."
    from text_recognizer.data.paragraphs import wrap_paragraph
    return [wrap_paragraph("test", int(rng.integers(2, 9)), int(rng.integers(16, 33)), rng) for _ in range(n)]


def line_texts(n: int, rng, clean=lambda t: t, max_length: int = 32) -> list[str]:
    "`n` non-empty pieces of held-out text, passed through `clean`."
    from text_recognizer.data.lines import sample_texts
    out = []
    while len(out) < n:
        out += [c for c in map(clean, sample_texts(2 * (n - len(out)), "test", max_length, rng)) if c.strip()]
    return out[:n]


def char_texts(n: int, rng) -> list[str]:
    "`n` letters and digits drawn from held-out text (natural frequencies)."
    import independent_renderer as ir
    pool = [c for c in "".join(line_texts(max(8, n // 8), rng, ir.alnum_text)) if c != " "]
    return [str(c) for c in rng.choice(pool, n)]


def own_suite(sizes: dict, seed: int) -> dict:
    "Today's test data: make_lines / make_paragraphs on the test split, EMNIST test characters."
    from text_recognizer.data.emnist import load_emnist
    from text_recognizer.data.lines import make_lines
    from text_recognizer.metadata import CHARSET
    from text_recognizer.data.paragraphs import make_paragraphs
    lines, pages = make_lines(sizes["lines"], "test", seed=seed), make_paragraphs(sizes["pages"], "test", seed=seed)
    x, y = load_emnist("test")
    idx = np.random.default_rng(seed).choice(len(y), sizes["chars"], replace=False)
    return {"chars": (list(x[idx]), [CHARSET[i] for i in y[idx]]), "lines": (list(lines["images"]), lines["texts"]),
            "pages": (list(pages["images"]), pages["texts"])}


def reference_suite(sizes: dict, rng) -> dict:
    "The 2019 course's EMNIST lines and stacks of them."
    import independent_renderer as ir
    texts = line_texts(sizes["lines"], rng, ir.alnum_text, max_length=ir.REFERENCE_CELLS)
    pages = [[t for t in map(ir.alnum_text, p) if t] or ["a"] for p in page_texts(sizes["pages"], rng)]
    return {"lines": (ir.reference_lines(texts, rng), texts),
            "pages": (ir.reference_pages(pages, rng), ["\n".join(p) for p in pages])}


def independent_suite(sizes: dict, rng) -> dict:
    "The independent renderer's characters, lines and pages."
    import independent_renderer as ir
    chars, texts = char_texts(sizes["chars"], rng), line_texts(sizes["lines"], rng, ir.drawable_text)
    pages = [[t for t in map(ir.drawable_text, p) if t] or ["a"] for p in page_texts(sizes["pages"], rng)]
    return {"chars": (ir.render_lines(chars, rng), chars), "lines": (ir.render_lines(texts, rng), texts),
            "pages": (ir.render_pages(pages, rng), ["\n".join(p) for p in pages])}


def font_suite(sizes: dict, rng) -> dict:
    "Characters, lines and pages written in the held-out fonts."
    import independent_renderer as ir
    covered = lambda t: t if ir.fonts_for([t]) else ""
    chars = [c for c in char_texts(2 * sizes["chars"], rng) if covered(c)][:sizes["chars"]]
    texts = line_texts(sizes["lines"], rng, covered)
    pages = [p for p in page_texts(2 * sizes["pages"], rng) if ir.fonts_for(p)][:sizes["pages"]]
    return {"chars": ir.font_lines(chars, rng), "lines": ir.font_lines(texts, rng), "pages": ir.font_pages(pages, rng)}


def pen_suite(sizes: dict, rng, size: str) -> dict:
    "Characters and lines drawn with the round pen at one writing size."
    import independent_renderer as ir
    chars, texts = char_texts(sizes["chars"], rng), line_texts(sizes["lines"], rng, ir.drawable_text)
    return {"chars": (ir.pen_lines(chars, rng, size), chars), "lines": (ir.pen_lines(texts, rng, size), texts)}


def real_suite(sizes: dict) -> dict:
    "The real-handwriting lines and pages (data/real_handwriting/), read as they are."
    from text_recognizer.metadata import data_dir
    from text_recognizer.inference.character import read_image
    root, out = data_dir() / "real_handwriting", {}
    for kind, limit in (("lines", sizes["real_lines"]), ("pages", sizes["real_pages"])):
        folder = root / ("lines" if kind == "lines" else "paragraphs")
        truth = json.loads((folder / "ground_truth.json").read_text())
        names = sorted(truth)[:limit]
        out[kind] = ([read_image(folder / name) for name in names], [truth[name] for name in names])
    return out


def build_suites(sizes: dict, seed: int) -> dict:
    "Every suite's data: {suite: {'chars' / 'lines' / 'pages': (images, truths)}}, fixed by `seed`."
    rng = lambda k: np.random.default_rng([seed, k])
    makers = {"own test": lambda: own_suite(sizes, seed), "reference layout": lambda: reference_suite(sizes, rng(1)),
              "independent renderer": lambda: independent_suite(sizes, rng(2)),
              "held-out fonts": lambda: font_suite(sizes, rng(3)), REAL: lambda: real_suite(sizes),
              **{f"pen {s}": (lambda s=s, k=k: pen_suite(sizes, rng(4 + k), s)) for k, s in enumerate("SML")}}
    return {name: make() for name, make in tqdm(makers.items(), desc="drawing the suites", unit="suite")}


# ----------------------------------------------------------------------------------------------------------- readers
def png_bytes(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def dark_on_light(image: np.ndarray) -> np.ndarray:
    from text_recognizer.inference.character import is_dark_on_light
    return image if is_dark_on_light(image) else 255 - image


def service_reader(recognizer):
    "(prepare, read) for the HTTP service serving `recognizer`: a PNG data URL, POSTed through the Flask test client."
    import logging
    from text_recognizer.serving.app import create_app
    client = create_app(recognizer).test_client()
    logging.getLogger("text_recognizer.serving.app").setLevel(logging.WARNING)  # no JSON log line per request

    def read(body: dict) -> str:
        response = client.post("/v1/predict", json=body)
        if response.status_code != 200:
            raise RuntimeError(f"HTTP {response.status_code}: {(response.get_json() or {}).get('error')}")
        return response.get_json()["text"]
    return lambda im: {"image": "data:image/png;base64," + base64.b64encode(png_bytes(im)).decode()}, read


def tesseract_reader(binary: str, psm: int):
    "(prepare, read) for the tesseract binary: a dark-on-light PNG on stdin, text on stdout, curly quotes as ASCII."
    env = {**os.environ, "OMP_THREAD_LIMIT": "1"}

    def read(png: bytes) -> str:
        run = subprocess.run([binary, "stdin", "stdout", "--psm", str(psm)], input=png, capture_output=True,
                             env=env, timeout=120)
        if run.returncode:
            raise RuntimeError(run.stderr.decode(errors="replace").strip()[-200:])
        return run.stdout.decode(errors="replace").translate(ASCII)
    return lambda im: png_bytes(dark_on_light(im)), read


def make_rows(skip_tesseract: bool) -> list[dict]:
    "The readers: label, unit read, and (prepare, read) functions or the reason there are none."
    from text_recognizer.inference.line import LinePredictor
    from text_recognizer.inference.paragraph import ParagraphTextRecognizer
    from text_recognizer.inference.character import CharacterPredictor
    chars, lines, pages = CharacterPredictor(), LinePredictor(), ParagraphTextRecognizer()
    same = lambda im: im
    service = service_reader(pages)
    binary = shutil.which("tesseract")
    why = "skipped" if skip_tesseract else None if binary else "not installed"
    tess = lambda psm: None if why else tesseract_reader(binary, psm)
    return [dict(label="CharacterPredictor (chars)", unit="chars", fns=(same, lambda im: chars.predict(im)[0])),
            dict(label="LinePredictor (lines)", unit="lines", fns=(same, lambda im: lines.predict(im)[0])),
            dict(label="ParagraphTextRecognizer (pages)", unit="pages", fns=(same, lambda im: pages.predict(im)["text"])),
            dict(label="service (lines)", unit="lines", fns=service),
            dict(label="service (pages)", unit="pages", fns=service),
            dict(label="Tesseract 5 (lines)", unit="lines", fns=tess(7), why=why),
            dict(label="Tesseract 5 (pages)", unit="pages", fns=tess(6), why=why)]


def read_suite(row: dict, suite: str, images, truths) -> dict:
    "One cell: the row reads every item of the suite; CER, n, per-call seconds, per-line seconds and failures."
    prepare, read = row["fns"]
    predictions, seconds, per_line, failures = [], [], [], []
    for image, truth in tqdm(list(zip(images, truths)), desc=f"{row['label']} · {suite}", unit=row["unit"][:-1],
                             leave=False):
        data = prepare(image)
        t0 = time.perf_counter()
        try:
            text = read(data)
        except Exception as e:  # an unreadable image counts as an empty reading
            text, failures = "", failures + [f"{type(e).__name__}: {e}"]
        seconds.append(time.perf_counter() - t0)
        per_line.append(seconds[-1] / max(1, len(truth.splitlines())))
        predictions.append(text)
    return {"cer": micro_cer(predictions, truths), "n": len(truths), "seconds": seconds, "per_line": per_line,
            "failures": failures}


def evaluate(rows: list[dict], suites: dict) -> dict:
    "{(row label, suite): cell} for every row and every suite that has the row's unit."
    return {(row["label"], name): read_suite(row, name, *suite[row["unit"]])
            for row in rows if row["fns"] for name, suite in suites.items() if row["unit"] in suite}


# ------------------------------------------------------------------------------------------------------------- table
def row_cells(row: dict, suites: dict, cells: dict) -> list[str]:
    "The CER cells of one row, then its p50 ms per line and per page."
    out = []
    for name in SUITES:
        if row["unit"] not in suites[name]:
            out.append("-")
        elif not row["fns"]:
            out.append(row["why"])
        else:
            out.append(f"{cells[row['label'], name]['cer']:.3f} (n={cells[row['label'], name]['n']})")
    mine = [c for (label, _), c in cells.items() if label == row["label"]]
    p50 = lambda key: f"{1e3 * np.median([s for c in mine for s in c[key]]):.1f}" if mine else "-"
    if row["unit"] == "chars":
        return out + [f"{p50('seconds')} /char", "-"]
    return out + [p50("per_line"), p50("seconds") if row["unit"] == "pages" else "-"]


def ratio_line(cells: dict) -> str:
    "Project CER / Tesseract CER on the real handwriting, for lines and pages."
    parts = []
    for ours, unit in (("LinePredictor (lines)", "lines"), ("ParagraphTextRecognizer (pages)", "pages")):
        a, b = cells.get((ours, REAL)), cells.get((f"Tesseract 5 ({unit})", REAL))
        if a and b:
            ratio = a["cer"] / b["cer"] if b["cer"] else float("inf")
            parts.append(f"{unit} {a['cer']:.3f} / {b['cer']:.3f} = {ratio:.2f} ({ours.split()[0]})")
    return "ratio project/Tesseract on real handwriting: " + ("; ".join(parts) if parts else "- (no Tesseract figures)")


def format_table(rows: list[dict], suites: dict, cells: dict, header: str) -> str:
    "The whole report: header, the table (markdown), the ratio and notes on failed reads."
    columns = ["reader (unit)", *SUITES, "p50 ms/line", "p50 ms/page"]
    body = [[row["label"], *row_cells(row, suites, cells)] for row in rows]
    widths = [max(len(r[i]) for r in [columns, *body]) for i in range(len(columns))]
    line = lambda r: "| " + " | ".join(v.ljust(w) if i == 0 else v.rjust(w) for i, (v, w) in enumerate(zip(r, widths))) + " |"
    table = [line(columns), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, body)]
    notes = [f"note: {label} could not read {len(c['failures'])} of {c['n']} items of {name} (counted as empty "
             f"readings), e.g. {c['failures'][0][:120]}" for (label, name), c in cells.items() if c["failures"]]
    return "\n".join([header, *table, ratio_line(cells), *notes])


def model_versions() -> str:
    "The first 12 hex digits of the sha256 of each ONNX model read, to tell which models a table belongs to."
    import hashlib
    from text_recognizer.metadata import WEIGHTS_DIR
    return ", ".join(f"{p.name} {hashlib.sha256(p.read_bytes()).hexdigest()[:12]}"
                     for p in sorted(WEIGHTS_DIR.glob("*.onnx")))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", choices=SIZES, default="default", help="tiny: a smoke test; default: the real figures")
    p.add_argument("--n-lines", type=int, help="lines per synthetic suite (default 200; tiny 4)")
    p.add_argument("--n-pages", type=int, help="pages per synthetic suite (default 30; tiny 1)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--skip-tesseract", action="store_true", help="leave out the Tesseract rows")
    p.add_argument("--write", action="store_true", help="also write the table to evaluate_generalization.txt")
    args = p.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.path.insert(0, str(HERE))  # independent_renderer sits beside this file
    sizes = {**SIZES[args.size], **{k: v for k, v in (("lines", args.n_lines), ("pages", args.n_pages)) if v}}

    t0 = time.perf_counter()
    suites = build_suites(sizes, args.seed)
    rows = make_rows(args.skip_tesseract)
    cells = evaluate(rows, suites)
    seconds = time.perf_counter() - t0
    header = (f"generalization benchmark (shared/benchmarks/evaluate_generalization.py --size {args.size}, "
              f"seed {args.seed}): CER (micro, whitespace squashed) and items read; {os.cpu_count()} cores, "
              f"{seconds:.0f} s wall; models: {model_versions()}")
    report = format_table(rows, suites, cells, header)
    print(report)
    if args.write:
        path = HERE / "evaluate_generalization.txt"
        path.write_text(report + "\n")
        print(f"wrote {path.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
