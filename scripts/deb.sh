#!/usr/bin/env bash
# Builds the Debian package (debian/) from a copy of the tree -- the files git
# tracks, as they are in the working tree -- with `dpkg-buildpackage -us -uc
# -b`, checks it with lintian (any error fails), installs it with dpkg -i,
# and runs the installed `xsr --version` and `man -w xsr`. The package is
# removed again unless it was installed before or XSR_DEB_KEEP=1. The .deb
# is left in DEB_OUT (default build-deb/). Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
out=${DEB_OUT:-build-deb}

tools=(dpkg-dev debhelper lintian man-db)
missing=()
for p in "${tools[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
export DEBIAN_FRONTEND=noninteractive
if ((${#missing[@]})); then
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# The Build-Depends of debian/control, whatever is missing of them.
if ! dpkg-checkbuilddeps >/dev/null 2>&1; then
  build_deps=$(awk '/^Build-Depends:/ { on = 1; sub(/^Build-Depends:/, "") } on && /^[A-Z]/ && !/^Build-Depends/ { exit }
                    on { printf "%s", $0 }' debian/control)
  apt-get satisfy -y -qq "$build_deps" >/dev/null
fi

version=$(dpkg-parsechangelog -S Version)
meson_version=$(sed -n "s/^ *version : '\(.*\)',$/\1/p" meson.build)
if [ "$version" != "$meson_version" ]; then
  echo "deb.sh: debian/changelog says $version, meson.build $meson_version: add a changelog entry" >&2
  exit 1
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
src="$work/xsr-$version"
mkdir "$src"
git ls-files -z | tar --null --ignore-failed-read -T - -cf - 2>/dev/null | tar -C "$src" -xf -
echo "== dpkg-buildpackage -us -uc -b (log: $out/build.log)"
mkdir -p "$out"
if ! (cd "$src" && dpkg-buildpackage -us -uc -b) >"$out/build.log" 2>&1; then
  tail -40 "$out/build.log"
  exit 1
fi
deb="xsr_${version}_$(dpkg --print-architecture).deb"
cp "$work/$deb" "$out/"
dpkg -c "$out/$deb"

echo "== lintian $deb"
lintian --fail-on error --info "$out/$deb"

echo "== dpkg -i $deb"
was_installed=0
dpkg-query -W -f='${Status}' xsr 2>/dev/null | grep -q "install ok installed" && was_installed=1
dpkg -i "$out/$deb" >/dev/null
/usr/bin/xsr --version
man -w xsr
/usr/libexec/xen/bin/verify-stream-v2 --help >/dev/null
/usr/libexec/xen/bin/convert-legacy-stream --version >/dev/null
if [ "$was_installed" = 0 ] && [ "${XSR_DEB_KEEP:-0}" != 1 ]; then
  dpkg -r xsr >/dev/null
fi
echo "deb.sh: $out/$deb built, lintian clean of errors, installed and run in $(($(date +%s) - start)) s"
