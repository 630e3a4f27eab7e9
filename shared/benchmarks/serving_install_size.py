"""Installed size of the serving requirements against the full environment (the running interpreter's packages).

    python shared/benchmarks/serving_install_size.py

Sizes are summed from each installed distribution's file list (its RECORD), so no second environment is needed:
the serving set is every package named in setup/serving-requirements.txt; the full set is every installed package.
"""
import re, sys
from importlib import metadata
from pathlib import Path

REQUIREMENTS = Path(__file__).resolve().parents[2] / "setup" / "serving-requirements.txt"


def requirement_names(path=REQUIREMENTS) -> list[str]:
    "Package names of a requirements file (pins, comments and options ignored)."
    names = []
    for line in Path(path).read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            names.append(re.split(r"[<>=!~;\[ ]", line, maxsplit=1)[0])
    return names


def distribution_bytes(dist) -> int:
    "Bytes of the files an installed distribution lists (sizes from its RECORD; files without one are measured)."
    total = 0
    for file in dist.files or []:
        if file.size is not None:
            total += file.size
        elif (path := Path(dist.locate_file(file))).is_file():
            total += path.stat().st_size
    return total


def install_sizes(path=REQUIREMENTS) -> dict:
    "{'serving': bytes, 'full': bytes, 'packages': {name: bytes}, 'missing': [...]} in this environment."
    normal = lambda name: re.sub(r"[-_.]+", "-", name).lower()
    installed = {normal(d.metadata["Name"]): d for d in metadata.distributions() if d.metadata["Name"]}
    wanted = [normal(n) for n in requirement_names(path)]
    packages = {n: distribution_bytes(installed[n]) for n in wanted if n in installed}
    full = sum(distribution_bytes(d) for d in installed.values())
    return {"serving": sum(packages.values()), "full": full, "packages": packages,
            "missing": [n for n in wanted if n not in installed]}


def main() -> int:
    sizes = install_sizes()
    for name, size in sorted(sizes["packages"].items(), key=lambda kv: -kv[1]):
        print(f"{name:20} {size / 1e6:8.1f} MB")
    print(f"serving install {sizes['serving'] / 1e6:.0f} MB, full environment {sizes['full'] / 1e6:.0f} MB: "
          f"{sizes['serving'] / sizes['full']:.1%} (target ≤ 20 %)")
    if sizes["missing"]:
        print("not installed here:", ", ".join(sizes["missing"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
