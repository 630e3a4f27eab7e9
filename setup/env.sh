# Environment shared by setup/start and setup/test (sourced, not run).
export PATH="$PWD/.venv/bin:$PATH"
export WANDB_MODE="${WANDB_MODE:-offline}"   # no account, no network; `wandb sync wandb/offline-run-*` later
export WANDB_DIR="${WANDB_DIR:-$PWD}"
export WANDB_SILENT=true
export TF_CPP_MIN_LOG_LEVEL=3
export PYTHONHASHSEED=0
