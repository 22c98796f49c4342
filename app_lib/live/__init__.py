"""The Live page's machinery: the frame processor and its snapshot (processor), the recording
(recording), the hand-over of frames between threads (relay) and the server-wide stream limit
(limit)."""
