# Finalises an offline stand-in for an official Python image.
#
# `labkit images` (labkit/images.py) builds the root filesystem with debootstrap and
# rootfs-setup.sh, loads it with `docker import` (an image with no config at all) and
# builds this file on top of it, in a context that holds the host's CA bundle.
# What it adds is the image config the official images have, plus the CA bundle.
ARG BASE
FROM ${BASE}

ARG OFFICIAL
ARG RECIPE
ARG CA_DIGEST
ARG PYTHON_VERSION

# Trust what the host trusts. Where containers reach PyPI only through a
# TLS-inspecting proxy, `pip install` in `docker build` needs the proxy's CA.
# host-ca/ holds the host's CAs that Debian's bundle lacks, so that a later
# `update-ca-certificates` in a student's image keeps them.
COPY host-ca/ /usr/local/share/ca-certificates/labkit-host/
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt

# The official images' environment (PATH is set explicitly: an imported image has none).
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    LANG=C.UTF-8 \
    PYTHON_VERSION=${PYTHON_VERSION}
# Newer pip, requests and OpenSSL-based tools read these instead of the system default.
ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
    REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt

LABEL labkit.standin="true" \
      labkit.standin.of="${OFFICIAL}" \
      labkit.standin.recipe="${RECIPE}" \
      labkit.standin.ca="${CA_DIGEST}" \
      org.opencontainers.image.description="Offline stand-in for ${OFFICIAL}, built by labkit from Debian packages (debootstrap); not the official image."

WORKDIR /
CMD ["python3"]
