"""Training side of dwcp-inference: telemetry schema, validation, synthetic data and model training."""
