"""Two-stream action recognition on UCF101 flow stacks (Simonyan & Zisserman; TSN).

Modules, in the order data flows::

    data       annotation lists, frame/flow-stack sampling, augmentation, datasets
    models     backbones (torchvision + a tiny one), cross-modality init, Recognizer
    train      SGD training: schedules, checkpoints + resume, torchrun DDP, logs
    evaluate   the 25 positions × 10 crops test protocol, per-video scores, metrics
    fusion     weighted late fusion of softmax scores
    report     per-split and 3-split tables (CSV, Markdown), confusion-matrix PNGs
    commands   ``flownet2 action train|test|fuse|report``
    demo       the ``make demo`` section;  proof: the full-size ``make proof`` run

Conventions: labels are 0-based (mmaction2 lists); "spatial" = modality ``rgb``,
"temporal" = modality ``flow``; the temporal fusion weight ``w`` mixes scores
as ``(1 − w)·spatial + w·temporal``.
"""

#: Backbones :func:`.models.build_backbone` builds; here, torch-free, so that the
#: command line can offer them without importing torch.
ARCHS = ("tiny", "resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "vgg16", "vgg16_bn")
