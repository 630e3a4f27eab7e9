"""Settings for every pytest run in the repository (package tests and nbval notebooks)."""
import os
import shutil
import tempfile


def pytest_configure(config):
    "W&B runs of tests and CI-size notebook runs go to a temporary folder, not into the repository's wandb/."
    if os.environ.get("TR_KEEP_WANDB_RUNS") != "1":
        config._tr_wandb_dir = tempfile.mkdtemp(prefix="tr-wandb-")
        os.environ["WANDB_DIR"] = config._tr_wandb_dir


def pytest_unconfigure(config):
    "Remove the session's temporary W&B folder."
    if getattr(config, "_tr_wandb_dir", None):
        shutil.rmtree(config._tr_wandb_dir, ignore_errors=True)
