"""Weights: files (safetensors, npz, PyTorch checkpoints), checks against a model, initialization."""
