#!/usr/bin/env bash
# Installs govnet from this offline bundle, with no package registry: verifies the bundle's SHA-256
# manifest, creates a virtualenv and installs the bundled wheels with `pip install --no-index`.
# Optionally installs the Debian packages of debian-packages.txt from a local mirror, and the service
# files (user, /etc/govnet, systemd units, logrotate). Run `./install.sh --help`.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PREFIX=/opt/govnet
PYTHON=python3
DEB_MIRROR=""
DEB_SUITE=bookworm
DEB_COMPONENTS=main
SERVICE=0
VERIFY_ONLY=0

usage() {
  cat <<'EOF'
usage: install.sh [--prefix DIR] [--python PY] [--deb-mirror URL [--deb-suite S] [--deb-components C]]
                  [--service] [--verify-only]

  --prefix DIR          virtualenv to create or upgrade (default /opt/govnet)
  --python PY           CPython 3.11 interpreter with the venv module (default python3)
  --deb-mirror URL      also install debian-packages.txt from this local Debian mirror
                        (http://mirror.intranet/debian or file:/srv/debian); needs root
  --deb-suite S         mirror suite (default bookworm); --deb-components C (default main)
  --service             create the govnet user, /etc/govnet (never overwriting), /var/lib/govnet,
                        /var/log/govnet, systemd units and logrotate config; needs root
  --verify-only         check the manifest and stop
EOF
}

say() { echo "install: $*" >&2; }
die() { say "error: $*"; exit 1; }

while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) PREFIX=${2:?}; shift 2 ;;
    --python) PYTHON=${2:?}; shift 2 ;;
    --deb-mirror) DEB_MIRROR=${2:?}; shift 2 ;;
    --deb-suite) DEB_SUITE=${2:?}; shift 2 ;;
    --deb-components) DEB_COMPONENTS=${2:?}; shift 2 ;;
    --service) SERVICE=1; shift ;;
    --verify-only) VERIFY_ONLY=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown option $1" ;;
  esac
done

verify_manifest() {
  # Every file must match its checksum AND be listed: an extra wheel dropped into wheels/ would
  # otherwise be installed unchecked. (The manifest guards against damage in transit; compare the
  # archive's .sha256 through a separate channel to guard against a swapped bundle.)
  cd "$HERE"
  [ -f SHA256SUMS ] || die "SHA256SUMS missing: not a govnet bundle, or damaged"
  sha256sum --check --strict --quiet SHA256SUMS >&2 || die "bundle damaged: checksum mismatch (see above)"
  local extra
  extra=$(comm -13 <(sed -E 's/^[0-9a-f]{64} [ *]//' SHA256SUMS | LC_ALL=C sort) \
                   <(find . -type f ! -name SHA256SUMS -printf '%P\n' | LC_ALL=C sort))
  [ -z "$extra" ] || die "files not in the manifest: $extra"
  say "manifest OK ($(wc -l < SHA256SUMS) files)"
}

install_debs() {
  [ "$(id -u)" = 0 ] || die "--deb-mirror needs root"
  local tmp
  tmp=$(mktemp -d)
  echo "deb $DEB_MIRROR $DEB_SUITE $DEB_COMPONENTS" > "$tmp/sources.list"
  # Only the given mirror: the machine's own sources (unreachable offline) are left out.
  local opts=(-o "Dir::Etc::SourceList=$tmp/sources.list" -o "Dir::Etc::SourceParts=/dev/null")
  mapfile -t pkgs < "$HERE/debian-packages.txt"
  say "installing ${#pkgs[@]} Debian packages from $DEB_MIRROR"
  DEBIAN_FRONTEND=noninteractive apt-get "${opts[@]}" update -q
  DEBIAN_FRONTEND=noninteractive apt-get "${opts[@]}" install -y -q --no-install-recommends "${pkgs[@]}"
  rm -rf "$tmp"
}

install_venv() {
  "$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null \
    || die "$PYTHON is not CPython 3.11 (the bundle's binary wheels are cp311); pass --python"
  "$PYTHON" -c 'import venv, ensurepip' 2>/dev/null \
    || die "$PYTHON lacks venv/ensurepip: install the Debian package python3-venv"
  local version
  version=$(sed -n 's/^version=//p' "$HERE/BUNDLE-INFO")
  if [ ! -x "$PREFIX/bin/python" ]; then
    say "creating virtualenv $PREFIX"
    "$PYTHON" -m venv "$PREFIX"
  fi
  # No registry, no machine-wide pip settings: only this bundle's wheels.
  env -u PIP_FIND_LINKS -u PIP_EXTRA_INDEX_URL -u PIP_INDEX_URL \
    PIP_CONFIG_FILE=/dev/null PIP_NO_INDEX=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    "$PREFIX/bin/python" -m pip install -q --no-index --no-cache-dir --find-links "$HERE/wheels" \
    --upgrade "govnet==$version"
  "$PREFIX/bin/govnet" --help > /dev/null || die "installed govnet does not start"
  say "govnet $version installed in $PREFIX ($PREFIX/bin/govnet)"
}

install_service() {
  [ "$(id -u)" = 0 ] || die "--service needs root"
  getent group govnet > /dev/null || groupadd --system govnet
  getent passwd govnet > /dev/null \
    || useradd --system --gid govnet --home-dir /var/lib/govnet --no-create-home \
         --shell /usr/sbin/nologin --comment "govnet monitor" govnet
  install -d -o govnet -g govnet -m 0750 /var/lib/govnet /var/log/govnet
  install -d -o root -g govnet -m 0750 /etc/govnet /etc/govnet/secrets
  local f
  for f in "$HERE"/deploy/etc/govnet/*; do
    [ -f "$f" ] || continue
    # A site's configuration is never overwritten by an upgrade.
    [ -e "/etc/govnet/$(basename "$f")" ] || install -o root -g govnet -m 0640 "$f" /etc/govnet/
  done
  for f in "$HERE"/deploy/systemd/*.service; do
    sed "s#/opt/govnet/#$PREFIX/#g" "$f" > "/etc/systemd/system/$(basename "$f")"
    chmod 0644 "/etc/systemd/system/$(basename "$f")"
  done
  install -m 0644 "$HERE/deploy/logrotate/govnet" /etc/logrotate.d/govnet
  if [ -d /run/systemd/system ]; then
    systemctl daemon-reload
  fi
  say "service files installed: edit /etc/govnet/*.yaml, put secrets in /etc/govnet/secrets/ (0640"
  say "root:govnet), run '$PREFIX/bin/govnet doctor --config /etc/govnet/govnet.yaml', then"
  say "'systemctl enable --now govnet.service govnet-syslog.service'"
}

verify_manifest
[ "$VERIFY_ONLY" = 1 ] && exit 0
[ -z "$DEB_MIRROR" ] || install_debs
install_venv
[ "$SERVICE" = 0 ] || install_service
