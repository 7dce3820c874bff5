# Container image of ocsd. See docs/operations.md, "Running in a container".
#
#   docker build -t ocsd:local .
#   docker build -t ocsd:local --build-arg BASE_IMAGE=registry.example/python:3.11-slim .
#
# BASE_IMAGE: any Debian-based image with Python >= 3.11 (python3 with the venv module)
# and the ca-certificates package; the same image is used for both stages, so the
# virtual environment's interpreter path is the same in both.
# docker/certs/*.crt: extra CA certificates, trusted by pip during the build and by
# ocsd at run time (see docker/certs/README.md). Works with BuildKit and with the
# legacy builder (DOCKER_BUILDKIT=0).
ARG BASE_IMAGE=python:3.11-slim-bookworm

# -- requirements: only the dependency list of pyproject.toml and its pins ---------------
# A separate stage so that the dependency layer below is rebuilt only when the
# dependencies or their pins change, not on every edit of pyproject.toml nor when only a
# test or lint tool's pin in requirements/constraints.txt changes: runtime-constraints.txt
# keeps the pins of the runtime dependencies, the build requirements and what they pull in.
FROM ${BASE_IMAGE} AS requirements
COPY pyproject.toml /tmp/pyproject.toml
COPY requirements/constraints.txt requirements/runtime_constraints.py /tmp/
RUN python3 -c 'import tomllib; p = tomllib.load(open("/tmp/pyproject.toml", "rb")); print("\n".join(p["project"]["dependencies"] + p["build-system"]["requires"]))' > /tmp/requirements.txt \
 && python3 /tmp/runtime_constraints.py /tmp/pyproject.toml /tmp/constraints.txt > /tmp/runtime-constraints.txt \
 && cat /tmp/requirements.txt /tmp/runtime-constraints.txt

# -- build: a virtual environment with the dependencies, then ocsd ----------------------
FROM ${BASE_IMAGE} AS build
ENV VIRTUAL_ENV=/opt/ocsd/venv \
    PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
    REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_DEFAULT_TIMEOUT=120 \
    PYTHONDONTWRITEBYTECODE=1

# Extra CA certificates (docker/certs/*.crt) join the system bundle before pip runs.
COPY docker/certs/ /tmp/ocsd-certs/
RUN set -eu; \
    mkdir -p /usr/local/share/ca-certificates/ocsd; \
    for cert in /tmp/ocsd-certs/*.crt; do \
        [ -f "$cert" ] || continue; \
        cp "$cert" /usr/local/share/ca-certificates/ocsd/; \
        echo "extra CA certificate: ${cert##*/}"; \
    done; \
    rm -rf /tmp/ocsd-certs; \
    if command -v update-ca-certificates >/dev/null; then \
        update-ca-certificates; \
    elif [ -n "$(ls -A /usr/local/share/ca-certificates/ocsd)" ]; then \
        echo "BASE_IMAGE lacks update-ca-certificates (package ca-certificates)" >&2; exit 1; \
    fi

# Dependencies in their own layer, at the versions requirements/constraints.txt pins
# (checked: nothing unpinned slipped in); cached until the dependency list or a pin of it
# changes.
COPY --from=requirements /tmp/requirements.txt /tmp/runtime-constraints.txt /tmp/runtime_constraints.py /tmp/
RUN python3 -m venv "$VIRTUAL_ENV" \
 && "$VIRTUAL_ENV/bin/pip" install --constraint /tmp/runtime-constraints.txt --requirement /tmp/requirements.txt \
 && "$VIRTUAL_ENV/bin/pip" list --format=freeze | python3 /tmp/runtime_constraints.py --installed /tmp/runtime-constraints.txt

# ocsd itself; no network needed here (no dependencies, no build isolation).
COPY pyproject.toml README.md /src/
COPY ocsd/ /src/ocsd/
RUN "$VIRTUAL_ENV/bin/pip" install --no-deps --no-build-isolation /src \
 && "$VIRTUAL_ENV/bin/ocsd" --help >/dev/null

# -- runtime -----------------------------------------------------------------------------
FROM ${BASE_IMAGE} AS runtime
ARG OCSD_UID=10001
ARG OCSD_GID=10001

# The same extra CA certificates, for receivers behind an internal CA.
COPY --from=build /usr/local/share/ca-certificates/ocsd/ /usr/local/share/ca-certificates/ocsd/
RUN set -eu; \
    if command -v update-ca-certificates >/dev/null; then update-ca-certificates; fi; \
    groupadd --system --gid "$OCSD_GID" ocsd; \
    useradd --system --uid "$OCSD_UID" --gid ocsd --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin ocsd; \
    mkdir -p /var/lib/ocsd; \
    chown "$OCSD_UID:$OCSD_GID" /var/lib/ocsd

COPY --from=build /opt/ocsd/venv /opt/ocsd/venv
# The example configuration as the default; mount your own file over it. It is the one
# shipped in the package (config/ocsd.ini in the repository is a link to the same file).
RUN mkdir -p /etc/ocsd \
 && /opt/ocsd/venv/bin/python -c 'from ocsd.config.settings import default_config_text; print(default_config_text(), end="")' > /etc/ocsd/ocsd.ini

ENV PATH=/opt/ocsd/venv/bin:$PATH \
    VIRTUAL_ENV=/opt/ocsd/venv \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt \
    PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
    OCSD_CONFIG=/etc/ocsd/ocsd.ini \
    OCSD_CONTROL_HOST=0.0.0.0 \
    OCSD_OUTBOX_PATH=/var/lib/ocsd/outbox.sqlite3 \
    OCSD_DEAD_LETTER_PATH=/var/lib/ocsd/deadletters.jsonl

# delivery-mode = reliable keeps its outbox and dead letters in /var/lib/ocsd (owned by the
# ocsd user): mount a named volume there so they survive the container,
#   docker run -v ocsd-data:/var/lib/ocsd ... ocsd:local
# (docker-compose.yml does). No VOLUME instruction on purpose: it would leave an anonymous
# volume behind every plain `docker run`, even when delivery-mode = fast writes nothing.

USER ${OCSD_UID}:${OCSD_GID}
WORKDIR /tmp
EXPOSE 8090
STOPSIGNAL SIGTERM

# Liveness through ocsd's own client (no curl in the image): GET /healthz on the control
# API found from OCSD_CONTROL_HOST/OCSD_CONTROL_PORT or the [ocsd] section of $OCSD_CONFIG.
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
    CMD ["ocsd", "ctl", "--timeout", "3", "health"]

# Exec form: ocsd is PID 1 and gets docker stop's SIGTERM itself (graceful, exit 0).
ENTRYPOINT ["ocsd"]
CMD ["run", "--config", "/etc/ocsd/ocsd.ini"]
