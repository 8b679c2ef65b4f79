"""The DWCP inference server: four ONNX models behind one gRPC service."""
