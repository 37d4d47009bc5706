# syntax=docker/dockerfile:1
# One image for every service; the command chooses: `qualityloop serve feedback|scoring|alerts|improvement`.
# Build: docker build -t qualityloop:latest .   and the gateway: docker build --target gateway -t qualityloop-gateway .
# (docs/operations.md, "Image")

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/qualityloop
WORKDIR /src
# Dependencies first, so that a code change does not reinstall them.
COPY pyproject.toml README.md ./
RUN mkdir -p shared services devstack bench \
    && touch shared/__init__.py services/__init__.py devstack/__init__.py bench/__init__.py \
    && /opt/qualityloop/bin/pip install . \
    && /opt/qualityloop/bin/pip uninstall -y qualityloop
COPY shared shared
COPY services services
COPY devstack devstack
COPY bench bench
RUN /opt/qualityloop/bin/pip install --no-deps . \
    && find /opt/qualityloop -name '__pycache__' -prune -exec rm -rf {} +

# The gateway: nginx (unprivileged, port 8080) with the landing page and the quality console; its config is
# generated from deploy/gateway/nginx.conf.template (python -m deploy.generate) and mounted by compose and
# Kubernetes (the Kubernetes one trusts the Ingress's X-Forwarded-For). Build: docker build --target gateway.
FROM nginxinc/nginx-unprivileged:1.27-alpine AS gateway
COPY deploy/gateway/index.html /usr/share/qualityloop/gateway/index.html
COPY console/site /usr/share/qualityloop/console
COPY deploy/compose/gateway/nginx.conf /etc/qualityloop/nginx.conf
CMD ["nginx", "-g", "daemon off;", "-c", "/etc/qualityloop/nginx.conf"]

# The services (the default target, last).
FROM ${PYTHON_IMAGE} AS runtime
RUN groupadd --system --gid 10001 qualityloop \
    && useradd --system --uid 10001 --gid qualityloop --home-dir /nonexistent --shell /usr/sbin/nologin qualityloop
COPY --from=build /opt/qualityloop /opt/qualityloop
COPY deploy/image/healthcheck.py /opt/qualityloop/healthcheck.py
ENV PATH=/opt/qualityloop/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    QL_MODEL_CACHE_DIR=/opt/qualityloop/models
WORKDIR /tmp
# The enrichment models (jieba, snownlp, VADER) ship inside their packages; their compact copies
# (services/feedback/chinese_models.py) are built here, once, into the image (read-only at run time): a
# missing file fails the build, not the first comment, and nothing is built or downloaded when a container starts.
RUN python -c "from services.feedback import enrichment; enrichment.warm_up()"
USER 10001:10001
EXPOSE 8101 8102 8103 8104
HEALTHCHECK --interval=15s --timeout=5s --start-period=120s --retries=3 \
    CMD ["python", "/opt/qualityloop/healthcheck.py"]
CMD ["qualityloop", "--help"]
