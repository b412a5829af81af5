# syntax=docker/dockerfile:1.7
# The Sovereign Map image. The aggregator, the metrics API and every node run it:
#   sovereign-map aggregator | sovereign-map metrics-api | sovereign-map node
# Build: docker build -t sovereign-map:0.1.0 .   (Pulumi's docker stacks build it for you)
ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm

# --------------------------------------------------------------------------- build
FROM ${PYTHON_IMAGE} AS build
# CPU torch by default; a CUDA build is one --build-arg away (TORCH_INDEX_URL=…/whl/cu126).
ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
# torch first, pinned and from the CPU index, so that `pip install .[fl]` keeps this build.
RUN pip install "torch==${TORCH_VERSION}" --index-url "${TORCH_INDEX_URL}"
WORKDIR /src
COPY pyproject.toml README.md ./
COPY fl ./fl
COPY certs ./certs
COPY dashboards ./dashboards
RUN pip install ".[fl]"
# MNIST, verified against its SHA-256 sums, baked in: nodes start without downloading.
RUN XDG_CACHE_HOME=/opt/cache python -c "from fl.data import load_raw; load_raw()"

# --------------------------------------------------------------------------- runtime
FROM ${PYTHON_IMAGE} AS runtime
ARG APP_UID=10001
RUN groupadd --system --gid "${APP_UID}" app \
 && useradd --system --uid "${APP_UID}" --gid app --home-dir /home/app --create-home \
        --shell /usr/sbin/nologin app \
 && mkdir -p /var/lib/sovereign-map \
 && chown app:app /var/lib/sovereign-map
# (a fresh named volume mounted on the state directory takes over its ownership)
COPY --from=build /opt/venv /opt/venv
COPY --from=build /opt/cache/sovereign-map/mnist /var/cache/sovereign-map/mnist
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    SM_DATA_DIR=/var/cache/sovereign-map/mnist
USER ${APP_UID}:${APP_UID}
WORKDIR /home/app
# 8080 SuperLink (mTLS), 8000 metrics API, 9101 node metrics
EXPOSE 8080 8000 9101
ENTRYPOINT ["sovereign-map"]
CMD ["--help"]
