"""The front end: audio and symbolic files in, pitch contours out (audio, pitch tracking, melodies, separation)."""
