"""The seven FER2013 classes, in the dataset's own label order."""

EMOTIONS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
NUM_CLASSES = len(EMOTIONS)
USAGES = ("Training", "PublicTest", "PrivateTest")
INPUT_SIZE = 48
# What a model can learn from: FER2013's own labels, or FER+'s crowd (fer_core.data.ferplus).
LABEL_SOURCES = ("fer2013", "ferplus-votes", "ferplus-majority")
