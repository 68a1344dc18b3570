"""Real-time tracking layer (never imports Qt): a ByteTrack-style multi-face tracker, per-track
identity voting and the re-embedding policy, as plain stages on :class:`engine.records.Faces`.

Per frame: ``faces = tracker.update(detections, t)`` -> ``need = policy.select(faces,
face_quality(faces, image.shape), t, book.decided(faces.track_ids))`` -> embed and match
``faces[need]`` -> ``book.vote(...)`` and ``policy.mark_embedded(...)`` per embedded face ->
``book.apply(faces)``; ``book.forget`` / ``policy.forget`` the ids that left
``tracker.track_ids()``.
"""
from engine.boxes import iou_matrix
from engine.track.bytetrack import Track, Tracker, TrackerConfig, TrackState, linear_assignment
from engine.track.identity import IdentityBook, IdentityConfig, Vote, renumber
from engine.track.kalman import KalmanFilter, xyah_to_xyxy, xyxy_to_xyah
from engine.track.policy import EmbedPolicy, PolicyConfig, face_quality

__all__ = [
    "EmbedPolicy", "IdentityBook", "IdentityConfig", "KalmanFilter", "PolicyConfig", "Track", "TrackState",
    "Tracker", "TrackerConfig", "Vote", "face_quality", "iou_matrix", "linear_assignment", "renumber", "xyah_to_xyxy",
    "xyxy_to_xyah",
]
