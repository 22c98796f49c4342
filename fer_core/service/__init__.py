"""What the app runs in the background and reads about it: training and evaluation jobs, a
run's status, and the model in use. Imports training and the rooms below it.
"""
