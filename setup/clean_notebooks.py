"""Clean the solutions notebooks the nbdev way, then number their code cells 1, 2, 3, ...

nbdev's cleaner drops execution counts, but nbval treats a cell without one as never run and refuses its stored
outputs; sequential numbers keep both tools happy and stay diff-free. Stored PNG figures are made light: at most
MAX_WIDTH pixels wide and a palette of PALETTE colours (an image already so is left alone, so cleaning is idempotent).

    python setup/clean_notebooks.py [NB.ipynb ...]   # default: every notebook under solutions/
    python setup/clean_notebooks.py --check          # exit 1 listing notebooks that are not clean
"""
import argparse, base64, io, json, re, sys
from pathlib import Path

from PIL import Image

from fastcore.nbio import nb2str
from nbdev.clean import clean_nb

ROOT = Path(__file__).resolve().parent.parent
# TensorFlow's C++ start-up chatter (absl log lines such as "Could not find cuda drivers"): written straight to the
# process's stderr, so it reaches stored outputs under some runners and not under others (nbval). Not kept.
NATIVE_LOG = re.compile(r"^(WARNING: All log messages before absl::InitializeLog\(\) is called.*|[IWEF]\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ \S+\.cc:\d+\] .*)\n?", re.M)


def drop_native_logs(outputs: list) -> list:
    "Remove TensorFlow's native log lines from stderr stream outputs, and streams left empty."
    kept = []
    for out in outputs:
        if out.get("output_type") == "stream" and out.get("name") == "stderr":
            text = NATIVE_LOG.sub("", "".join(out["text"]))
            if not text:
                continue
            out["text"] = text.splitlines(keepends=True)
        kept.append(out)
    return kept


MAX_WIDTH, PALETTE = 900, 32


def light_png(data: str) -> str:
    "A base64 PNG as a palette image at most MAX_WIDTH wide; unchanged if it already is one."
    image = Image.open(io.BytesIO(base64.b64decode(data)))
    if image.mode == "P" and image.width <= MAX_WIDTH:
        return data
    image = image.convert("RGB")
    if image.width > MAX_WIDTH:
        image = image.resize((MAX_WIDTH, max(1, round(image.height * MAX_WIDTH / image.width))), Image.LANCZOS)
    out = io.BytesIO()
    image.quantize(colors=PALETTE, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(out, "PNG", optimize=True)
    return base64.b64encode(out.getvalue()).decode()


def shrink_images(outputs: list) -> None:
    "Make every stored PNG of `outputs` light (`light_png`), in place."
    for out in outputs:
        data = out.get("data", {})
        if "image/png" in data:
            png = data["image/png"]
            text = "".join(png) if isinstance(png, list) else png
            light = light_png(text.strip())
            if light != text.strip():
                data["image/png"] = light


def cleaned(text: str) -> str:
    "The clean form of a notebook's JSON text."
    nb = json.loads(text)
    clean_nb(nb)
    for n, cell in enumerate((c for c in nb["cells"] if c["cell_type"] == "code"), 1):
        cell["execution_count"] = n
        cell["outputs"] = drop_native_logs(cell.get("outputs", []))
        shrink_images(cell["outputs"])
        for out in cell.get("outputs", []):
            if "execution_count" in out:
                out["execution_count"] = n
    return nb2str(nb)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("notebooks", nargs="*", type=Path)
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    notebooks = args.notebooks or sorted((ROOT / "solutions").glob("**/*.ipynb"))
    dirty = []
    for path in notebooks:
        text = path.read_text(encoding="utf-8")
        new = cleaned(text)
        if new != text:
            dirty.append(path)
            if not args.check:
                path.write_text(new, encoding="utf-8")
    for path in dirty:
        print(f"{'not clean' if args.check else 'cleaned'}: {path}")
    return 1 if args.check and dirty else 0


if __name__ == "__main__":
    sys.exit(main())
