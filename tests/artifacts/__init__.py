"""Tests of the artifact contract package (artifacts/) and of the training -> artifacts -> server round trip."""
