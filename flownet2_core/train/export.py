"""Weights for shipping: float16 copies of a checkpoint, whole or in shards.

A float16 copy halves the file (FlowNet2-css at width 3/8: 16.4 M parameters,
about 33 MB) at no measurable cost in flow accuracy for these networks (the
weights' relative precision, 2^-11, is far below what training resolves).
Loaders cast back to float32. Shards exist because some transfers cap the file
size: each shard is a checkpoint dict holding some of the tensors plus the
metadata, and :func:`join_shards` rebuilds the whole.
"""

from __future__ import annotations

import collections
import os
from pathlib import Path

import torch

from ..io import atomic_output
from ..models.checkpoint import read_checkpoint

__all__ = ["export_half", "join_shards"]


def _half(t: torch.Tensor) -> torch.Tensor:
    return t.half() if t.is_floating_point() else t


def export_half(checkpoint: str | os.PathLike, prefix: str | os.PathLike,
                shard_mb: float | None = None) -> list[Path]:
    """Write ``checkpoint`` in float16 as ``<prefix>.pth`` or ``<prefix>.part<K>of<N>.pth``.

    Tensors keep their order; shards hold whole tensors, each shard at most
    ``shard_mb`` megabytes of tensor data (a tensor larger than that gets a shard
    of its own). Returns the files written.
    """
    ckpt = read_checkpoint(checkpoint)
    sd = collections.OrderedDict((k, _half(v)) for k, v in ckpt["state_dict"].items())
    meta = {k: v for k, v in ckpt.items() if k != "state_dict"}
    prefix = Path(prefix)
    groups: list[list[str]] = [[]]
    limit = None if shard_mb is None else shard_mb * 1e6
    size = 0
    for k, v in sd.items():
        n = v.numel() * v.element_size()
        if limit is not None and groups[-1] and size + n > limit:
            groups.append([])
            size = 0
        groups[-1].append(k)
        size += n
    paths = []
    for i, keys in enumerate(groups):
        name = f"{prefix.name}.pth" if len(groups) == 1 else f"{prefix.name}.part{i + 1}of{len(groups)}.pth"
        path = prefix.with_name(name)
        obj = dict(meta, state_dict=collections.OrderedDict((k, sd[k]) for k in keys),
                   shard=[i + 1, len(groups)])
        with atomic_output(path) as tmp:
            torch.save(obj, tmp)
        paths.append(path)
    return paths


def join_shards(paths: list[str | os.PathLike]) -> dict:
    """One checkpoint dict (float16 tensors) from the shards :func:`export_half` wrote."""
    parts = [read_checkpoint(p) for p in paths]
    n = {tuple(p.get("shard", (1, 1)))[1] for p in parts}
    got = sorted(tuple(p.get("shard", (1, 1)))[0] for p in parts)
    if len(n) != 1 or got != list(range(1, next(iter(n)) + 1)):
        raise ValueError(f"shards {[os.fspath(p) for p in paths]} are not one complete set "
                         f"(have parts {got} of {sorted(n)})")
    parts.sort(key=lambda p: p["shard"][0])
    sd = collections.OrderedDict()
    for p in parts:
        sd.update(p["state_dict"])
    out = {k: v for k, v in parts[0].items() if k not in ("state_dict", "shard")}
    out["state_dict"] = sd
    return out


def main(argv: list[str] | None = None) -> int:
    """``python -m flownet2_core.train.export CHECKPOINT_OR_SHARDS… -o OUT.pth``: one float16 file."""
    import argparse

    p = argparse.ArgumentParser(description=main.__doc__)
    p.add_argument("inputs", nargs="+", help="a checkpoint, or every shard of one")
    p.add_argument("-o", "--out", required=True)
    args = p.parse_args(argv)
    if len(args.inputs) == 1 and "shard" not in read_checkpoint(args.inputs[0]):
        export_half(args.inputs[0], Path(args.out).with_suffix(""))
        return 0
    obj = join_shards(args.inputs)
    with atomic_output(args.out) as tmp:
        torch.save(obj, tmp)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
