#!/usr/bin/env bash
# Draws the simulator's PNGs (docs/simulation.md) from the CSV files of
#   computenet-sim ... --out CSV_DIR
# Usage: sim/plot.sh CSV_DIR OUT_DIR
# Makes sim_utilization.png (utilization per region over simulated time, one
# panel per policy), sim_wait_cdf.png (wait-time CDFs of every policy) and
# sim_clearing.png (the clearing matrix of each forwarding policy as a heat
# map). Needs gnuplot (gnuplot-nox, scripts/setup.sh).
set -euo pipefail
csv=${1:?usage: sim/plot.sh CSV_DIR OUT_DIR}
out=${2:?usage: sim/plot.sh CSV_DIR OUT_DIR}
mkdir -p "$out"
policies=()
for p in local-only local-first global-cheapest wait-aware; do
  [[ -f "$csv/util_$p.csv" ]] && policies+=("$p")
done
[[ ${#policies[@]} -gt 0 ]] || { echo "plot.sh: no util_*.csv in $csv" >&2; exit 1; }
mapfile -t regions < "$csv/regions.txt"
n=${#regions[@]}
tics=""
for i in "${!regions[@]}"; do tics+="${tics:+, }\"${regions[$i]}\" $i"; done

{
  echo "set terminal pngcairo size 1400,900 font ',10'"
  echo "set output '$out/sim_utilization.png'"
  echo "set datafile separator ','"
  echo "set multiplot layout 2,2 title 'Utilization per region over simulated time'"
  echo "set yrange [0:1.05]; set xlabel 'simulated hours'; set ylabel 'cards held'"
  echo "set key outside right top font ',8'"
  for p in "${policies[@]}"; do
    echo "set title '$p'"
    echo "plot for [i=2:$((n + 1))] '$csv/util_$p.csv' using 1:i with lines lw 1.5 title columnhead(i)"
  done
  echo "unset multiplot"

  echo "set output '$out/sim_wait_cdf.png'"
  echo "set terminal pngcairo size 900,600 font ',10'"
  echo "set title 'Job wait (arrival at home to start), all regions'"
  echo "set logscale x; set xrange [1:*]; set yrange [0:1]"
  echo "set xlabel 'wait (s, log)'; set ylabel 'share of placed jobs'; set key bottom right"
  printf "plot "
  first=1
  for p in "${policies[@]}"; do
    [[ $first -eq 1 ]] || printf ", "
    printf "'%s' using (\$1 < 1 ? 1 : \$1):2 skip 1 with lines lw 2 title '%s'" "$csv/waits_$p.csv" "$p"
    first=0
  done
  echo
  echo "unset logscale x"

  forwarding=()
  for p in "${policies[@]}"; do [[ $p == local-only ]] || forwarding+=("$p"); done
  if [[ ${#forwarding[@]} -gt 0 ]]; then
    echo "set terminal pngcairo size $((520 * ${#forwarding[@]})),560 font ',9'"
    echo "set output '$out/sim_clearing.png'"
    echo "set datafile separator whitespace"
    echo "set multiplot layout 1,${#forwarding[@]} title 'Clearing matrix: row owes column (thousands of minor units)'"
    echo "set xtics ($tics) rotate by 45 right; set ytics ($tics)"
    echo "set xrange [-0.5:$((n - 1)).5]; set yrange [$((n - 1)).5:-0.5]; unset key"
    echo "set xlabel 'to'; set ylabel 'owes'; set palette defined (0 'white', 1 'orange', 2 'red')"
    echo "set autoscale cbfix; set cbrange [0:*]"
    for p in "${forwarding[@]}"; do
      echo "set title '$p'"
      echo "plot '$csv/clearing_$p.csv' matrix using 1:2:(\$3/1000) with image"
    done
    echo "unset multiplot"
  fi
} | gnuplot
echo "plot.sh: wrote $out/sim_utilization.png $out/sim_wait_cdf.png $out/sim_clearing.png"
