# Environment shared by setup/start and setup/test (sourced, not run).
export PATH="$PWD/.venv/bin:$PATH"
export WANDB_MODE="${WANDB_MODE:-offline}"   # no account, no network; `wandb sync wandb/offline-run-*` later
export WANDB_DIR="${WANDB_DIR:-$PWD}"
export WANDB_SILENT=true
export TF_CPP_MIN_LOG_LEVEL=3
export PYTHONHASHSEED=0
# The labs' kernel (setup/jupyter/kernels/python3): native C++ output (TensorFlow's start-up logs, which ignore
# TF_CPP_MIN_LOG_LEVEL) goes to the terminal that runs Jupyter, not into notebook outputs.
export JUPYTER_PATH="$PWD/setup/jupyter${JUPYTER_PATH:+:$JUPYTER_PATH}"
