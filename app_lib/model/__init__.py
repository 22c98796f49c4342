"""The model the pages use: the active model (model_state), the shipped models to choose from (shipped),
its card as the pages show it (card_view, pipeline, held_out) and the sidebar that names it."""
