"""What is computed from a cine: segmentation, indices, QC, diagnosis, landmarks."""
