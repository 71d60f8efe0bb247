"""Training FlowNet 2.0 the paper's way (§3–5): synthetic and on-disk data,
FlowNet's augmentation, the multi-scale (and robust) EPE loss, the S_short /
S_long / S_fine schedules, stage-wise stacking and the recipes.

Import the pieces from their modules (:mod:`.trainer`, :mod:`.recipes`,
:mod:`.synthetic`, :mod:`.augment`, :mod:`.losses`, :mod:`.schedules`); this
package stays light so ``flownet2 --help`` need not import torch.
"""
