"""Dataset names, in a module without heavy imports (the CLI builds its parser from it)."""

DATASETS = ("sintel-clean", "sintel-final", "kitti-2012", "kitti-2015", "middlebury", "chairs",
            "hd1k", "motorcycle", "motorcycle-small")
