#!/usr/bin/env bash
# Builds the offline install bundle dist/govnet-bundle-VERSION.tar.gz: every wheel govnet needs for this
# platform and CPython 3.11 (binary wheels included, sdists turned into wheels), govnet's own wheel, the
# Debian package list from scripts/system-deps.sh, deploy/ files, install.sh and a SHA-256 manifest.
#
# Wheels are cached under .cache/bundle/ (gitignored by its own .gitignore): a rebuild with unchanged
# dependencies resolves entirely from the cache, without any registry. See docs/deployment.md.
#
# Environment: PYTHON (default .venv/bin/python, must be CPython 3.11), BUNDLE_OUT (default dist/),
# BUNDLE_CACHE (default .cache/bundle).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PY=${PYTHON:-$ROOT/.venv/bin/python}
OUT=${BUNDLE_OUT:-$ROOT/dist}
CACHE=${BUNDLE_CACHE:-$ROOT/.cache/bundle}

say() { echo "bundle: $*" >&2; }
die() { say "error: $*"; exit 1; }

"$PY" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' \
  || die "$PY is not CPython 3.11: the bundle's binary wheels must match the target's Python 3.11"
VERSION=$(cd "$ROOT" && "$PY" -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])')
PLATFORM=$("$PY" -c 'import sysconfig; print(sysconfig.get_platform().replace("-", "_").replace(".", "_"))')
WHEELS="$CACHE/wheels-cp311-$PLATFORM"
NAME="govnet-bundle-$VERSION"

mkdir -p "$WHEELS" "$OUT"
[ -f "$ROOT/.cache/.gitignore" ] || { mkdir -p "$ROOT/.cache" && echo '*' > "$ROOT/.cache/.gitignore"; }

STAGE=$(mktemp -d "${TMPDIR:-/tmp}/govnet-bundle.XXXXXX")
trap 'rm -rf "$STAGE"' EXIT
B="$STAGE/$NAME"
mkdir -p "$B/wheels" "$STAGE/src" "$STAGE/own"

# A private pip configuration: the machine's find-links/extra indexes must not leak into the bundle
# resolution in ways a later rebuild cannot repeat.
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_CONFIG_FILE=/dev/null
unset PIP_FIND_LINKS PIP_EXTRA_INDEX_URL PIP_NO_INDEX

# 1. govnet's own wheel, built from a clean copy of the tree (tracked + untracked-not-ignored files) so
# stale build/ leftovers and local caches never end up in it.
say "building govnet $VERSION wheel"
if git -C "$ROOT" rev-parse --git-dir >/dev/null 2>&1; then
  # tests/data holds third-party test recordings (GPL data): never part of the wheel or the bundle.
  (cd "$ROOT" && git ls-files -z -co --exclude-standard) | grep -zv '^tests/data/' \
    | tar -C "$ROOT" --null --ignore-failed-read -T - -cf - 2>/dev/null | tar -C "$STAGE/src" -xf -
else
  tar -C "$ROOT" --exclude=./tests/data --exclude=./.venv --exclude=./.cache --exclude=./dist -cf - . | tar -C "$STAGE/src" -xf -
fi
# The syslog parse path and the log store compiled (mypyc, C) into that copy (scripts/build_native.py;
# setup.py then tags the wheel cp311-<platform>). Without a C compiler or mypyc the wheel stays pure
# Python, which works too.
say "compiling the syslog parser and the log store (mypyc, C)"
"$PY" "$ROOT/scripts/build_native.py" --root "$STAGE/src" >&2
# The build backend (setuptools from pyproject's build-system) lives in a cached build venv, so a
# rebuild needs no registry and no per-build isolated environment.
BUILDENV="$CACHE/buildenv"
BUILD_REQS=$("$PY" -c 'import tomllib,sys; print(" ".join(tomllib.load(open(sys.argv[1], "rb"))["build-system"]["requires"]))' "$ROOT/pyproject.toml")
if ! "$BUILDENV/bin/python" -c 'import setuptools, wheel' 2>/dev/null; then
  "$PY" -m venv "$BUILDENV"
  # shellcheck disable=SC2086  # word splitting of the requirement list is intended
  "$BUILDENV/bin/pip" install -q $BUILD_REQS wheel
fi
"$BUILDENV/bin/pip" wheel -q --no-deps --no-build-isolation --wheel-dir "$STAGE/own" "$STAGE/src"
OWN=$(ls "$STAGE/own"/govnet-"$VERSION"-*.whl)

# 2. Every dependency as a wheel: offline from the cache first; the registry only when something is new.
# `pip wheel` downloads binary wheels as they are and builds wheels from sdists.
say "collecting dependency wheels (cache: $WHEELS)"
if ! "$PY" -m pip wheel -q --no-index --find-links "$WHEELS" --wheel-dir "$WHEELS" "$OWN" 2>/dev/null; then
  say "cache incomplete: fetching from the package registry"
  "$PY" -m pip wheel -q --prefer-binary --find-links "$WHEELS" --wheel-dir "$WHEELS" "$OWN"
fi
rm -f "$WHEELS"/govnet-*.whl

# 3. Exactly the wheels a fresh install resolves to (the cache may hold older versions too).
"$PY" -m pip install -q --dry-run --ignore-installed --no-index --find-links "$WHEELS" \
  --find-links "$STAGE/own" --report "$STAGE/report.json" "govnet==$VERSION"
"$PY" - "$STAGE/report.json" "$B/wheels" <<'EOF'
import json, shutil, sys
from pathlib import Path
from urllib.parse import unquote, urlparse

report, dest = json.load(open(sys.argv[1])), Path(sys.argv[2])
for item in report["install"]:
    src = Path(unquote(urlparse(item["download_info"]["url"]).path))
    if src.suffix != ".whl":
        sys.exit(f"bundle: {src.name} is not a wheel")
    shutil.copy2(src, dest / src.name)
EOF
[ -f "$B/wheels/$(basename "$OWN")" ] || die "govnet's own wheel missing from the resolved set"

# 4. Debian packages: the PKGS array of scripts/system-deps.sh, evaluated alone (not the installer).
bash -c 'eval "$(sed -n "/^PKGS=(/,/^)/p" "$1")"; printf "%s\n" "${PKGS[@]}"' _ "$ROOT/scripts/system-deps.sh" \
  > "$B/debian-packages.txt"
[ -s "$B/debian-packages.txt" ] || die "no PKGS list found in scripts/system-deps.sh"

# 5. Install script, service files, provenance, manifest.
install -m 0755 "$ROOT/deploy/install.sh" "$B/install.sh"
mkdir -p "$B/deploy"
cp -r "$ROOT/deploy/systemd" "$ROOT/deploy/etc" "$ROOT/deploy/logrotate" "$B/deploy/"
COMMIT=$(git -C "$ROOT" rev-parse HEAD 2>/dev/null || echo unknown)
DIRTY=$(git -C "$ROOT" status --porcelain 2>/dev/null | head -1)
{
  echo "version=$VERSION"
  echo "python=cp311"
  echo "platform=$PLATFORM"
  echo "commit=$COMMIT${DIRTY:+ (with uncommitted changes)}"
  echo "wheels=$(find "$B/wheels" -name '*.whl' | wc -l)"
} > "$B/BUNDLE-INFO"
(cd "$B" && find . -type f ! -name SHA256SUMS -printf '%P\n' | LC_ALL=C sort | xargs -d '\n' sha256sum > SHA256SUMS)

ARCHIVE="$OUT/$NAME.tar.gz"
EPOCH=${SOURCE_DATE_EPOCH:-$(git -C "$ROOT" log -1 --format=%ct 2>/dev/null || date +%s)}
tar -C "$STAGE" --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$EPOCH" -cf - "$NAME" \
  | gzip -n -6 > "$ARCHIVE.tmp"
mv "$ARCHIVE.tmp" "$ARCHIVE"
(cd "$OUT" && sha256sum "$NAME.tar.gz" > "$NAME.tar.gz.sha256")
say "$ARCHIVE ($(du -h "$ARCHIVE" | cut -f1), $(find "$B/wheels" -name '*.whl' | wc -l) wheels)"
echo "$ARCHIVE"
