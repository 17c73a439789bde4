set terminal svg size 900,520 dynamic
set output 'bench/results/get_put_by_size.svg'
set title 'same-thread get+put (ns/op, median)'
set logscale xy
set xlabel 'buffer size (bytes)'
set ylabel 'ns/op'
set key outside right
set grid
plot for [i=2:14] 'bench/results/plot.dat' using 1:i with linespoints title columnheader(i)
set output 'bench/results/cross_thread.svg'
unset logscale
set logscale y
set title 'cross-thread hand-off and fan-out (ns/op, median)'
set style data histograms
set style fill solid 0.8
set xtics rotate by -30
set xlabel ''
plot 'bench/results/bars.dat' using 2:xtic(1) title 'hand-off (d)', '' using 3 title 'fan-out (c)'
set output 'bench/results/scaling.svg'
unset logscale
set title 'get+put 4 KiB throughput (million ops/s)'
set ylabel 'Mops/s'
plot 'bench/results/bars.dat' using 4:xtic(1) title '1 thread', '' using 5 title '2 threads'
