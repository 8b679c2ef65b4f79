# dwcp-inference image, from one pinned base:
#   serving  only the serving dependencies, the server and the model set in models/, as a non-root user;
#            ports 50051 (gRPC) and 9102 (Prometheus metrics)
#   train    the `train` extra (TensorFlow, tf2onnx, scikit-learn ...) and the Makefile; its command is
#            `make train-export`, which writes models/ (mount a volume there to keep them)
#   default  the last stage, the serving image unchanged, so a build without --target is the service
# serving comes first because the legacy builder (no BuildKit) builds every stage up to its target:
# `--target serving` then builds serving alone with either builder, and never installs TensorFlow.
# Build:  docker build --target serving -t dwcp-inference:0.1.0 .      (needs a complete models/ in the context)
#         docker build --target train -t dwcp-inference-train:0.1.0 .
# tests/deploy/test_serving_image.py replays the serving stage's COPY and `RUN ... pip install` lines in a fresh
# venv and starts the server from it; tests/deploy/test_dockerfile.py checks the rules listed there, and
# `make lint` runs hadolint on this file.

ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS serving
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DWCP_INFERENCE_MODEL_DIR=/app/models
WORKDIR /app
# Only what the base install needs: no training/, no TensorFlow.
COPY pyproject.toml constraints.txt README.md ./
COPY artifacts/ artifacts/
COPY server/ server/
COPY gen/python/ gen/python/
RUN python -m pip install --no-cache-dir -c constraints.txt . \
    && rm -rf build ./*.egg-info
COPY models/ models/
# A fixed numeric uid and gid so Kubernetes' runAsNonRoot can verify them (deploy/k8s/deployment.yaml uses the
# same), a group that exists for that gid, and a HOME that exists (onnxruntime warns on every start without one).
RUN groupadd --system --gid 10001 dwcp \
    && useradd --system --no-log-init --uid 10001 --gid 10001 --home-dir /home/dwcp --create-home dwcp
ENV HOME=/home/dwcp
USER 10001:10001
EXPOSE 50051 9102
# The probe reads the server's DWCP_INFERENCE_* variables (port, TLS files) and the probe's own
# DWCP_INFERENCE_PROBE_* ones, so configure the container with -e rather than flags after the image name
# (a HEALTHCHECK does not see the ENTRYPOINT's arguments): docs/deploy.md "TLS and the health probe".
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-m", "server.healthcheck"]
ENTRYPOINT ["python", "-m", "server", "--host", "0.0.0.0"]

FROM ${PYTHON_IMAGE} AS train
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
# make runs the pipeline; nothing else from Debian is needed (every Python dependency ships wheels).
RUN apt-get update \
    && apt-get install -y --no-install-recommends make=4.3-4.1 \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml constraints.txt README.md Makefile ./
COPY artifacts/ artifacts/
COPY server/ server/
COPY training/ training/
COPY gen/python/ gen/python/
# The Makefile's .venv, created here so `make train-export` finds it ready (its stamp is newer than its inputs).
RUN python -m venv .venv \
    && .venv/bin/python -m pip install --no-cache-dir -c constraints.txt -e '.[train]' \
    && touch .venv/.stamp
CMD ["make", "train-export"]

# The default target: the serving image as built above (BuildKit then skips the train stage altogether).
FROM serving AS default
