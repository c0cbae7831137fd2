#!/usr/bin/env bash
# libcarnet is the tablet's library only (issue 13): it needs no PostgreSQL client and no OpenSSL
# of its own, and holds no server code. Its symbol table, kept in every non-stripped build, still
# names the C++ code linked in, however hidden.
#   tablet_only_test.sh LIBCARNET
set -euo pipefail
lib=$1
fail() { echo "tablet_only_test: $*" >&2; exit 1; }

needed=$(readelf -d "$lib" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
[ -n "$needed" ] || fail "readelf -d lists no NEEDED library in $lib"
bad_needed=$(grep -E '^lib(pq|pqxx|ssl|crypto)[.-]' <<<"$needed" || true)
[ -z "$bad_needed" ] || fail "$lib needs a server library: $(tr '\n' ' ' <<<"$bad_needed")"

# Captured first: grep -q on a pipe would end nm early under pipefail (SIGPIPE).
symbols=$(nm -C "$lib" 2>&1)
grep -q 'carnet::SyncClient::' <<<"$symbols" ||
  fail "no symbol of the sync client in $lib: stripped? nothing below could be checked"
server='carnet::(ServerStore|SyncServer|OpenServerStore|pg::)|pqxx::|httplib::|SSL_CTX_'
bad_symbols=$(grep -E "$server" <<<"$symbols" || true)
[ -z "$bad_symbols" ] || { echo "$bad_symbols" | head -10 >&2; fail "server code inside $lib"; }
echo "tablet_only_test: needs $(tr '\n' ' ' <<<"$needed"); no server symbol"
