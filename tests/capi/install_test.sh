#!/usr/bin/env bash
# Installs the build into a fresh prefix, then builds an app against it twice, as app
# developers do: an out-of-tree CMake project (find_package(Carnet), Carnet::carnet) and a plain
# compiler line from pkg-config (carnet.pc). Both must run on the installed libcarnet.
#   install_test.sh BUILD_DIR CONSUMER_SOURCE_DIR C_COMPILER VERSION CARNET_SERVER(ON|OFF)
set -euo pipefail
build=$1 consumer=$2 cc=$3 version=$4 with_server=$5
work=$(mktemp -d "${TMPDIR:-/tmp}/carnet-install-test.XXXXXX")
trap 'rm -rf "$work"' EXIT
prefix=$work/prefix
fail() { echo "install_test: $*" >&2; exit 1; }

cmake --install "$build" --prefix "$prefix" >"$work/install.log" ||
  { cat "$work/install.log" >&2; fail "cmake --install failed"; }

# What is installed: the C header alone, the library with its links, the packages, the server.
[ -f "$prefix/include/carnet/carnet.h" ] || fail "carnet.h not installed"
[ "$(find "$prefix/include" -type f | wc -l)" -eq 1 ] || fail "headers besides carnet.h installed"
lib=$(find "$prefix" -name libcarnet.so -print -quit)
[ -n "$lib" ] || fail "libcarnet.so not installed"
libdir=$(dirname "$lib")
[ -L "$lib" ] || fail "libcarnet.so is not the development link"
[ -f "$libdir/libcarnet.so.$version" ] || fail "libcarnet.so.$version not installed"
soname=$(readelf -d "$lib" | sed -n 's/.*SONAME.*\[\(.*\)\]/\1/p')
[ -e "$libdir/$soname" ] || fail "no link for the SONAME $soname"
for file in CarnetConfig.cmake CarnetConfigVersion.cmake CarnetTargets.cmake; do
  [ -f "$libdir/cmake/Carnet/$file" ] || fail "$file not installed"
done
[ -f "$libdir/pkgconfig/carnet.pc" ] || fail "carnet.pc not installed"
if [ "$with_server" = ON ]; then
  [ -x "$prefix/bin/carnet-server" ] || fail "carnet-server not installed"
else
  [ ! -e "$prefix/bin/carnet-server" ] || fail "carnet-server installed with CARNET_SERVER=OFF"
fi

# An out-of-tree CMake project.
cmake -S "$consumer" -B "$work/cmake-build" -DCMAKE_C_COMPILER="$cc" \
  -DCMAKE_PREFIX_PATH="$prefix" -DCARNET_EXPECTED_VERSION="$version" >"$work/cmake.log" ||
  { cat "$work/cmake.log" >&2; fail "find_package(Carnet $version) failed"; }
cmake --build "$work/cmake-build" >"$work/cmake-build.log" ||
  { cat "$work/cmake-build.log" >&2; fail "the CMake consumer did not build"; }
# Captured first: "ldd | grep -q" fails now and then under pipefail, when grep exits on its match
# before ldd has written everything (SIGPIPE).
loaded=$(ldd "$work/cmake-build/consumer")
grep -q "$libdir/libcarnet.so" <<<"$loaded" ||
  { echo "$loaded" >&2; fail "the CMake consumer does not load the installed libcarnet"; }
"$work/cmake-build/consumer" "$work/cmake.db" "$version"

# A version the package does not satisfy is refused.
if cmake -S "$consumer" -B "$work/cmake-wrong" -DCMAKE_C_COMPILER="$cc" \
  -DCMAKE_PREFIX_PATH="$prefix" -DCARNET_EXPECTED_VERSION=99.0 >"$work/wrong.log" 2>&1; then
  fail "find_package(Carnet 99.0) accepted version $version"
fi

# A pkg-config build.
export PKG_CONFIG_PATH=$libdir/pkgconfig
[ "$(pkg-config --modversion carnet)" = "$version" ] || fail "carnet.pc has the wrong version"
pc_libdir=$(pkg-config --variable=libdir carnet)
[ "$(cd "$pc_libdir" && pwd -P)" = "$(cd "$libdir" && pwd -P)" ] ||
  fail "carnet.pc names libdir $pc_libdir, not $libdir"
# shellcheck disable=SC2046  # pkg-config's output is a list of flags
"$cc" -std=c99 -Wall -Wextra -pedantic -Werror "$consumer/consumer.c" \
  $(pkg-config --cflags --libs carnet) -Wl,-rpath,"$pc_libdir" -o "$work/pc-consumer"
"$work/pc-consumer" "$work/pc.db" "$version"
echo "install_test: installed, found and linked by CMake and by pkg-config"
