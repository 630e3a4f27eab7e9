"""The serving images (setup/serving/Dockerfile for gunicorn, Dockerfile.lambda for AWS Lambda) and the SAM template,
checked without a Docker engine: what they copy and install, and that those files alone serve predictions."""
import json, re, shlex, shutil, subprocess, sys
from fnmatch import fnmatch
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SERVING = ROOT / "setup" / "serving"
REQUIREMENTS = ROOT / "setup" / "serving-requirements.txt"
PACKAGE = ROOT / "shared" / "text_recognizer"
DOCKERFILES = {"gunicorn": SERVING / "Dockerfile", "lambda": SERVING / "Dockerfile.lambda"}
TRAINING = re.compile(r"tensorflow|keras|tf2onnx|\btf-|jax|torch", re.IGNORECASE)


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    "(INSTRUCTION, arguments) pairs of a Dockerfile, continuation lines joined, comments dropped."
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    pairs = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, args = line.partition(" ")
            pairs.append((keyword.upper(), " ".join(args.split())))
    return pairs


def copy_sources(dockerfile: Path) -> list[str]:
    "The build-context paths the Dockerfile COPYs."
    sources = []
    for keyword, args in instructions(dockerfile):
        if keyword in ("COPY", "ADD"):
            assert keyword == "COPY", "use COPY, not ADD (no remote URLs or archives)"
            words = [w for w in shlex.split(args) if not w.startswith("--")]
            sources += words[:-1]
    return sources


def expand(source: str) -> list[Path]:
    "The files a COPY source names: a file, every file under a folder, or the matches of a glob."
    path = ROOT / source
    if path.is_file():
        return [path]
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.is_file())
    return sorted(ROOT.glob(source))


def copied_modules(dockerfile: Path) -> set[str]:
    "Dotted names (inside the package) of the modules the Dockerfile copies, as files or in folders."
    files = [p for s in copy_sources(dockerfile) if s.startswith("shared/text_recognizer/") for p in expand(s)]
    return {p.relative_to(PACKAGE).with_suffix("").as_posix().replace("/", ".") for p in files if p.suffix == ".py"}


def pinned(path: Path) -> dict[str, str]:
    lines = [l.split("#")[0].strip() for l in path.read_text().splitlines()]
    return dict(l.lower().split("==") for l in lines if l)


@pytest.mark.parametrize("kind", DOCKERFILES)
def test_the_image_installs_only_the_serving_requirements(kind):
    dockerfile = DOCKERFILES[kind]
    steps = instructions(dockerfile)
    base = steps[0]
    assert base[0] == "FROM"
    assert base[1] == ("python:3.11-slim" if kind == "gunicorn" else "public.ecr.aws/lambda/python:3.11")
    runs = " && ".join(args for keyword, args in steps if keyword == "RUN")
    installs = [i.strip() for i in re.findall(r"pip install ([^&]*)", runs)]
    assert installs == ["--no-cache-dir -r /tmp/serving-requirements.txt"], installs
    assert "setup/serving-requirements.txt" in copy_sources(dockerfile)
    assert not TRAINING.search(" ".join(args for _, args in steps)), "no training frameworks in the serving image"


def test_serving_requirements_are_minimal_and_pinned_to_the_lockfile():
    requirements = pinned(REQUIREMENTS)
    assert {"onnxruntime", "numpy", "pillow", "flask", "gunicorn"} <= requirements.keys()
    assert not [name for name in requirements if TRAINING.search(name)]
    lock = json.loads((ROOT / "Pipfile.lock").read_text())["default"]
    for name, version in requirements.items():
        assert name in lock, f"{name} is not in Pipfile.lock"
        assert lock[name]["version"] == f"=={version}", (name, version, lock[name]["version"])


@pytest.mark.parametrize("kind", DOCKERFILES)
def test_the_image_copies_only_serving_files(kind):
    dockerfile = DOCKERFILES[kind]
    sources = copy_sources(dockerfile)
    allowed = ("setup/serving-requirements.txt", "shared/text_recognizer/weights/*.onnx",
               "shared/text_recognizer/weights/*.json", "shared/text_recognizer/weights/*.npz",
               "shared/text_recognizer/static/")
    for source in sources:
        assert source in allowed or re.fullmatch(r"shared/text_recognizer/(\w+\.py|inference/|serving/)", source), source
        assert expand(source), f"{dockerfile.name} copies {source}, which matches no file"
    modules = copied_modules(dockerfile)
    assert {"__init__", "metadata", "service", "inference.character", "inference.paragraph", "serving.app"} <= modules
    assert not [m for m in modules if m.split(".")[0] in ("data", "networks", "models", "training")], "training code copied"
    for module in modules:
        text = (PACKAGE / f"{module.replace('.', '/')}.py").read_text()
        assert not re.search(r"^(import|from)\s+(tensorflow|keras)\b", text, re.M), f"{module}.py imports TF at the top"


@pytest.mark.parametrize("kind", DOCKERFILES)
def test_the_build_context_allowlist_lets_the_copied_files_in(kind):
    "BuildKit reads <Dockerfile>.dockerignore: everything is ignored except what the image copies."
    dockerfile = DOCKERFILES[kind]
    patterns = [l.strip() for l in dockerfile.with_name(dockerfile.name + ".dockerignore").read_text().splitlines()
                if l.strip() and not l.startswith("#")]
    assert patterns[0] == "*", "ignore everything by default: the repository root holds .venv/ and data/"

    def included(path: str) -> bool:
        keep = True
        for pattern in patterns:
            negated, pattern = pattern.startswith("!"), pattern.lstrip("!").rstrip("/")
            if fnmatch(path, pattern) or path.startswith(pattern + "/"):
                keep = negated
        return keep

    for source in copy_sources(dockerfile):
        files = [str(p.relative_to(ROOT)) for p in expand(source)]
        assert all(included(f) for f in files), (source, [f for f in files if not included(f)])
    assert not included(".venv/bin/python") and not included("data/emnist/sample.npz")
    assert not included("shared/text_recognizer/weights/line_model.keras"), "training weights stay out"


def test_the_gunicorn_image_runs_the_app_factory():
    steps = dict(instructions(DOCKERFILES["gunicorn"]))
    assert "gunicorn" in steps["CMD"] and '"text_recognizer.serving.app:create_app()"' in steps["CMD"]
    assert "0.0.0.0:${PORT}" in steps["CMD"] and steps["USER"] == "app" and "EXPOSE" in steps
    assert "PYTHONPATH=/app" in steps["ENV"]


def test_the_lambda_image_and_template_name_the_handler():
    steps = dict(instructions(DOCKERFILES["lambda"]))
    assert json.loads(steps["CMD"]) == ["text_recognizer.serving.app.lambda_handler"]
    from text_recognizer.serving import app as service
    assert callable(service.lambda_handler)
    template = yaml.safe_load((SERVING / "template.yaml").read_text())
    assert template["Transform"] == "AWS::Serverless-2016-10-31"
    function = template["Resources"]["TextRecognizerFunction"]
    assert function["Type"] == "AWS::Serverless::Function" and function["Properties"]["PackageType"] == "Image"
    context = (SERVING / function["Metadata"]["DockerContext"]).resolve()
    assert context == ROOT and (context / function["Metadata"]["Dockerfile"]) == DOCKERFILES["lambda"]
    paths = {event["Properties"]["Path"] for event in function["Properties"]["Events"].values()}
    assert paths == {"/", "/{proxy+}"}


def test_the_copied_files_alone_serve_a_prediction_without_tensorflow(tmp_path):
    "Lay out the image's /app from the Dockerfile's COPY lines and serve a request from there, TF unimportable."
    app_dir = tmp_path / "app" / "text_recognizer"
    package = ROOT / "shared" / "text_recognizer"
    for source in copy_sources(DOCKERFILES["gunicorn"]):
        for path in expand(source):
            if path.is_relative_to(package):
                target = app_dir / path.relative_to(package)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(path, target)
    script = """
import base64, io, sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("tensorflow", "keras", "tf2onnx"):
            raise ImportError("blocked: " + name)
sys.meta_path.insert(0, Block())
import text_recognizer
assert text_recognizer.__file__.startswith(sys.argv[1]), text_recognizer.__file__
from PIL import Image, ImageDraw, ImageFont
from text_recognizer.serving.app import create_app
page = Image.new("L", (500, 120), 255)
ImageDraw.Draw(page).text((30, 30), "hello there", fill=0, font=ImageFont.load_default(size=40))
buffer = io.BytesIO(); page.save(buffer, format="PNG")
client = create_app().test_client()
response = client.post("/v1/predict", json={"image": base64.b64encode(buffer.getvalue()).decode()})
assert response.status_code == 200, response.get_json()
assert client.get("/").status_code == 200
print(sorted(m for m in sys.modules if m.startswith("text_recognizer")))
"""
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path / "app")], capture_output=True, text=True,
                          cwd=tmp_path, env={"PYTHONPATH": str(tmp_path / "app"), "PATH": "/usr/bin:/bin"},
                          timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
