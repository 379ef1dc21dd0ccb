"""nntui: watch neural networks fail to train, and learn, in the terminal."""

__version__ = "0.1.0"
