#!/usr/bin/env bash
# The carnet tablet CLI against a real carnet-server process: two tablets, records, bad input,
# sync and conflicts.   usage: cli_test.sh CARNET CARNET_SERVER
set -euo pipefail
carnet=$1
server=$2
dir=$(mktemp -d "${TMPDIR:-/tmp}/carnet-cli-test-XXXXXX")
server_pid=

cleanup() {
  if [ -n "$server_pid" ]; then
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$dir"
}
trap cleanup EXIT

fail() {
  echo "FAIL: $*" >&2
  exit 1
}
# expect STATUS COMMAND...: runs COMMAND into $dir/out and $dir/err and checks its exit status.
expect() {
  local want=$1 got=0
  shift
  "$@" >"$dir/out" 2>"$dir/err" || got=$?
  [ "$got" = "$want" ] || fail "exit $got instead of $want: ${*:2}: $(cat "$dir/err")"
}
has() { grep -qF -- "$2" "$1" || fail "$(basename "$1") lacks '$2': $(cat "$1")"; }
one_error_line() {
  [ "$(wc -l <"$dir/err")" = 1 ] || fail "expected one line on stderr: $(cat "$dir/err")"
  has "$dir/err" "$1"
}
valid_json() {
  if command -v python3 >/dev/null; then
    python3 -c 'import json,sys; json.load(sys.stdin)' <"$dir/out" ||
      fail "not JSON: $(cat "$dir/out")"
  fi
}
a() { "$carnet" --db "$dir/a.db" "$@"; }
b() { "$carnet" --db "$dir/b.db" "$@"; }

echo "-- a server and two enrolled tablets"
store=sqlite:$dir/server.db
enroll() {
  "$server" enroll --token --store "$store" --device "$1" --adviser "$2" --territory vallee-nord
}
token_a=$(enroll tab-a amina 2>/dev/null)
token_b=$(enroll tab-b bruno 2>/dev/null)
"$server" serve --store "$store" --listen 127.0.0.1:0 --plain-http \
  >"$dir/server.out" 2>"$dir/server.log" &
server_pid=$!
for _ in $(seq 100); do
  grep -q "listening on" "$dir/server.out" && break
  sleep 0.1
done
port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$dir/server.out")
[ -n "$port" ] || fail "carnet-server did not start: $(cat "$dir/server.log")"
url=http://127.0.0.1:$port

echo "-- init"
expect 0 a init --device tab-a --server "$url" --token "$token_a"
expect 0 b init --device tab-b --server "$url" --token "$token_b"
expect 1 a init --device tab-a --server "$url" --token "$token_a"
one_error_line "exists already"
expect 2 "$carnet" --db "$dir/c.db" init --device tab-c --server "ftp://example.org" --token x
[ ! -e "$dir/c.db" ] || fail "a refused init left a store behind"
expect 2 "$carnet" --db "$dir/c.db" init --device tab-c
one_error_line "usage: carnet --db PATH init"
expect 1 "$carnet" --db "$dir/missing.db" list participants
one_error_line "run 'carnet --db"

echo "-- put, get, list"
expect 0 a new-id
nadia=$(cat "$dir/out")
[[ $nadia =~ ^[0-9a-f]{32}$ ]] || fail "new-id printed '$nadia'"
expect 0 a put participants "$nadia" referent=amina territory=vallee-nord first_name=Nadia \
  last_name='Ben "Ali"' phase=assessment email=
expect 0 a set-add participants "$nadia" barriers mobility
expect 0 a get participants "$nadia"
valid_json
has "$dir/out" '"first_name":"Nadia"'
has "$dir/out" '"last_name":"Ben \"Ali\""'
has "$dir/out" '"barriers":["mobility"]'
expect 0 a list participants
valid_json
has "$dir/out" "\"id\":\"$nadia\""
interview=interview-1
expect 0 a put interviews $interview participant="$nadia" place=office
expect 0 a append interviews $interview notes $'First meeting.\nSecond line, "quoted", tab\there.'
expect 0 a get interviews $interview
valid_json
has "$dir/out" '"text":"First meeting.\nSecond line, \"quoted\", tab\there."'
has "$dir/out" '"redacted":false,"revises":null'
# Once the operands begin, what looks like an option or a command is text.
expect 0 a append interviews $interview notes "--not-an-option"
expect 0 a append interviews $interview notes "sync"
expect 0 a get interviews $interview
has "$dir/out" '"text":"--not-an-option"'
has "$dir/out" '"text":"sync"'

echo "-- bad commands and bad input"
expect 0 "$carnet" --help
has "$dir/out" "usage: carnet --db PATH COMMAND"
expect 2 "$carnet" --db
one_error_line "--db needs a PATH"
expect 2 "$carnet" --verbose --db "$dir/a.db" list participants
one_error_line "unknown option '--verbose'"
expect 2 a
one_error_line "missing command"
expect 2 a get participants "$nadia" extra
one_error_line "usage: carnet --db PATH get COLLECTION ID"
expect 2 a resolve participants "$nadia" --restore phase x
one_error_line "usage: carnet --db PATH resolve"
expect 2 a frobnicate
one_error_line "unknown command 'frobnicate'"
expect 2 "$carnet" list participants
one_error_line "--db PATH is required"
expect 2 a get participants
one_error_line "usage: carnet --db PATH get COLLECTION ID"
expect 2 a put participants "$nadia" first_name
one_error_line "expected FIELD=VALUE"
expect 1 a get participants nobody
one_error_line "not_found"
expect 2 a list nothing
expect 0 a status
pending_before=$(cat "$dir/out")
expect 2 a put participants "$nadia" first_name=Changed no_such_field=1
one_error_line "unknown field 'no_such_field'"
expect 2 a put participants "$nadia" first_name=Changed phase=nope
one_error_line "phase"
expect 2 a put participants 'bad id!' first_name=X
expect 0 a get participants "$nadia"
has "$dir/out" '"first_name":"Nadia"'
expect 0 a status
[ "$(cat "$dir/out")" = "$pending_before" ] || fail "a refused put changed the outbox"

echo "-- carnet-server's own command line"
expect 0 "$server" devices --store "$store"
has "$dir/out" '"device":"tab-a"'
expect 2 "$server" devices --store "$store" --verbose
has "$dir/err" "usage: carnet-server COMMAND"
expect 2 "$server" frobnicate --store "$store"
has "$dir/err" "unknown command 'frobnicate'"
expect 2 "$server" devices
has "$dir/err" "--store is required"

echo "-- sync between two tablets"
expect 0 a sync
has "$dir/err" "sync: done"
expect 0 b sync
expect 0 b get participants "$nadia"
has "$dir/out" '"first_name":"Nadia"'
expect 0 b get interviews $interview
has "$dir/out" "First meeting."
expect 0 a status
valid_json
has "$dir/out" '"device":"tab-a"'
has "$dir/out" '"pending":0'
has "$dir/out" '"state":"idle"'

echo "-- concurrent puts make a conflict on both tablets"
expect 0 a put participants "$nadia" phase=job_search
expect 0 b put participants "$nadia" phase=health
expect 0 a sync
expect 0 b sync
expect 0 a sync
expect 0 a conflicts
valid_json
conflicts_a=$(cat "$dir/out")
has "$dir/out" '"kind":"concurrent_write"'
has "$dir/out" '"field":"phase"'
has "$dir/out" '"value":"job_search"'
has "$dir/out" '"value":"health"'
has "$dir/out" '"device":"tab-a"'
has "$dir/out" '"device":"tab-b"'
expect 0 b conflicts
[ "$(cat "$dir/out")" = "$conflicts_a" ] || fail "the tablets list different conflicts"
expect 0 a get participants "$nadia"
has "$dir/out" '"in_conflict":["phase"]'
expect 0 a resolve participants "$nadia" phase professional_project
expect 0 a sync
expect 0 b sync
expect 0 b conflicts
[ "$(cat "$dir/out")" = "[]" ] || fail "the resolved conflict is still listed: $(cat "$dir/out")"
expect 0 b get participants "$nadia"
has "$dir/out" '"phase":"professional_project"'

echo "-- a record deleted on one tablet while edited on the other"
expect 0 b delete interviews $interview
expect 0 a append interviews $interview notes "Written while b deleted it."
expect 0 b sync
expect 0 a sync
expect 0 b sync
expect 0 b conflicts
has "$dir/out" '"kind":"edited_while_deleted"'
expect 1 b get interviews $interview
expect 0 b resolve interviews $interview --restore
expect 0 b sync
expect 0 a sync
expect 0 a conflicts
[ "$(cat "$dir/out")" = "[]" ] || fail "the restore left conflicts: $(cat "$dir/out")"
expect 0 a get interviews $interview
has "$dir/out" "Written while b deleted it."

echo "-- sync without a server"
kill -TERM "$server_pid"
wait "$server_pid" || true
server_pid=
expect 0 a put participants "$nadia" phase=job_search
expect 1 a sync
has "$dir/err" "unavailable"
expect 0 a status
has "$dir/out" '"state":"offline"'
has "$dir/out" '"pending":1'
echo "PASS"
