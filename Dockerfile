# pidone as the init of a container: ENTRYPOINT ["pidone"], units in /etc/units.
#
#   docker build -t pidone .
#   docker build --build-arg BASE_IMAGE=my-debian-python:12 -t pidone .
#
# BASE_IMAGE is any Debian-based image with Python 3.11 or newer as `python3`
# (and `python3 -m venv` working: Debian's python3-venv, or a python:* image).
# Both stages use it, so the wheels compiled in the first one match the
# Python ABI and glibc of the second.
#
# Wheels: by default the build stage fetches pidone's dependencies from the
# package index and compiles what has no wheel (python-prctl) itself. A
# `wheels/` directory in the build context (wheels and/or sdists of the
# dependencies, plus setuptools and wheel to build from source) makes the
# build offline: `pip --no-index --find-links wheels/`. See docs/docker.md.
# Only needs the classic builder or BuildKit; no `# syntax=` line, so no
# frontend image is pulled from a registry.

ARG BASE_IMAGE=python:3.11-slim

# -- build stage: compiler, libcap headers, wheels, a venv with them -----------
FROM ${BASE_IMAGE} AS build

ENV PATH=/opt/pidone/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    LANG=C.UTF-8

# gcc, libc headers, libcap headers (python-prctl) and Python.h: installed
# from the base image's apt sources only when the base lacks them, so a base
# image that already has them builds with no network at all.
RUN set -eu; \
    need=""; \
    command -v gcc >/dev/null 2>&1 || need="$need gcc"; \
    [ -e /usr/include/stdio.h ] || need="$need libc6-dev"; \
    [ -e /usr/include/sys/capability.h ] || need="$need libcap-dev"; \
    python3 -c 'import os, sys, sysconfig; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' \
        || need="$need python3-dev"; \
    if [ -n "$need" ]; then \
        echo "build: installing$need"; \
        apt-get update; \
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $need; \
        rm -rf /var/lib/apt/lists/*; \
    fi; \
    python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
        || { echo "build: pidone needs Python 3.11 or newer, $(python3 -V 2>&1) is older" >&2; exit 1; }

# The context is filtered by .dockerignore down to what building needs:
# pyproject.toml, README.md, src/, units/ and, when present, wheels/.
COPY . /ctx

RUN set -eu; \
    offline=no; \
    for f in /ctx/wheels/*.whl /ctx/wheels/*.tar.gz /ctx/wheels/*.zip; do if [ -e "$f" ]; then offline=yes; fi; done; \
    if [ "$offline" = yes ]; then \
        echo "build: offline, from the wheels/ directory of the build context"; \
        source="--no-index --find-links /ctx/wheels"; \
    else \
        echo "build: no wheels/ in the build context: fetching from the package index"; \
        source=""; \
    fi; \
    python3 -m venv /opt/pidone; \
    pip wheel --use-pep517 $source --wheel-dir /wheels /ctx; \
    pip install --no-index --find-links /wheels pidone; \
    pidone --version

# -- final stage: Python, the venv with pidone and its wheels, the units -------
FROM ${BASE_IMAGE}

ENV PATH=/opt/pidone/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    LANG=C.UTF-8

COPY --from=build /opt/pidone /opt/pidone
COPY units/ /etc/units/

# python-prctl links libcap.so.2, which Debian-based images normally carry
# (apt pulls it in); fetch it only if this base lacks it. Unit files must not
# be writable by anyone but root (pidone refuses them otherwise), whatever
# the modes in the build context were. Then prove the image works: every
# module imports (selftest) and the units validate (check).
RUN set -eu; \
    if ! ldconfig -p | grep -q 'libcap\.so\.2 '; then \
        apt-get update; \
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libcap2; \
        rm -rf /var/lib/apt/lists/*; \
    fi; \
    chown -R root:root /etc/units; \
    chmod -R go-w /etc/units; \
    pidone selftest; \
    pidone check /etc/units

# `docker stop` sends this, then SIGKILL after its timeout (10 s unless
# `docker stop -t` / `docker run --stop-timeout` say otherwise): keep every
# unit's [stop] timeout well under it.
STOPSIGNAL SIGTERM

# Healthy while PID 1 answers on its control socket.
HEALTHCHECK --interval=30s --timeout=10s --start-period=10s --retries=3 \
    CMD ["pidone", "status"]

ENTRYPOINT ["pidone"]
