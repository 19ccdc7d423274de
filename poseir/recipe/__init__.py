"""The reference recipe: metrics, preprocessing, synthetic data and VideoPose3D-protocol evaluation."""
