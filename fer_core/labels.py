"""The seven FER2013 classes, in the dataset's own label order."""

EMOTIONS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
NUM_CLASSES = len(EMOTIONS)
USAGES = ("Training", "PublicTest", "PrivateTest")
INPUT_SIZE = 48
