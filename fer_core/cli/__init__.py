"""The ``fer`` command (``python -m fer_core``): train, evaluate, evaluate-pipeline, average,
recalibrate, export and predict. The top room: it may import every other.
"""
