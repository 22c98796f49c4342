"""Training runs: settings, the loop and the compiled trainer, teachers, checkpoints,
averaging, soups, several machines, the run folder, its lock and a model's provenance.
Imports evaluation and the rooms below it.
"""
