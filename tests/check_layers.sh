#!/usr/bin/env bash
# Checks the layering of the sources (docs/guide.md "Layout of the sources"): a file may include headers of its own
# layer and of layers below it, never of a layer above, and no two modules include each other
# through any chain (a module is x.c with its header x.h). Exit 1 naming every offending
# include; run by `make test`. A command (src/cli) may moreover include only the job, the stages,
# core and dist (below). Usage: tests/check_layers.sh [ROOT]
#   tests/check_layers.sh --selftest   the check must fail on a copy of the tree given an
#                                      upward include, a cycle and a command including a model
#                                      header (so that it can fail at all)
set -u
if [ "${1:-}" = "--selftest" ]; then
  tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
  for case in "src/core/fs.c:gaprune/cli.h:a higher layer" "include/gaprune/model.h:gaprune/export.h:include each other" \
      "src/cli/sample_cmd.c:gaprune/model.h:a command may include"; do
    rm -rf "$tmp/t"; mkdir -p "$tmp/t"; cp -r src include "$tmp/t/"
    IFS='|' read -ra edits <<<"${case%:*}"
    want=${case##*:}
    for e in "${edits[@]}"; do printf '#include "%s"\n' "${e#*:}" >>"$tmp/t/${e%%:*}"; done
    out=$("$0" "$tmp/t" 2>&1) && { echo "check_layers --selftest: no failure for ${case%:*}"; exit 1; }
    grep -q "$want" <<<"$out" || { echo "check_layers --selftest: failed without saying \"$want\": $out"; exit 1; }
  done
  echo "check_layers --selftest: an upward include, a cycle and a command reaching below the stages are all caught"
  exit 0
fi
cd "${1:-.}" || exit 2
layers=(core dist text model nn data job stages cli main)
rank_of() { # layer name -> position
  local i
  for i in "${!layers[@]}"; do [ "${layers[$i]}" = "$1" ] && { echo "$i"; return; }; done
  echo -1
}
# The layer of a public header is the folder of the source file with the same name; the few
# headers that serve several sources of one folder, or none (file layouts), are named here.
declare -A extra=([prune]=nn [stats_file]=stages [sample_file]=stages [retrain_file]=stages)
header_layer() { # include/gaprune/NAME.h -> layer
  local name c
  name=$(basename "$1" .h)
  if [ -n "${extra[$name]:-}" ]; then echo "${extra[$name]}"; return; fi
  for c in src/*/"$name".c; do [ -e "$c" ] && { basename "$(dirname "$c")"; return; }; done
  echo ""
}
file_layer() { # a source file -> layer
  case "$1" in
    src/main.c) echo main ;;
    src/*/*) basename "$(dirname "$1")" ;;
    include/gaprune/*.h) header_layer "$1" ;;
  esac
}
# The command line only parses arguments and calls stages, so that another front end (a Slurm
# step, a library user) finds all the work behind stage functions: a file of the cli layer may
# include headers of these layers only. dist is among them for gp_agree, gp_rank and gp_nranks
# (every rank agrees on a bad argument before any work, only rank 0 prints) and for the output
# folder's lock (lock.h), which a command takes between checking its input and the work.
cli_layers=" core dist job stages cli "
# Commands not yet moved behind stage functions, each as [src/cli/x.c]="header ..." with a
# comment saying why it still needs them. Empty since issue 28 moved the last (run_cmd.c). A
# header listed here that the file no longer includes fails the check, so the list stays exact.
declare -A cli_exceptions=()
bad=0
edges=$(mktemp)
trap 'rm -f "$edges"' EXIT
for h in include/gaprune/*.h; do
  [ -n "$(header_layer "$h")" ] || { echo "check_layers: $h: no source file of the same name; name its layer in tests/check_layers.sh"; bad=1; }
done
for f in src/main.c src/*/*.c src/*/*.h include/gaprune/*.h; do
  fl=$(file_layer "$f"); fr=$(rank_of "$fl")
  [ "$fr" -ge 0 ] || { echo "check_layers: $f: folder \"$fl\" is not a layer (${layers[*]})"; bad=1; continue; }
  mod=$(basename "$f"); mod=${mod%.*}
  while IFS= read -r inc; do
    h="include/$inc"
    [ -e "$h" ] || continue
    hl=$(header_layer "$h"); hr=$(rank_of "$hl")
    if [ "$hr" -gt "$fr" ]; then
      echo "check_layers: $f ($fl) includes $inc ($hl), a higher layer"
      bad=1
    fi
    dep=$(basename "$inc" .h)
    if [ "$fl" = cli ] && [[ "$cli_layers" != *" $hl "* ]] && [[ " ${cli_exceptions[$f]:-} " != *" $dep "* ]]; then
      echo "check_layers: $f includes $inc ($hl): a command may include core, dist, job and stages only (move the work behind a stage, or list it in cli_exceptions in tests/check_layers.sh with why)"
      bad=1
    fi
    [ "$dep" != "$mod" ] && echo "$mod $dep" >>"$edges"
  done < <(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\(gaprune\/[^"]*\)".*/\1/p' "$f")
done
for f in "${!cli_exceptions[@]}"; do
  for dep in ${cli_exceptions[$f]}; do
    grep -q "^[[:space:]]*#[[:space:]]*include[[:space:]]*\"gaprune/$dep\.h\"" "$f" 2>/dev/null ||
      { echo "check_layers: $f no longer includes gaprune/$dep.h; take it out of cli_exceptions in tests/check_layers.sh"; bad=1; }
  done
done
if ! tsort "$edges" >/dev/null 2>"$edges.err"; then
  echo "check_layers: modules that include each other:"
  sed 's/^/  /' "$edges.err"
  bad=1
fi
rm -f "$edges.err"
if [ "$bad" -eq 0 ]; then
  echo "check_layers: $(ls src/*/*.c src/main.c | wc -l) sources and $(ls include/gaprune/*.h | wc -l) headers in ${#layers[@]} layers (${layers[*]}): no upward include, no cycle; commands include${cli_layers% } only, ${#cli_exceptions[@]} listed exceptions"
fi
exit "$bad"
