#!/usr/bin/env bash
# Installs the C library, header, pkg-config file and CMake package config under a prefix:
#   cmake/install.sh PREFIX [LIBDIR]
# LIBDIR is the folder holding the built libslicewise.so (default: target/release, else
# target/debug of this checkout). Layout: PREFIX/include/slicewise.h, PREFIX/lib/libslicewise.so,
# PREFIX/lib/pkgconfig/slicewise.pc, PREFIX/lib/cmake/slicewise/slicewise-config*.cmake.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
prefix=${1:?usage: cmake/install.sh PREFIX [LIBDIR]}
libdir=${2:-}
if [ -z "$libdir" ]; then
  for d in "$root/target/release" "$root/target/debug"; do
    if [ -f "$d/libslicewise.so" ]; then libdir=$d; break; fi
  done
fi
[ -n "$libdir" ] && [ -f "$libdir/libslicewise.so" ] || { echo "install.sh: no libslicewise.so (cargo build first)" >&2; exit 1; }
mkdir -p "$prefix"
prefix=$(cd "$prefix" && pwd)
version=$(sed -n 's/^#define SLICEWISE_VERSION_STRING "\(.*\)"$/\1/p' "$root/include/slicewise.h")
install -d "$prefix/include" "$prefix/lib/pkgconfig" "$prefix/lib/cmake/slicewise"
install -m 644 "$root/include/slicewise.h" "$prefix/include/"
install -m 755 "$libdir/libslicewise.so" "$prefix/lib/"
sed -e "s|@PREFIX@|$prefix|" -e "s|@VERSION@|$version|" "$root/cmake/slicewise.pc.in" \
  > "$prefix/lib/pkgconfig/slicewise.pc"
install -m 644 "$root/cmake/slicewise-config.cmake" "$root/cmake/slicewise-config-version.cmake" \
  "$prefix/lib/cmake/slicewise/"
echo "installed slicewise $version into $prefix"
