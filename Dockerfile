# Lepton: one image for both long-running components. The entrypoint is the `lepton` CLI, so a pod
# runs `lepton extender ...` or `lepton operator ...` by its args (deploy/base/*/deployment.yaml).
#
# Build arguments
#   BASE_IMAGE        CPython >= 3.11 with the venv module. The default is the official slim image; the
#                     image test (tests/deploy/test_image.py) passes a Debian bookworm root built with
#                     debootstrap and `python3-venv`, because image registries are unreachable there.
#   PIP_INSTALL_ARGS  extra pip arguments for the build stage. Air-gapped builds install from a wheelhouse
#                     inside the build context (see docs/deploy.md, "Building the image offline"):
#                       pip download --only-binary=:all: -d build/wheelhouse <deps> 'setuptools>=68' wheel
#                       docker build --build-arg PIP_INSTALL_ARGS="--no-index --find-links=/wheels" .
#
# The final stage holds the base image plus one virtualenv: no compiler, no pip, no sources. It runs as
# an unprivileged numeric user (so `runAsNonRoot` can verify it) and writes nothing outside /tmp, so it
# runs with `readOnlyRootFilesystem: true` and an emptyDir on /tmp.
ARG BASE_IMAGE=python:3.11-slim-bookworm

# --- build: a self-contained virtualenv in /opt/lepton ----------------------------------------------
FROM ${BASE_IMAGE} AS build
ARG PIP_INSTALL_ARGS=""
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
# Dependencies first, from pyproject.toml alone, so editing the sources does not reinstall numpy & co.
# Every runtime dependency ships manylinux wheels: no compiler is needed, even in this stage.
# build/wheelhouse (offline builds) lands in /wheels; the pattern matches nothing in an online build, and
# pyproject.toml keeps the instruction from having no source at all (pip ignores it among the wheels).
COPY pyproject.toml build/wheelhous[e] /wheels/
COPY pyproject.toml /src/pyproject.toml
RUN python3 -m venv /opt/lepton \
 && python3 -c "import tomllib; print('\\n'.join(tomllib.load(open('/src/pyproject.toml', 'rb'))['project']['dependencies']))" \
      > /tmp/requirements.txt \
 && /opt/lepton/bin/python -m pip install ${PIP_INSTALL_ARGS} --requirement /tmp/requirements.txt
# Then Lepton itself (.dockerignore lets in only what the wheel needs). pip,
# setuptools and wheel leave the venv afterwards: nothing imports them at run time, and a tool-free
# runtime is the point of the second stage. Byte-code is compiled here because the root filesystem is
# read-only at run time.
COPY . /src
RUN /opt/lepton/bin/python -m pip install ${PIP_INSTALL_ARGS} --no-deps /src \
 && /opt/lepton/bin/python -m pip uninstall --yes pip setuptools wheel \
 && /opt/lepton/bin/python -m compileall -q /opt/lepton \
 && /opt/lepton/bin/lepton --help >/dev/null

# --- runtime ---------------------------------------------------------------------------------------
FROM ${BASE_IMAGE}
LABEL org.opencontainers.image.title="lepton" \
      org.opencontainers.image.description="Cost-aware scheduling for AI jobs on Kubernetes: scheduler extender and LeptonJob operator" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /opt/lepton /opt/lepton
# HOME and MPLCONFIGDIR point at /tmp: the user has no home directory and the root filesystem is
# read-only; the kubernetes client and matplotlib both look there for config and caches.
ENV PATH=/opt/lepton/bin:${PATH} \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    MPLCONFIGDIR=/tmp/matplotlib
# 65532 is the conventional "nonroot" id of distroless images; numeric so the kubelet can check it.
USER 65532:65532
# 8888: extender HTTP (filter, prioritize, probes, metrics); 8080: operator metrics; 8081: operator liveness.
EXPOSE 8888 8080 8081
ENTRYPOINT ["/opt/lepton/bin/lepton"]
CMD ["--help"]
