"""Training the encoder: CHAD-layout data, the group contrastive loss, the training loop, the melody pool."""
