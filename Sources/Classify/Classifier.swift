// Vectorscan-based SF-TAP rule classification.
