#!/usr/bin/env bash
# Checks the documentation against the program (issue 28): (a) every command of `gaprune --help`
# is documented in docs/guide.md as `gaprune <command>`; (b) every job key of `gaprune help-job`
# (section.key) is documented in docs/ (as section.key, or as the key's line under [section],
# the way the help-job block in docs/guide.md lists it); (c) every relative link of README.md and
# docs/*.md (`](path)`, `](path#anchor)`; not http(s), mailto or a bare #anchor) names a file
# that exists; (d) README.md has at most 250 lines. Exit 1 naming every failure; run by
# `make test`. Usage: tests/check_docs.sh [BINARY [ROOT]]   (default build/gaprune, .)
#   tests/check_docs.sh --selftest [BINARY]   the check must fail on a copy of the docs given a
#                                             broken link, a missing key, a missing command and a
#                                             README that is too long (so that it can fail at all)
set -u
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
max_readme=250

# The job keys the binary knows, one section.key a line.
job_keys() { # BINARY
  "$1" help-job | awk '/^\[[a-z_]+\]$/ { s = substr($0, 2, length($0) - 2); next }
                       /^  [a-z_]+ / { if (s != "") { split($0, f, " "); print s "." f[1] }; next }
                       /^[^ ]/ { s = "" }'
}
# The section.key entries documented in FILES: written as section.key, or as "  key ..." lines
# under a "[section]" line (a help-job listing).
documented_keys() { # FILES...
  cat "$@" | awk '/^\[[a-z_]+\]$/ { s = substr($0, 2, length($0) - 2); next }
                  /^  [a-z_]+ / { if (s != "") { split($0, f, " "); print s "." f[1] }; next }
                  { s = "" }'
  grep -ohE '[a-z_]+\.[a-z_]+' "$@"
}

if [ "${1:-}" = "--selftest" ]; then
  bin=${2:-build/gaprune}
  case "$bin" in /*) ;; *) bin=$PWD/$bin ;; esac
  tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
  self=$(cd "$(dirname "$0")" && pwd)/$(basename "$0")
  fresh() { rm -rf "$tmp/t"; mkdir -p "$tmp/t/data"; cp -r README.md docs "$tmp/t/"; cp data/README.md "$tmp/t/data/"; }
  expect_fail() { # WHAT WANT
    local out
    out=$("$self" "$bin" "$tmp/t" 2>&1) && { echo "check_docs --selftest: no failure for $1"; exit 1; }
    grep -qF -- "$2" <<<"$out" || { echo "check_docs --selftest: failed for $1 without saying \"$2\": $out"; exit 1; }
  }
  fresh
  "$self" "$bin" "$tmp/t" >/dev/null || { echo "check_docs --selftest: the unchanged copy fails"; exit 1; }
  # a broken link in a docs file
  printf '\nSee [nowhere](no-such-file.md#x).\n' >>"$tmp/t/docs/scaling.md"
  expect_fail "a broken link" "docs/scaling.md: no-such-file.md"
  # a key whose only mention is its line in the help-job block, removed there
  fresh
  written=$(grep -ohE '[a-z_]+\.[a-z_]+' "$tmp"/t/docs/*.md | sort -u)
  key=$(job_keys "$bin" | grep -vxF -f <(printf '%s\n' "$written") | head -1)
  [ -n "$key" ] || { echo "check_docs --selftest: every key is also written as section.key; no key to remove"; exit 1; }
  awk -v s="[${key%%.*}]" -v k="${key#*.}" '$0 == s { in_s = 1; print; next }
    /^[^ ]/ { in_s = 0 } in_s && $1 == k { next } { print }' docs/guide.md >"$tmp/t/docs/guide.md"
  expect_fail "a missing key ($key)" "$key"
  # a command the guide does not name
  fresh
  sed -i 's/gaprune tokenize/gaprune tokenise/g' "$tmp/t/docs/guide.md"
  expect_fail "a missing command" "gaprune tokenize"
  # a README that is too long
  fresh
  seq 1 $max_readme >>"$tmp/t/README.md"
  expect_fail "a long README" "README.md has"
  echo "check_docs --selftest: a broken link, a missing key, a missing command and a long README are all caught"
  exit 0
fi

bin=${1:-build/gaprune}
case "$bin" in /*) ;; *) bin=$PWD/$bin ;; esac
cd "${2:-.}" || exit 2
bad=0
fail() { echo "check_docs: $*"; bad=1; }

help=$("$bin" --help) || { echo "check_docs: $bin --help failed"; exit 1; }
commands=$(awk '/^commands:/ { c = 1; next } c && /^  [a-z-]+ / { print $1; next } c && /^$/ { exit }' <<<"$help")
[ -n "$commands" ] || fail "$bin --help lists no commands"
for c in $commands; do
  grep -qE "gaprune $c([^a-z-]|\$)" docs/guide.md || fail "docs/guide.md does not document \`gaprune $c\`"
done

keys=$(job_keys "$bin") || { echo "check_docs: $bin help-job failed"; exit 1; }
[ -n "$keys" ] || fail "$bin help-job lists no keys"
have=$(documented_keys docs/*.md | sort -u)
for k in $keys; do
  grep -qxF "$k" <<<"$have" || fail "the job key $k is not documented in docs/"
done

for f in README.md docs/*.md; do
  dir=$(dirname "$f")
  # links outside fenced code blocks
  while IFS= read -r target; do
    case "$target" in http://*|https://*|mailto:*|'#'*|'') continue ;; esac
    path=${target%%#*}
    path=${path%% *}
    [ -e "$dir/$path" ] || fail "$f: $target: no such file ($dir/$path)"
  done < <(awk '/^ *```/ { code = !code; next } !code' "$f" | grep -oE '\]\([^)]*\)' | sed -E 's/^\]\((.*)\)$/\1/')
done

n=$(wc -l <README.md)
[ "$n" -le $max_readme ] || fail "README.md has $n lines, more than $max_readme: move the rest into docs/"

[ $bad -eq 0 ] && echo "check_docs: $(wc -w <<<"$commands") commands, $(wc -w <<<"$keys") job keys, the links of README.md and docs/*.md, README.md's $n lines: ok"
exit $bad
