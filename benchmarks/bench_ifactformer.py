"""IFactFormer-m / -o of this package against the published IFactFormer-m code, in one run.

The paper configuration (dim 96, 5 heads, dim_head 96, kernel multiplier 3, 10 loops; 1,163,187
trainable weights for IFactFormer-m in both codes) on 32 x 33 x 16 cells, float32, batch
``--batch``: forward time (no gradient), forward + backward time and the peak resident memory the
forward + backward adds (Linux ``VmHWM`` reset through ``/proc/self/clear_refs``), each model in a
fresh process, median of ``--repeats`` calls after a warm-up. The published code is not part of
this package: give a checkout of it (github huiyu-2002/IFactFormer-m; it needs ``einops``; an axis length that newer einops refuses is dropped
from one of its layers) with
``--published``, else only this package's models are timed. ``--amp`` times every model, the
published one included, under bfloat16 autocast (``training.amp: bf16``). ``--floor`` also times
the matrix products of IFactFormer-m's ten blocks alone, with their shapes and nothing else: the
time a forward could take on this CPU if it did only its unavoidable arithmetic at the rate torch's
matrix products reach (a forward + backward does each product three times).

    python benchmarks/bench_ifactformer.py --published /path/to/IFactFormer-m
    OMP_NUM_THREADS=1 python benchmarks/bench_ifactformer.py --published /path/to/IFactFormer-m --threads 1
    python benchmarks/bench_ifactformer.py --published /path/to/IFactFormer-m --amp
    python benchmarks/bench_ifactformer.py --floor --models ifactformer_m
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import sys
from contextlib import nullcontext
from pathlib import Path
from queue import Empty
from types import SimpleNamespace

import torch

from surrogate.grid import ChannelGrid
from surrogate.models import build_model, count_parameters
from timing import median_seconds, status_kib

GRID = ChannelGrid(32, 33, 16, lx=4 * math.pi, lz=4 * math.pi / 3, stretching=2.0)
PAPER = dict(in_dim=3, out_dim=3, in_time_window=1, dim=96, heads=5, depth=1, dim_head=96, n_layer=10)


def _published(path: Path, batch: int):
    """The published IFactFormer-m, its input ``(batch, 1, nx, ny, nz, 3)`` and coordinates."""
    import einops.layers.torch as layers  # noqa: PLC0415

    class Rearrange(layers.Rearrange):  # einops >= 0.6 refuses the unused axis length the code passes
        def __init__(self, pattern: str, **lengths: int) -> None:
            super().__init__(pattern, **{axis: n for axis, n in lengths.items() if axis in pattern.split()})

    layers.Rearrange = Rearrange
    sys.path.insert(0, str(path))
    from libs.model import Model  # noqa: PLC0415  (the published code, from --published)

    model = Model(SimpleNamespace(**PAPER, model="IFactFormer_m"))
    x = torch.randn(batch, 1, *GRID.shape, 3)
    pos = [torch.as_tensor(getattr(GRID, a), dtype=torch.float32)[:, None] for a in "xyz"]
    return model, (x, pos)


def _ours(name: str, batch: int):
    model = build_model(name, "paper")
    x = torch.randn(batch, 1, 3, *GRID.shape)
    coords = {a: torch.as_tensor(getattr(GRID, a), dtype=torch.float32) for a in "xyz"}
    return model, (x, coords)


def measure(label: str, published: str | None, batch: int, threads: int, repeats: int, amp: bool, queue) -> None:
    """Time one model in this (fresh) process and put the figures on ``queue``."""
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model, inputs = _published(Path(published), batch) if label == "published" else _ours(label, batch)
    Path("/proc/self/clear_refs").write_text("5")
    before = status_kib("VmRSS")

    autocast = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if amp else nullcontext

    def forward_backward() -> None:
        model.zero_grad(set_to_none=True)
        with autocast():
            out = model(*inputs)
        out.float().square().mean().backward()

    def forward() -> None:
        with torch.no_grad(), autocast():
            model(*inputs)

    t_backward = median_seconds(forward_backward, torch.device("cpu"), repeats)
    peak = (status_kib("VmHWM") - before) / 1024
    queue.put((count_parameters(model), median_seconds(forward, torch.device("cpu"), repeats), t_backward, peak))


def matmul_floor(batch: int, repeats: int) -> tuple[float, float]:
    """(seconds, GMAC) of the matrix products of IFactFormer-m's forward in the paper configuration
    alone: per block the values (96 -> 480 channels), the first and second output layers (1,440 -> 96,
    96 -> 96) and each head's axis kernel along x, y and z, as contiguous (batched) products."""
    dim, heads, dim_head, loops = PAPER["dim"], PAPER["heads"], PAPER["dim_head"], PAPER["n_layer"]
    nx, ny, nz = GRID.shape
    points = batch * nx * ny * nz
    dense = [(points, dim, heads * dim_head), (points, 3 * heads * dim_head, dim), (points, dim, dim)]
    axis = [  # (batched products, rows = axis length, columns = the other axes times dim_head)
        (batch * heads, nx, ny * nz * dim_head),
        (batch * heads * nx, ny, nz * dim_head),
        (batch * heads * nx * ny, nz, dim_head),
    ]
    operands = [(torch.randn(m, k), torch.randn(k, n)) for m, k, n in dense]
    operands += [(torch.randn(b, n, n), torch.randn(b, n, c)) for b, n, c in axis]
    macs = sum(m * k * n for m, k, n in dense) + sum(b * n * n * c for b, n, c in axis)

    def products() -> None:
        for a, b in operands:
            torch.matmul(a, b)

    return loops * median_seconds(products, torch.device("cpu"), repeats), loops * macs / 1e9


def _result(queue, process, label: str) -> tuple:
    """The figures a measuring process puts on ``queue``; exits with its name if it dies first."""
    while True:
        try:
            return queue.get(timeout=5.0)
        except Empty:
            if not process.is_alive():
                raise SystemExit(f"{label}: the measuring process ended without figures (exit code {process.exitcode})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--published", type=Path, help="checkout of the published IFactFormer-m code")
    parser.add_argument("--models", nargs="+", default=["ifactformer_m", "ifactformer_o"])
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--amp", action="store_true", help="every model under bfloat16 autocast")
    parser.add_argument("--floor", action="store_true", help="also time IFactFormer-m's matrix products alone")
    args = parser.parse_args()
    labels = (["published"] if args.published else []) + args.models
    print(f"torch {torch.__version__}, {args.threads} threads, {'bf16 autocast' if args.amp else 'float32'}, batch {args.batch}, grid "
          f"{GRID.nx}x{GRID.ny}x{GRID.nz}, paper configuration")
    print(f"{'model':>16} {'parameters':>11} {'forward [s]':>12} {'fwd+bwd [s]':>12} {'peak [MiB]':>11} "
          f"{'fwd vs published':>17} {'fwd+bwd vs published':>21}")
    context = multiprocessing.get_context("spawn")
    baseline = None
    for label in labels:
        queue = context.Queue()
        process = context.Process(
            target=measure, args=(label, str(args.published), args.batch, args.threads, args.repeats, args.amp, queue)
        )
        process.start()
        params, forward, backward, peak = _result(queue, process, label)
        process.join()
        baseline = baseline or ((forward, backward) if label == "published" else None)
        ratios = (f"{baseline[0] / forward:16.2f}x {baseline[1] / backward:20.2f}x" if baseline
                  else f"{'-':>17} {'-':>21}")
        print(f"{label:>16} {params:>11,} {forward:12.3f} {backward:12.3f} {peak:11.0f} {ratios}", flush=True)
    if args.floor:
        torch.set_num_threads(args.threads)
        seconds, gmac = matmul_floor(args.batch, args.repeats)
        print(f"IFactFormer-m's matrix products alone ({gmac:.1f} GMAC, {2 * gmac / seconds:.0f} GFLOP/s): forward "
              f"{seconds:.3f} s, fwd+bwd {3 * seconds:.3f} s" + (
                  f"; at most {baseline[0] / seconds:.2f}x / {baseline[1] / (3 * seconds):.2f}x the published code" if baseline else ""))


if __name__ == "__main__":
    main()
