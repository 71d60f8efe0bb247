"""FlowNet 2.0 in PyTorch: models, compiled ops, flow formats, flow methods."""

__version__ = "0.1.0"
