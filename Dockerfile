# The modelport serving container: `modelport serve /models` on 0.0.0.0:8000 (REST) and :8001 (gRPC).
#
#   make container                        # builds modelport:VERSION (see the README's "Container" section)
#   docker run --network host -v "$PWD/models:/models:ro" modelport:0.1.0
#
# BASE_IMAGE: any Debian bookworm image; `make container` makes a local one with debootstrap when no
# registry is reachable. EXTRAS: the pip extras installed (serve = ONNX Runtime models; add tf, caffe
# for TensorFlow/TFLite/Keras or Caffe models, at the cost of the image's size).
ARG BASE_IMAGE=debian:bookworm-slim

FROM ${BASE_IMAGE} AS build
ARG EXTRAS=serve
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3 python3-venv ca-certificates >/dev/null \
 && rm -rf /var/lib/apt/lists/*
# The CA bundle of the machine that builds (written by `make container`), for pip behind a proxy
# that re-signs TLS; used by this stage only, never shipped.
COPY .container-ca.crt /tmp/build-ca.crt
ENV PIP_CERT=/tmp/build-ca.crt PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python3 -m venv /opt/modelport
COPY pyproject.toml constraints.txt README.md /src/
COPY modelport /src/modelport
RUN /opt/modelport/bin/pip install -q -c /src/constraints.txt "/src[${EXTRAS}]" \
 && /opt/modelport/bin/modelport --version

FROM ${BASE_IMAGE}
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3 >/dev/null \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --uid 1000 --create-home --shell /usr/sbin/nologin modelport
COPY --from=build /opt/modelport /opt/modelport
ENV PATH=/opt/modelport/bin:$PATH PYTHONUNBUFFERED=1 MODELPORT_HOST=0.0.0.0 MODELPORT_HTTP_PORT=8000 MODELPORT_GRPC_PORT=8001
USER 1000
WORKDIR /home/modelport
VOLUME /models
EXPOSE 8000 8001
# Ready = every model loaded and not draining (503 otherwise); follows MODELPORT_HTTP_PORT.
HEALTHCHECK --interval=5s --timeout=3s --start-period=60s --retries=3 CMD ["python3", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/v2/health/ready' % os.environ['MODELPORT_HTTP_PORT'], timeout=2)"]
ENTRYPOINT ["modelport", "serve"]
CMD ["/models"]
