# Plots the load generator's step table (loadgen --csv FILE): throughput
# (accepted, placed, cleared end to end per second) and p99 submit -> placed
# against the offered load, as a PNG.
#
#   gnuplot -e "in='steps.csv'; out='loadgen.png'" bench/plot_loadgen.gp
#
# Needs gnuplot with the pngcairo terminal (Debian: gnuplot-nox, installed
# by scripts/setup.sh).
if (!exists("in")) in = 'loadgen.csv'
if (!exists("out")) out = 'loadgen.png'
if (!exists("title")) title = 'ComputeNet broker under open-loop load'

set terminal pngcairo size 1000,900 font 'DejaVu Sans,11'
set output out
set datafile separator ','
set key autotitle columnhead
set multiplot layout 2,1 title title font ',13'

set logscale x 10
set logscale y 10
set grid xtics ytics mxtics mytics lc rgb '#dddddd'
set xlabel 'offered load (jobs/s)'
set xrange [50:40000]

set ylabel 'jobs/s'
set key bottom right
plot in using 1:1 with lines dt 2 lc rgb '#999999' title 'offered (ideal)', \
     '' using 1:2 with linespoints pt 7 lw 2 title 'accepted', \
     '' using 1:3 with linespoints pt 5 lw 2 title 'placed', \
     '' using 1:4 with linespoints pt 9 lw 2 title 'cleared end to end (usage settled)', \
     20000 with lines dt 3 lc rgb '#cc0000' title 'target: 20,000 accepted/s'

set ylabel 'submit -> placed (ms)'
set key top right
plot in using 1:7 with linespoints pt 7 lw 2 title 'p99', \
     '' using 1:6 with linespoints pt 5 lw 2 title 'p50', \
     '' using 1:8 with linespoints pt 9 lw 1 title 'p99.9', \
     5 with lines dt 3 lc rgb '#cc0000' title 'target: p99 < 5 ms at 10,000/s'
unset multiplot
