"""Grouping: pure functions over arrays of descriptors. Neighbour graphs (exact and the
inverted-file index), Chinese whispers, average-linkage merging and attachment, the
clustering users get (:func:`group` with a :class:`Policy`), constraints (same photo, pins,
rejections), matching new clusters to earlier persons, the self-check on same-photo pairs,
and the faces in doubt.

Imports only ``core`` and numpy; never the store, never dlib.
"""

from photocluster.grouping.calibration import ImpostorCheck, impostor_check
from photocluster.grouping.constraints import Constraints, build_constraints, is_collage, same_photo_pairs
from photocluster.grouping.doubt import DoubtfulFace, centroid_distances, doubtful_faces
from photocluster.grouping.graph import edges, knn_edges
from photocluster.grouping.grouper import Policy, group
from photocluster.grouping.identity import Assignment, PlanDiff, assign_persons, match_to_previous, plan_diff
from photocluster.grouping.linkage import attach, closest_pairs, merge_by_linkage
from photocluster.grouping.whispers import (
    UNKNOWN,
    canonical_labels,
    chinese_whispers,
    cluster,
    collapse,
    collapsed_whispers,
)

__all__ = [
    "UNKNOWN",
    "Assignment",
    "Constraints",
    "DoubtfulFace",
    "ImpostorCheck",
    "PlanDiff",
    "Policy",
    "assign_persons",
    "attach",
    "build_constraints",
    "canonical_labels",
    "centroid_distances",
    "chinese_whispers",
    "closest_pairs",
    "cluster",
    "collapse",
    "collapsed_whispers",
    "doubtful_faces",
    "edges",
    "group",
    "impostor_check",
    "is_collage",
    "knn_edges",
    "match_to_previous",
    "merge_by_linkage",
    "plan_diff",
    "same_photo_pairs",
]
