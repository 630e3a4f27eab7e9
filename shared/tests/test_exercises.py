"""Exercises as a product: every notebook has checked exercises, and a blank exercise breaks only its own check.

The structure tests read the solution notebooks. `test_blank_student_notebook_fails_only_its_checks` executes every
student notebook (lab1..lab4) with its exercises left blank, at the CI size, and asserts exactly which cells fail:
the check cells, the exercise cells whose gap is at the top level of the cell, and the cells marked
`# needs Exercise <id>`; every check fails with an ExerciseError naming its exercise.
"""
import json, re
from pathlib import Path

import nbformat
import pytest

from test_pipeline import code_cells  # sources of a notebook's code cells
from text_recognizer.exercises import BEGIN, PASSED, ExerciseError, check, solved

ROOT = Path(__file__).resolve().parents[2]
SOLUTIONS = sorted(p for p in (ROOT / "solutions").glob("lab*/[0-9]*.ipynb"))
CHECK_CALL = re.compile(r'\bcheck\(\s*"(?P<id>[^"]+)"')
NEEDS = re.compile(r"^# needs Exercise (?P<id>\S+)", re.M)
MAX_EXERCISE_LINES = 30


def notebook_prefix(path: Path) -> str:
    "The exercise-id prefix of a notebook: solutions/lab3/01b_line_normalization.ipynb -> '3.1b.'"
    number = re.match(r"(\d+)([a-z]?)_", path.name)
    return f"{path.parent.name.removeprefix('lab')}.{int(number[1])}{number[2]}."


def exercise_regions(source: str) -> list[tuple[str, bool]]:
    "(id, at top level) of each solution region in a cell's source."
    return [(m["id"], m["indent"] == "") for m in map(BEGIN.match, source.splitlines()) if m]


def expected_failures(cells: list[str]) -> dict[int, str]:
    "{code cell index: why it must fail} for a notebook with blank exercises."
    out, ids = {}, {eid for source in cells for eid, _ in exercise_regions(source)}
    for i, source in enumerate(cells):
        if any(top for _, top in exercise_regions(source)):
            out[i] = "exercise"
        if (m := CHECK_CALL.search(source)) and m["id"] in ids:
            out[i] = f"check {m['id']}"
        if m := NEEDS.search(source):
            out[i] = f"needs {m['id']}"
    return out


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_every_notebook_has_checked_exercises(path):
    cells, prefix = code_cells(path), notebook_prefix(path)
    ids = [eid for source in cells for eid, _ in exercise_regions(source)]
    assert ids, f"{path.name} has no exercise (### BEGIN SOLUTION {prefix}1: ...)"
    assert len(ids) == len(set(ids)), f"exercise ids repeat in {path.name}: {ids}"
    for i, source in enumerate(cells):
        regions = exercise_regions(source)
        if not regions:
            continue
        for eid, _ in regions:
            assert eid and eid.startswith(prefix), f"{path.name}: exercise id {eid!r} should start with {prefix!r}"
            checked = [CHECK_CALL.search(s)["id"] for s in cells[i + 1:i + 3] if CHECK_CALL.search(s)]
            assert eid in checked, f"{path.name}: exercise {eid} is not checked by the cell after it"
        assert len(source.splitlines()) <= MAX_EXERCISE_LINES, f"{path.name}: exercise {regions} sits in a long cell"
    prose = [c for c in json.loads(path.read_text(encoding="utf-8"))["cells"] if c["cell_type"] == "markdown"]
    closing = [c for c in prose if "".join(c["source"]).startswith("## Exercises")]
    assert closing and all(eid in "".join(closing[-1]["source"]) for eid in ids), \
        f"{path.name} needs a closing '## Exercises' section listing {ids} and stretch tasks"


def test_check_explains_what_is_wrong():
    PASSED.clear()
    with pytest.raises(ExerciseError, match=r"(?s)Exercise 9\.9\.1: 1 of 2 checks failed.*sum: expected 3, got 4.*Hint: add"):
        check("9.9.1", {"sum": (lambda: 2 + 2, 3), "one": (1, 1)}, hint="add")
    assert "9.9.1" not in PASSED
    def blank():
        raise NotImplementedError("Exercise 9.9.2: add — checked by the next cell")
    with pytest.raises(ExerciseError, match="Exercise 9.9.2 is not done yet"):
        check("9.9.2", {"sum": (blank, 3)}, hint="add")
    check("9.9.1", {"sum": (lambda: 1 + 2, 3)})
    assert "9.9.1" in PASSED and solved("9.9.1", "mine", "package") == "mine"
    assert solved("9.9.2", "mine", "package") == "package"


def test_expected_failures_reads_the_markers():
    cells = ["x = 1", "def f():\n    ### BEGIN SOLUTION 1.1.1: hint\n    pass\n    ### END SOLUTION",
             'check("1.1.1", {})', "### BEGIN SOLUTION 1.1.2: hint\ny = 2\n### END SOLUTION", 'check("1.1.2", {})',
             "# needs Exercise 1.1.2\nprint(y)", "print(x)"]
    assert expected_failures(cells) == {2: "check 1.1.1", 3: "exercise", 4: "check 1.1.2", 5: "needs 1.1.2"}


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_blank_student_notebook_fails_only_its_checks(path):
    from nbclient import NotebookClient
    student = ROOT / path.parent.name / path.name
    nb = nbformat.read(student, as_version=4)
    client = NotebookClient(nb, timeout=1800, kernel_name="python3", allow_errors=True,
                            resources={"metadata": {"path": str(student.parent)}})
    client.execute()
    code = [c for c in nb.cells if c.cell_type == "code"]
    errors = {i: next(o for o in c.outputs if o.output_type == "error") for i, c in enumerate(code)
              if any(o.output_type == "error" for o in c.outputs)}
    expected = expected_failures(code_cells(path))  # the solution's cells, one for one with the student's
    unexpected = {i: f"{errors[i].ename}: {errors[i].evalue[:200]}\n{code[i].source[:200]}" for i in errors if i not in expected}
    assert not unexpected, f"{student.name}: cells fail that do not depend on a blank exercise: {unexpected}"
    assert sorted(errors) == sorted(expected), f"{student.name}: these cells should fail but ran: " \
        f"{ {i: expected[i] for i in expected if i not in errors} }"
    for i, why in expected.items():
        if why.startswith("check"):
            assert errors[i].ename == "ExerciseError" and why.split()[1] in errors[i].evalue, \
                f"{student.name}: check cell {i} failed with {errors[i].ename}: {errors[i].evalue[:200]}"
