"""Motion segmentation from optical flow (FBMS-59): long-term point trajectories from any flow
method, pairwise terms and minimum cost multicuts (Keuper et al., ICCV 2015) or spectral
clustering, dense label maps and overlays, and an exact port of the FBMS-59 evaluation
(MoSegEval v2.0).

Modules:

* :mod:`.fbms`: Def.dat, .pgm/.ppm ground truth, track files, shot/track lists, sequence
  folders, and the FBMS-layout writer for generated sequences;
* :mod:`.trajectories`: flow cache and vectorised point tracking (Sundaram et al. 2010);
* :mod:`.affinities`: pairwise terms, cut probabilities and multicut costs;
* :mod:`.multicut`: GAEC, Kernighan–Lin with joins, brute force; :mod:`.spectral`;
* :mod:`.labels`: dense label maps and overlays; :mod:`.moseg_eval`: the evaluation;
* :mod:`.pipeline`: the whole thing for one sequence; :mod:`.synthetic`: generated
  FBMS-like sequences; :mod:`.commands`: ``flownet2 segment``; :mod:`.demo`, :mod:`.proof`.
"""

from .affinities import PairwiseFeatures, PairwiseModel, build_graph, cut_probability, multicut_costs, neighbour_edges, pairwise_features
from .fbms import (FBMSSequence, ShotDefinition, TrackSet, read_definition, read_gt_frame, read_pnm, read_sequence,
                   read_shot_list, read_track_list, read_tracks, write_definition, write_fbms_sequence, write_pnm,
                   write_shot_list, write_track_list, write_tracks)
from .labels import dense_label_map, dense_label_maps, overlay, palette, tracks_from_label_maps
from .moseg_eval import AllEvaluation, ShotEvaluation, evaluate_all, evaluate_shot
from .multicut import brute_force_multicut, gaec, is_valid_multicut, kernighan_lin, multicut_objective, solve_multicut
from .pipeline import SegmentationOptions, SegmentationResult, cluster_trajectories, segment_sequence, track_sequence
from .spectral import spectral_clustering
from .synthetic import make_fbms_like_sequence, write_synthetic_fbms_set
from .trajectories import FlowStore, Trajectories, load_trajectories, save_trajectories, track_points

__all__ = [
    "AllEvaluation", "FBMSSequence", "FlowStore", "PairwiseFeatures", "PairwiseModel", "SegmentationOptions",
    "SegmentationResult", "ShotDefinition", "ShotEvaluation", "TrackSet", "Trajectories",
    "brute_force_multicut", "build_graph", "cluster_trajectories", "cut_probability", "dense_label_map",
    "dense_label_maps", "evaluate_all", "evaluate_shot", "gaec", "is_valid_multicut", "kernighan_lin",
    "load_trajectories", "make_fbms_like_sequence", "multicut_costs", "multicut_objective", "neighbour_edges",
    "overlay", "pairwise_features", "palette", "read_definition", "read_gt_frame", "read_pnm", "read_sequence",
    "read_shot_list", "read_track_list", "read_tracks", "save_trajectories", "segment_sequence", "solve_multicut",
    "spectral_clustering", "track_points", "track_sequence", "tracks_from_label_maps", "write_definition",
    "write_fbms_sequence", "write_pnm", "write_shot_list", "write_synthetic_fbms_set", "write_track_list",
    "write_tracks",
]
