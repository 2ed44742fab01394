"""The classical matcher: key- and tempo-invariant subsequence DTW over pitch contours."""
