# Finalises an offline stand-in for the official nginx image.
#
# `labkit images` (labkit/images.py) builds the root filesystem with debootstrap and
# rootfs-setup.sh (Debian's nginx package), loads it with `docker import` and builds
# this file on top of it. It makes Debian's nginx behave like the official image:
# the `nginx` user (uid 101), one server in /etc/nginx/conf.d/default.conf (no
# sites-enabled), logs to the container's stdout/stderr, port 80, nginx in the
# foreground as the main process, SIGQUIT for a graceful stop.
ARG BASE
FROM ${BASE}

ARG OFFICIAL
ARG RECIPE
ARG CA_DIGEST

COPY host-ca/ /usr/local/share/ca-certificates/labkit-host/
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt

ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    NGINX_VERSION=1.22.1

# hadolint ignore=SC2016
RUN set -eu \
    && groupadd --system --gid 101 nginx \
    && useradd --system --gid nginx --no-create-home --home-dir /nonexistent \
         --comment "nginx user" --shell /bin/false --uid 101 nginx \
    && sed -i -e 's/^user www-data;/user nginx;/' \
              -e 's|^\(\s*\)include /etc/nginx/sites-enabled/\*;|\1# sites-enabled: not used (as in the official image)|' \
              /etc/nginx/nginx.conf \
    && rm -f /etc/nginx/sites-enabled/default \
    && mkdir -p /etc/nginx/conf.d /usr/share/nginx/html /var/cache/nginx \
    && printf '%s\n' \
        'server {' \
        '    listen       80;' \
        '    listen  [::]:80;' \
        '    server_name  localhost;' \
        '' \
        '    location / {' \
        '        root   /usr/share/nginx/html;' \
        '        index  index.html index.htm;' \
        '    }' \
        '' \
        '    error_page   500 502 503 504  /50x.html;' \
        '    location = /50x.html {' \
        '        root   /usr/share/nginx/html;' \
        '    }' \
        '}' > /etc/nginx/conf.d/default.conf \
    && printf '%s\n' '<!DOCTYPE html>' '<html><head><title>Welcome to nginx!</title></head>' \
        '<body><h1>Welcome to nginx!</h1><p>labkit stand-in for the official nginx image.</p></body></html>' \
        > /usr/share/nginx/html/index.html \
    && printf '%s\n' '<!DOCTYPE html>' '<html><head><title>Error</title></head>' \
        '<body><h1>An error occurred.</h1></body></html>' > /usr/share/nginx/html/50x.html \
    && ln -sf /dev/stdout /var/log/nginx/access.log \
    && ln -sf /dev/stderr /var/log/nginx/error.log \
    && nginx -t

ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt

LABEL labkit.standin="true" \
      labkit.standin.of="${OFFICIAL}" \
      labkit.standin.recipe="${RECIPE}" \
      labkit.standin.ca="${CA_DIGEST}" \
      org.opencontainers.image.description="Offline stand-in for ${OFFICIAL}, built by labkit from Debian packages (debootstrap); not the official image."

EXPOSE 80
STOPSIGNAL SIGQUIT
WORKDIR /
CMD ["nginx", "-g", "daemon off;"]
