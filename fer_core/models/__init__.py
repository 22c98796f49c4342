"""The classifier: named architectures, loading a model and its LiteRT fast path, calibration,
int8 export and the model card. Imports data and the core modules.
"""
