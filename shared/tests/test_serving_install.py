"The serving install (setup/serving-requirements.txt) is a small fraction of the full environment."
import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("serving_install_size", ROOT / "shared/benchmarks/serving_install_size.py")
serving_install_size = importlib.util.module_from_spec(spec)
spec.loader.exec_module(serving_install_size)


def test_requirement_names(tmp_path):
    path = tmp_path / "r.txt"
    path.write_text("# comment\nonnxruntime==1.2  # pinned\n\n-r other.txt\nflask>=3\nPillow[extra]==1\n")
    assert serving_install_size.requirement_names(path) == ["onnxruntime", "flask", "Pillow"]


def test_serving_install_is_at_most_a_fifth_of_the_full_environment():
    sizes = serving_install_size.install_sizes()
    assert sizes["missing"] == []
    assert {"onnxruntime", "numpy", "pillow", "flask", "gunicorn"} <= sizes["packages"].keys()
    assert not {"tensorflow", "keras", "tf2onnx", "scipy"} & sizes["packages"].keys()
    assert sizes["packages"]["onnxruntime"] > 1e6 and sizes["full"] > sizes["serving"]
    assert sizes["serving"] <= sizes["full"] / 5, sizes
