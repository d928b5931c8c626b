#!/usr/bin/env bash
# The GPU checks in one run (a few minutes on one GPU): the CUDA tests, then the solver, LES, model
# and rollout benchmarks on the device and one epoch of the paper-size IFactFormer-m training.
# Run from the repository root on a machine with CUDA and the package's dependencies:
#     bash benchmarks/gpu_checks.sh [OUT_FOLDER]
# Every step has its own time limit, so one slow step does not cost the rest; each step's output
# goes to OUT_FOLDER/<step>.log (default: gpu_checks/) and a summary of exit codes is printed last.
set -u
out="${1:-gpu_checks}"
mkdir -p "$out"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
status=()

step() {  # step NAME SECONDS COMMAND...
    local name=$1 limit=$2
    shift 2
    local start=$SECONDS
    echo "=== $name (limit ${limit} s)"
    timeout "$limit" "$@" >"$out/$name.log" 2>&1
    local rc=$?
    tail -n 25 "$out/$name.log"
    status+=("$name rc=$rc $((SECONDS - start)) s")
}

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/gpu.txt"
python3 -c "import torch, xarray, numpy; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'xarray', xarray.__version__, 'numpy', numpy.__version__)" | tee -a "$out/gpu.txt"

step tests 110 python3 -m pytest -q -p no:cacheprovider tests/test_cuda.py \
    tests/test_models_ifactformer.py tests/test_models_fno.py tests/test_models_encoders.py -k "cuda"
step bench_models 90 python3 benchmarks/bench_models.py --device cuda --presets paper cpu --repeats 10
train="${TMPDIR:-/tmp}/gpu_checks_train"
step train_paper 110 bash -c "python3 -c 'from surrogate.cli import main; main()' train cases/train_re180_ifactformer_m_rollout.yaml \
    model.preset=paper training.device=cuda training.epochs=2 'output=$train/{name}' --overwrite --quiet && cat $train/*/metrics.csv"
step bench_rollout 90 python3 benchmarks/bench_rollout.py --device cuda --steps 500
step bench_solver 60 python3 benchmarks/bench_solver.py --device cuda --dtype float32 --sizes 64 128 256
step bench_les 40 python3 benchmarks/bench_les.py --device cuda --dtype float32

echo "=== summary"
printf '%s\n' "${status[@]}" | tee "$out/summary.txt"
