"""Tests of the deployment: the Dockerfile, its serving recipe, and the Kubernetes manifests (deploy/)."""
