"""The Training and Dataset pages' services: where the dataset comes from (data_source) and
watching a training run (run_watch)."""
