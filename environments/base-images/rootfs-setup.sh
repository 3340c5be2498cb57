#!/bin/sh
# Turns a fresh `debootstrap --variant=minbase` tree into the root filesystem of a
# stand-in for an official image. labkit/images.py runs it with `chroot` on the
# host (inside a private mount namespace, /proc mounted), as root, before the tree
# is tarred, cached under ~/.cache/labkit/ and handed to `docker import`.
#
# It repeats what the official images do, in their order:
#   debian:bookworm[-slim]  debootstrap minbase + point-release and security updates,
#                           the "minimizing" apt/dpkg config, and for -slim the
#                           dpkg path-excludes (no docs, man pages, locales)
#   python / buildpack-deps apt-get install --no-install-recommends <the list>,
#                           then rm -rf /var/lib/apt/lists/*
# Python comes from Debian (python3.11), not from a source build in /usr/local.
#
# Environment (set by images.py; nothing here names a mirror host):
#   LABKIT_SUITE             e.g. bookworm
#   LABKIT_MIRROR            Debian archive URL; empty = the one debootstrap used
#   LABKIT_SECURITY_MIRROR   debian-security URL; empty = derived from the archive URL
#   LABKIT_SLIM              1 = apply the debian:*-slim path excludes
#   LABKIT_DROP_BYTECODE     1 = delete Python's __pycache__ dirs, as python:*-slim has none
#   /labkit/packages         the package list, one name per line, '#' comments
set -eu

suite="${LABKIT_SUITE:?}"
export DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8 LANG=C.UTF-8
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

say() { echo "labkit-rootfs: $*"; }

# --- keep services from starting while packages are installed (as the official images do)
cat > /usr/sbin/policy-rc.d <<'EOF'
#!/bin/sh
# Package installs in an image build must not start services.
exit 101
EOF
chmod 0755 /usr/sbin/policy-rc.d

# --- apt sources: the deb822 file the official bookworm images ship
mirror="${LABKIT_MIRROR:-}"
if [ -z "$mirror" ] && [ -f /etc/apt/sources.list ]; then
	# the mirror debootstrap used (its default unless we passed one)
	mirror="$(awk '$1 == "deb" { print $2; exit }' /etc/apt/sources.list)"
fi
[ -n "$mirror" ] || { echo "labkit-rootfs: no Debian mirror known" >&2; exit 1; }
mirror="${mirror%/}"
security="${LABKIT_SECURITY_MIRROR:-}"
[ -n "$security" ] || security="${mirror}-security"
security="${security%/}"
rm -f /etc/apt/sources.list
cat > /etc/apt/sources.list.d/debian.sources <<EOF
Types: deb
URIs: $mirror
Suites: $suite $suite-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $security
Suites: $suite-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
chmod 0644 /etc/apt/sources.list.d/debian.sources

# everything debootstrap installed is essential or a dependency of it
apt-mark auto '.*' > /dev/null

# --- slim: the debian:*-slim dpkg filter, applied now and kept for later installs
if [ "${LABKIT_SLIM:-0}" = 1 ]; then
	say "slim: excluding docs, man pages and locales (as debian:$suite-slim)"
	excludes='/usr/share/doc /usr/share/groff /usr/share/info /usr/share/linda /usr/share/lintian/overrides /usr/share/locale /usr/share/man'
	{
		echo '# The "slim" variant of the Debian base image (as debian:*-slim): files that'
		echo '# containers rarely need are not installed. Delete this file to get them back.'
		for d in $excludes; do echo "path-exclude $d/*"; done
		echo
		echo 'path-include /usr/share/doc/*/copyright'
		echo 'path-include /usr/share/doc/kde/HTML/C/*'
		echo 'path-include /usr/share/gnome/help/*/C/*'
		echo 'path-include /usr/share/locale/all_languages'
		echo 'path-include /usr/share/locale/currency/*'
		echo 'path-include /usr/share/locale/l10n/*'
		echo 'path-include /usr/share/locale/languages'
		echo 'path-include /usr/share/locale/locale.alias'
		echo 'path-include /usr/share/omf/*/*-C.emf'
	} > /etc/dpkg/dpkg.cfg.d/docker
	chmod 0644 /etc/dpkg/dpkg.cfg.d/docker
	for d in $excludes; do
		[ -d "$d" ] || continue
		# files first (keeping the path-include ones), then dangling links and empty dirs
		find "$d" -depth -mindepth 1 ! -type d ! -type l \
			! -path '/usr/share/doc/*/copyright' \
			! -path '/usr/share/doc/kde/HTML/C/*' \
			! -path '/usr/share/locale/all_languages' \
			! -path '/usr/share/locale/currency/*' \
			! -path '/usr/share/locale/l10n/*' \
			! -path '/usr/share/locale/languages' \
			! -path '/usr/share/locale/locale.alias' \
			-exec rm -f '{}' +
		i=0
		while [ $i -lt 20 ] && [ "$(find "$d" -depth -mindepth 1 \( -empty -o -xtype l \) -print -exec rm -rf '{}' + | wc -l)" -gt 0 ]; do
			i=$((i + 1))
		done
	done
fi

# --- updates, then the image's packages (no Recommends, like every official Dockerfile)
say "apt-get update"
apt-get update -qq
say "apt-get dist-upgrade (point release and security updates)"
apt-get -y -qq -o Dpkg::Use-Pty=0 dist-upgrade
packages="$(sed -e 's/#.*//' /labkit/packages | tr -s ' \t\n' ' ')"
say "apt-get install --no-install-recommends $(echo "$packages" | wc -w) packages and their dependencies"
# shellcheck disable=SC2086
apt-get -y -qq -o Dpkg::Use-Pty=0 install --no-install-recommends $packages

# --- make Debian's Python behave like the official python images
# PEP 668: the official images have no EXTERNALLY-MANAGED marker; `pip install` (and
# `pip install --user`, as in the course FAQ) must work without --break-system-packages.
rm -f /usr/lib/python3*/EXTERNALLY-MANAGED
# The official images delete Python's bytecode caches (*.pyc) after installing Python
# (`find /usr/local ... -name '*.pyc' -exec rm`); for an image where Debian's Python
# stands in for that build, do the same. (python:3.11 keeps them: there Debian's
# Python is also buildpack-deps' own, which has its .pyc files.)
if [ "${LABKIT_DROP_BYTECODE:-0}" = 1 ]; then
	say "deleting Python bytecode caches (as the official image does)"
	find /usr -depth -type d -name __pycache__ -exec rm -rf '{}' +
fi
export PYTHONDONTWRITEBYTECODE=1
# Facts about the result, KEY=VALUE: images.py passes them to the Dockerfile as
# build args (/labkit itself is not part of the image).
: > /labkit/facts
if command -v python3 > /dev/null; then
	echo "PYTHON_VERSION=$(python3 -c 'import platform; print(platform.python_version())')" >> /labkit/facts
fi

# --- the official images' "minimizing" apt/dpkg configuration
cat > /etc/dpkg/dpkg.cfg.d/docker-apt-speedup <<'EOF'
# Image builds do not survive a power loss anyway: do not sync() after every package.
force-unsafe-io
EOF
cat > /etc/apt/apt.conf.d/docker-clean <<'EOF'
# Do not keep downloaded .deb files and apt's binary caches in image layers:
# effectively `apt-get clean` after every install and update.
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
cat > /etc/apt/apt.conf.d/docker-gzip-indexes <<'EOF'
# Keep the package lists compressed on disk (smaller `apt-get update` layers).
Acquire::GzipIndexes "true";
EOF
cat > /etc/apt/apt.conf.d/docker-no-languages <<'EOF'
# No translated package descriptions: faster `apt-get update`.
Acquire::Languages "none";
EOF
cat > /etc/apt/apt.conf.d/docker-autoremove-suggests <<'EOF'
# `apt-get purge --auto-remove` also removes what was only kept because of a Suggests.
Apt::AutoRemove::SuggestsImportant "false";
EOF
chmod 0644 /etc/dpkg/dpkg.cfg.d/docker-apt-speedup /etc/apt/apt.conf.d/docker-*

# --- clean up: what the official images do not ship
apt-get clean
rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/cache/apt/archives/partial/* \
	/var/cache/debconf/*-old /var/lib/dpkg/*-old /var/cache/ldconfig/aux-cache \
	/var/log/dpkg.log /var/log/bootstrap.log /var/log/alternatives.log \
	/var/log/apt/history.log /var/log/apt/term.log /var/log/apt/eipp.log.xz
# host-specific files docker replaces at run time
echo 'localhost' > /etc/hostname
: > /etc/resolv.conf
rm -f /etc/machine-id
say "done: $(dpkg-query -f '.\n' -W | wc -l) packages; $(tr '\n' ' ' < /labkit/facts)"
