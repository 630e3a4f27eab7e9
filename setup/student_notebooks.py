"""Derive the student notebooks `labN/*.ipynb` from the complete notebooks in `solutions/labN/`.

A solution region in a code cell is marked nbgrader-style:

    ### BEGIN SOLUTION 2.1.1: one line telling the student what to write
    ...the solution...
    ### END SOLUTION

`2.1.1` is the exercise's id (lab 2, notebook 01, first exercise); the next code cell checks it with
`text_recognizer.exercises.check("2.1.1", ...)`. In the student version the region becomes a stub that raises
`NotImplementedError` naming the exercise, its hint and its check, and the cell's stored outputs are dropped (they
showed the solution's result). Stored figures larger than 20 kB are left out (students draw them by running the
cell); everything else is kept. The marker patterns live in `text_recognizer.exercises`, which also keeps them out
of the exported package.

    python setup/student_notebooks.py          # write lab1..lab4
    python setup/student_notebooks.py --check  # exit 1 and list the notebooks that are out of date
"""
import argparse, copy, json, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = ROOT / "solutions"
sys.path.insert(0, str(ROOT / "shared"))  # the package, also where it is not installed
from text_recognizer.exercises import BEGIN, END  # noqa: E402
DEFAULT_HINT = "write this part yourself (see the text above)"


def strip_solutions(source: str) -> tuple[str, int]:
    "Replace every solution region in `source` by a stub; return the new source and how many regions there were."
    out, n, region = [], 0, None
    for number, line in enumerate(source.splitlines(keepends=True), 1):
        if region is None and (m := BEGIN.match(line)):
            region, n = m, n + 1
            hint, name = m["hint"] or DEFAULT_HINT, f"Exercise {m['id']}" if m["id"] else "Exercise"
            check = " — checked by the next cell" if m["id"] else ""
            out.append(f"{m['indent']}# YOUR CODE HERE ({name}): {hint}\n")
            out.append(f"{m['indent']}raise NotImplementedError({f'{name}: {hint}{check}'!r})\n")
        elif region is not None and END.match(line):
            region = None
        elif region is not None and BEGIN.match(line):
            raise ValueError(f"line {number}: a solution region opens inside another one")
        elif region is None and END.match(line):
            raise ValueError(f"line {number}: '### END SOLUTION' without a matching BEGIN")
        elif region is None:
            out.append(line)
    if region is not None:
        raise ValueError("a '### BEGIN SOLUTION' region is never closed")
    return "".join(out), n


def _source(cell) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


MAX_STUDENT_IMAGE = 20_000  # characters of base64: larger stored figures are left out of student copies


def drop_large_images(outputs: list) -> None:
    "Leave out stored images larger than MAX_STUDENT_IMAGE (their text, e.g. '<Figure size ...>', stays), in place."
    for out in outputs:
        data = out.get("data", {})
        for kind in [k for k in data if k.startswith("image/")]:
            if len("".join(data[kind]) if isinstance(data[kind], list) else data[kind]) > MAX_STUDENT_IMAGE:
                del data[kind]
                data.setdefault("text/plain", ["<figure left out of the student copy: run the cell to draw it>"])


def student_version(nb: dict) -> dict:
    "Return the student version of the solution notebook `nb`."
    nb = copy.deepcopy(nb)
    for cell in nb["cells"]:
        if cell["cell_type"] != "code":
            continue
        drop_large_images(cell.get("outputs", []))
        source, n = strip_solutions(_source(cell))
        if n:
            cell["source"] = source.splitlines(keepends=True)
            cell["outputs"], cell["execution_count"] = [], None
    return nb


def render(nb: dict) -> str:
    "Serialise like nbdev's cleaner, so student notebooks are as clean as the solutions."
    return json.dumps(nb, sort_keys=True, indent=1, ensure_ascii=False) + "\n"


def pairs():
    "Yield (solution notebook, student notebook) paths."
    for sol in sorted(SOLUTIONS.glob("lab*/*.ipynb")):
        if not sol.name.startswith((".", "_")):
            yield sol, ROOT / sol.parent.name / sol.name


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="only report student notebooks that are out of date")
    args = parser.parse_args(argv)
    stale, expected = [], set()
    for sol, student in pairs():
        expected.add(student)
        text = render(student_version(json.loads(sol.read_text(encoding="utf-8"))))
        current = student.read_text(encoding="utf-8") if student.exists() else None
        if text == current:
            continue
        stale.append(student)
        if not args.check:
            student.parent.mkdir(exist_ok=True)
            student.write_text(text, encoding="utf-8")
    orphans = [p for p in sorted(ROOT.glob("lab*/*.ipynb")) if p not in expected]
    for p in stale:
        print(f"{'out of date' if args.check else 'wrote'}: {p.relative_to(ROOT)}")
    for p in orphans:
        print(f"no solution notebook for: {p.relative_to(ROOT)}")
    if args.check and (stale or orphans):
        print("Run `python setup/student_notebooks.py` to regenerate the student notebooks.", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
