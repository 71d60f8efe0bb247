"""Where a training stage's batches come from: synthetic kinds, datasets on disk, mixtures.

A data spec names sources with their share of every batch::

    "chairs"                 # synthetic FlyingChairs-like pairs
    "things:2,sdhom:6"       # 2 Things-like + 6 SDHom-like per 8 (the paper's ft-sd mix)
    "flyingchairs"           # a dataset on disk; its root in StageConfig.roots

A name given a root (``StageConfig.roots``, ``--root NAME=PATH``) is a dataset
of :mod:`flownet2_core.data` read from there (``chairs`` with a root is
FlyingChairs itself); any other name must be a synthetic kind of
:data:`~.synthetic.KINDS`. Batch ``i`` is a pure
function of (seed, i): synthetic batches are generated from it, dataset
samples follow a seeded permutation per epoch. Each batch is loaded at ``size``,
transformed by FlowNet's geometric augmentation into ``crop`` and recoloured
by its photometric augmentation; fresh synthetic pairs are rendered straight
into the drawn transforms (the same maps, no resampling).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from .augment import FlowAugment
from .synthetic import KINDS, SyntheticFlow, TextureBank

if TYPE_CHECKING:
    from ..distributed import Dist
    from .trainer import StageConfig

__all__ = ["parse_data", "make_source", "validation_batches"]


def parse_data(spec: str) -> dict[str, int]:
    """``"things:2,sdhom:6"`` → ``{"things": 2, "sdhom": 6}``; a bare name has share 1."""
    out: dict[str, int] = {}
    for part in (p.strip() for p in str(spec).split(",")):
        if not part:
            continue
        name, _, n = part.partition(":")
        try:
            share = int(n) if n else 1
        except ValueError:
            raise ValueError(f"data {spec!r}: share of {name!r} must be an integer, got {n!r}") from None
        if share < 1:
            raise ValueError(f"data {spec!r}: share of {name!r} must be ≥ 1")
        if name in out:
            raise ValueError(f"data {spec!r}: {name!r} appears twice")
        out[name] = share
    if not out:
        raise ValueError("data: name at least one source, e.g. 'chairs' or 'things:2,sdhom:6'")
    return out


def _split_rows(counts: list[int], rows: slice) -> list[slice]:
    """Which rows of each part (given their counts) fall in ``rows`` of the concatenation."""
    out, start = [], 0
    for n in counts:
        lo, hi = max(rows.start, start), min(rows.stop, start + n)
        out.append(slice(lo - start, hi - start) if hi > lo else slice(0, 0))
        start += n
    return out


class _DatasetPart:
    """Samples of one dataset on disk, at a fixed size by random crops, in seeded epoch order."""

    def __init__(self, name: str, root: str, per_batch: int, size: tuple[int, int], seed: int,
                 device: torch.device) -> None:
        from ..data import FlowDataset

        self.ds = FlowDataset(name, root, "train")
        if len(self.ds) == 0:
            raise ValueError(f"{root}: dataset {name} holds no training pairs")
        self.name, self.per_batch, self.size, self.seed, self.device = name, per_batch, size, seed, device
        self._perm_epoch, self._perm = -1, None

    def _index(self, k: int) -> int:
        n = len(self.ds)
        epoch, pos = divmod(k, n)
        if epoch != self._perm_epoch:
            g = torch.Generator().manual_seed(self.seed * 7_777 + epoch)
            self._perm, self._perm_epoch = torch.randperm(n, generator=g), epoch
        return int(self._perm[pos])

    def batch(self, index: int, rows: slice, aug: FlowAugment | None = None,
              generator: torch.Generator | None = None) -> dict[str, Tensor] | None:
        if rows.stop <= rows.start:
            return None
        h, w = self.size
        items = []
        for j in range(rows.start, rows.stop):
            k = index * self.per_batch + j
            s = self.ds[self._index(k)]
            H, W = s["img1"].shape[-2:]
            if H < h or W < w:
                raise ValueError(f"{self.name}: sample {self._index(k)} is {W}×{H}, smaller than "
                                 f"the training size {w}×{h}")
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + k)
            y = int(torch.randint(0, H - h + 1, (1,), generator=g))
            x = int(torch.randint(0, W - w + 1, (1,), generator=g))
            items.append({key: v[..., y:y + h, x:x + w] for key, v in s.items()})
        b = {key: torch.stack([it[key] for it in items]).to(self.device) for key in items[0]}
        return b if aug is None else aug.warp(b, generator)


class _SyntheticPart:
    """Synthetic samples, fresh every batch or drawn from a sliding pool.

    With ``cfg.pool = P`` (samples) and ``cfg.refresh = r``, batch ``i`` draws
    its samples from the window of sample ids [i·r, i·r + P): each iteration
    generates r new samples and retires r old ones, so each sample is seen
    about batch / r times, under fresh augmentation each time (FlowNet's
    datasets are fixed sets seen many times; the pool keeps the data endless
    while costing r samples per step). Sample k is row k mod r of generator
    batch k div r, so the pool at any iteration is a pure function of
    (seed, iteration) and a resumed run rebuilds it exactly.
    """

    def __init__(self, mix: dict[str, int], per_batch: int, cfg: StageConfig, device: torch.device,
                 textures: TextureBank | None = None):
        self.pool, self.refresh, self.per_batch, self.seed = cfg.pool, cfg.refresh, per_batch, cfg.seed
        self.gen = SyntheticFlow(mix, size=cfg.size,
                                 batch_size=self.refresh if self.pool else per_batch,
                                 seed=cfg.seed, split="train", device=device, textures=textures,
                                 texture_count=cfg.texture_count, motion_scale=cfg.motion_scale)
        self._chunks: dict[int, dict[str, Tensor]] = {}

    def _sample_ids(self, index: int) -> Tensor:
        g = torch.Generator().manual_seed(self.seed * 1_000_039 + index)
        return index * self.refresh + torch.randint(0, self.pool, (self.per_batch,), generator=g)

    def batch(self, index: int, rows: slice, aug: FlowAugment | None = None,
              generator: torch.Generator | None = None) -> dict[str, Tensor] | None:
        """Rows ``rows`` of batch ``index``, through ``aug``'s geometry (and crop) when
        given: fresh samples are rendered straight into the transforms it draws."""
        if rows.stop <= rows.start:
            return None
        if not self.pool:
            if aug is not None and aug.renders_geometry:
                n = rows.stop - rows.start
                cameras = aug.geometric.sample(n, self.gen.size, aug.crop, generator)
                return self.gen.batch(index, rows, cameras=cameras, size=aug.crop)
            b = self.gen.batch(index, rows)
            return b if aug is None else aug.warp(b, generator)
        if not self._chunks:  # fill the whole window once, so later steps cost r samples each
            for c in range(index, index + -(-self.pool // self.refresh)):
                self._chunks[c] = self.gen.batch(c)
        first = index  # the window starts at sample index·r, i.e. in chunk ``index``
        for c in [c for c in self._chunks if c < first]:
            del self._chunks[c]
        ids = self._sample_ids(index)[rows]
        out = []
        for k in ids.tolist():
            c, r = divmod(k, self.refresh)
            if c not in self._chunks:
                self._chunks[c] = self.gen.batch(c)
            out.append({key: v[r] for key, v in self._chunks[c].items()})
        b = {key: torch.stack([o[key] for o in out]) for key in out[0]}
        return b if aug is None else aug.warp(b, generator)


@dataclass
class Source:
    """Batch ``i`` for this process: its rows of the global batch, augmented and cropped."""

    parts: list
    counts: list[int]
    rows: slice
    cfg: StageConfig
    rank: int

    def batch(self, index: int) -> dict[str, Tensor]:
        aug = FlowAugment(self.cfg.crop, enabled=self.cfg.augment)
        g = torch.Generator().manual_seed(self.cfg.seed * 1_000_033 + index * 131 + self.rank)
        got = [p.batch(index, r, aug, g) for p, r in zip(self.parts, _split_rows(self.counts, self.rows))]
        got = [b for b in got if b is not None]
        b = {k: torch.cat([b[k] for b in got]) for k in got[0]}
        return aug.recolor(b, g)


def make_source(cfg: StageConfig, device: torch.device, d: Dist) -> Source:
    """The batch source of ``cfg.data`` for this process (rows of the global batch)."""
    cfg.check()  # the data spec: known sources, batch a multiple of the mix
    mix = parse_data(cfg.data)
    per = cfg.batch_size // sum(mix.values())
    # A name with a root is a dataset on disk (so --root chairs=… trains on FlyingChairs itself).
    disk = {k: v for k, v in mix.items() if k in cfg.roots}
    synth = {k: v for k, v in mix.items() if k not in cfg.roots}
    parts, counts = [], []
    if synth:
        n = per * sum(synth.values())
        parts.append(_SyntheticPart(synth, n, cfg, device))
        counts.append(n)
    for name, share in disk.items():
        parts.append(_DatasetPart(name, cfg.roots[name], per * share, cfg.size, cfg.seed, device))
        counts.append(per * share)
    local = cfg.batch_size // d.world
    rows = slice(d.rank * local, (d.rank + 1) * local)
    return Source(parts, counts, rows, cfg, d.rank)


def validation_batches(cfg: StageConfig, device: torch.device, batch_size: int = 4
                       ) -> list[dict[str, Tensor]]:
    """Held-out synthetic pairs at ``cfg.val_size``: the stage's synthetic kinds (chairs when
    it trains on disk only), other seed, ``test`` textures; fixed for the whole run."""
    mix = {k: v for k, v in parse_data(cfg.data).items() if k in KINDS} or {"chairs": 1}
    gen = SyntheticFlow(mix, size=cfg.val_size, batch_size=batch_size, seed=cfg.seed + 100_003,
                        split="test", device=device, texture_count=max(16, cfg.texture_count // 2),
                        motion_scale=cfg.motion_scale)
    return [gen.batch(i) for i in range(cfg.val_batches)]
