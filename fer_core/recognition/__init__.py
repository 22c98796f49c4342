"""Image -> faces -> emotions: preprocessing, the recognizer, one face-result schema,
uncertainty, explanations, videos and batch prediction. Imports models, faces, data and the
core modules.
"""
