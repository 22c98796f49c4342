"""How good a model is: reports on a split (FER2013's labels and FER+'s crowd), the whole
path through a face detector, and latency. Imports recognition and the rooms below it.
"""
