"""Query by humming: find the song a hummed melody comes from."""
__version__ = "0.1.0"
