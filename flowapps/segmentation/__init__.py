"""Motion segmentation from optical flow (FBMS-59): long-term point trajectories from any flow
method, pairwise terms and minimum cost multicuts (Keuper et al., ICCV 2015) or spectral
clustering, dense label maps and overlays, and an exact port of the FBMS-59 evaluation
(MoSegEval v2.0).

Modules:

* :mod:`.fbms`: Def.dat, .pgm/.ppm ground truth, track files, shot/track lists, sequence
  folders (reading and writing);
* :mod:`.trajectories`: flow cache and vectorised point tracking (Sundaram et al. 2010);
* :mod:`.affinities`: pairwise terms, cut probabilities and multicut costs;
* :mod:`.multicut`: GAEC, Kernighan–Lin with joins, brute force; :mod:`.spectral`;
* :mod:`.labels`: dense label maps and overlays; :mod:`.colors`: the colour tables;
* :mod:`.moseg_eval`: the evaluation; :mod:`.hungarian`: its assignment step (libhungarian);
* :mod:`.pipeline`: the whole thing for one sequence; :mod:`.synthetic`: generated
  FBMS-like sequences and the FBMS-layout writer; :mod:`.commands`: ``flownet2 segment``;
  :mod:`.demo`, :mod:`.proof`.
"""

import importlib

# Lazy (PEP 562): `flownet2 --help` imports `.commands` and so this package; the
# modules below pull in scipy and OpenCV, so each is imported when one of its
# names is first used.
_EXPORTS = {
    ".affinities": ("PairwiseFeatures", "PairwiseModel", "build_graph", "cut_probability", "multicut_costs",
                    "neighbour_edges", "pairwise_features"),
    ".colors": ("cluster_rgb", "palette"),
    ".fbms": ("FBMSSequence", "ShotDefinition", "TrackSet", "read_definition", "read_gt_frame", "read_pnm",
              "read_sequence", "read_shot_list", "read_track_list", "read_tracks", "write_definition",
              "write_pnm", "write_shot_list", "write_track_list", "write_tracks"),
    ".hungarian": ("hungarian_libhungarian",),
    ".labels": ("dense_label_map", "dense_label_maps", "overlay", "tracks_from_label_maps"),
    ".moseg_eval": ("AllEvaluation", "ShotEvaluation", "evaluate_all", "evaluate_shot"),
    ".multicut": ("brute_force_multicut", "gaec", "is_valid_multicut", "kernighan_lin", "multicut_objective",
                  "solve_multicut"),
    ".pipeline": ("SegmentationOptions", "SegmentationResult", "cluster_trajectories", "segment_sequence",
                  "track_sequence"),
    ".spectral": ("spectral_clustering",),
    ".synthetic": ("make_fbms_like_sequence", "write_fbms_sequence", "write_synthetic_fbms_set"),
    ".trajectories": ("FlowStore", "Trajectories", "load_trajectories", "save_trajectories", "track_points"),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_WHERE[name], __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(list(globals()) + __all__)
