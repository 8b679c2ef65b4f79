"""Training, evaluation and ONNX export of the four DWCP models."""
