#!/usr/bin/env bash
# libcarnet exports the C API and nothing else: every defined dynamic symbol is a carnet_
# function declared in carnet.h, and every function carnet.h declares is exported.
#   exported_symbols_test.sh LIBCARNET CARNET_H
set -euo pipefail
lib=$1 header=$2
exported=$(nm -D --defined-only "$lib" | awk '{print $NF}' | sed 's/@.*//' | sort -u)
declared=$(grep -E '^CARNET_API' "$header" | grep -oE 'carnet_[a-z0-9_]+\(' | tr -d '(' | sort -u)
others=$(grep -v '^carnet_' <<<"$exported" || true)
if [ -n "$others" ]; then
  echo "exported_symbols_test: libcarnet exports names outside the C API:" >&2
  echo "$others" | head -20 >&2
  exit 1
fi
if [ "$exported" != "$declared" ]; then
  echo "exported_symbols_test: exported and declared functions differ:" >&2
  diff <(echo "$declared") <(echo "$exported") >&2 || true
  exit 1
fi
echo "exported_symbols_test: $(wc -l <<<"$exported") carnet_ functions, nothing else"
