"""Dataset names, in a module without heavy imports (command-line parsers are built from it)."""

BENCHMARK_DATASETS = ("sintel-clean", "sintel-final", "kitti-2012", "kitti-2015", "middlebury",
                      "chairs", "hd1k", "motorcycle", "motorcycle-small")
"""The datasets ``flownet2 bench`` evaluates on (test sets with published figures)."""

TRAINING_DATASETS = ("chairs", "chairs-sdhom", "things-clean", "things-final")
"""The paper's training sets: FlyingChairs, ChairsSDHom, FlyingThings3D (clean / final pass;
the full release and the ``FlyingThings3D_subset`` layout are both read)."""

DATASETS = BENCHMARK_DATASETS + tuple(n for n in TRAINING_DATASETS if n not in BENCHMARK_DATASETS)
"""Every name :func:`~flownet2_core.data.datasets.list_samples` and
:class:`~flownet2_core.data.FlowDataset` accept."""
