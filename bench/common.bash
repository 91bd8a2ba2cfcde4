# Shared by bench/run and its companion scripts: the table's row format, the statistics of a column
# of ratios, and the CPU every run is pinned to.

row() { printf '%-44s %-10s %-10s %-13s %-8s %-7s %s\n' "$@"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.4f", a / b}'; }
median() { sort -g | awk '{v[NR] = $1} END {print NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
spread() { sort -g | awk 'NR == 1 {lo = $1} {hi = $1} END {printf "%.3f-%.3f", lo, hi}'; }
verdict() { awk -v x="$1" -v goal="$2" 'BEGIN {print (x <= goal ? "ok" : "MISS")}'; }
at_least() { awk -v x="$1" -v goal="$2" 'BEGIN {print (x >= goal ? "ok" : "MISS")}'; }

# Every run is pinned to one CPU (the last one we may use), with its TCP peer beside it: left to
# migrate, the same TCP run varied by +-10% here; pinned, by about +-3%.
pin=()
cpu=$(awk '/^Cpus_allowed_list:/ {n = split($2, c, /[,-]/); print c[n]}' /proc/self/status)
command -v taskset > /dev/null && [[ -n $cpu ]] && pin=(taskset -c "$cpu")
