#!/usr/bin/env bash
# Load test of `trustfabric serve` on each storage backend, for
# docs/benchmarks.md (not run by .ci/run):
#
#   .ci/bench-storage.sh posix|aws|aws2 COUNT [CONCURRENCY] [WINDOW]
#
# posix: one server on a fresh data directory. aws: one server on a fresh
# database and bucket prefix (TF_DB_DSN, TF_S3_* and AWS_* as printed by
# `.ci/backends.sh up DIR`). aws2: two replicas on the same database and
# bucket, each driven by its own `bench register` with half the statements
# and half the clients, at the same time.
#
# Prints `bench register`'s report(s), then per server its peak RSS (VmHWM),
# the peaks of its Go heap in use and goroutine stacks (sampled from
# /metrics every 2 s), the goroutines at that peak, and CPU time
# (utime+stime) per registration, and how many lines it logged (at warn and
# above unless TF_LOG_LEVEL says otherwise) with the first few. TF names the
# binary (default: built from this checkout).
set -euo pipefail

mode=${1:-}; count=${2:-}; conc=${3:-64}; window=${4:-20}
case $mode in posix|aws|aws2) ;; *) echo "usage: $0 posix|aws|aws2 COUNT [CONCURRENCY] [WINDOW]" >&2; exit 2 ;; esac
[ -n "$count" ] || { echo "usage: $0 $mode COUNT [CONCURRENCY] [WINDOW]" >&2; exit 2; }

work=$(mktemp -d /tmp/tf-bench.XXXXXX)
pids=()
db_drop=""
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ -n "$db_drop" ]; then eval "$db_drop" || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

tf=${TF:-}
if [ -z "$tf" ]; then
  tf="$work/tf"
  go build -o "$tf" ./cmd/trustfabric
fi
"$tf" key generate --out "$work/issuer.jwk" --public-out "$work/issuer.pub.jwk" >/dev/null
"$tf" key generate --out "$work/ts.jwk" --public-out "$work/ts.pub.jwk" >/dev/null

storage=()
replicas=1
if [ "$mode" != posix ]; then
  : "${TF_DB_DSN:?run: eval \"\$(.ci/backends.sh up DIR)\"}" "${TF_S3_BUCKET:?}" "${TF_S3_ENDPOINT:?}"
  # A fresh database (the backends.sh user may create trustfabric_test_*) and
  # object prefix per run.
  re='^([^:]+):([^@]*)@tcp\(([^:]+):([0-9]+)\)/([^?]+)'
  [[ $TF_DB_DSN =~ $re ]] || { echo "TF_DB_DSN: want user:pass@tcp(host:port)/db" >&2; exit 2; }
  u=${BASH_REMATCH[1]} pw=${BASH_REMATCH[2]} h=${BASH_REMATCH[3]} port=${BASH_REMATCH[4]} db=${BASH_REMATCH[5]}
  suffix=$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')
  name="${db}_test_bench_$suffix"
  MYSQL_PWD=$pw mariadb -u"$u" -h"$h" -P"$port" -e "CREATE DATABASE $name"
  db_drop="MYSQL_PWD='$pw' mariadb -u'$u' -h'$h' -P'$port' -e 'DROP DATABASE $name'"
  storage=(--storage aws --db "$u:$pw@tcp($h:$port)/$name" --s3-bucket "$TF_S3_BUCKET"
    --s3-endpoint "$TF_S3_ENDPOINT" --s3-path-style --s3-prefix "bench-$suffix")
  [ "$mode" = aws2 ] && replicas=2
fi

urls=()
for i in $(seq "$replicas"); do
  "$tf" serve --addr 127.0.0.1:0 --data "$work/data$i" --trust-key "$work/issuer.pub.jwk" --key "$work/ts.jwk" \
    --issuer https://bench.example.com --log-level ${TF_LOG_LEVEL:-warn} "${storage[@]}" >"$work/serve$i.out" 2>"$work/serve$i.err" &
  pids+=($!)
  for _ in $(seq 300); do
    addr=$(sed -n 's/^listening on //p' "$work/serve$i.out")
    [ -n "$addr" ] && break
    kill -0 "${pids[-1]}" 2>/dev/null || { cat "$work/serve$i.err" >&2; exit 1; }
    sleep 0.1
  done
  [ -n "$addr" ] || { echo "server $i did not start" >&2; exit 1; }
  urls+=("http://$addr")
done

tck=$(getconf CLK_TCK)
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
declare -a cpu0
for i in "${!pids[@]}"; do cpu0[i]=$(cpu "${pids[i]}"); done

# Sample each server's Go memory while the load runs: the peak heap in use
# (live objects plus garbage not yet collected), stacks and goroutines.
spids=()
for i in "${!urls[@]}"; do
  ( while kill -0 "${pids[i]}" 2>/dev/null; do
      curl -s "${urls[i]}/metrics" | awk '/^go_memstats_heap_inuse_bytes /{h=$2} /^go_memstats_stack_inuse_bytes /{s=$2}
        /^go_goroutines /{g=$2} END {if (h != "") printf "%d %d %d\n", h, s, g}'
      sleep 2
    done >"$work/mem$i" ) &
  spids+=($!)
done

echo "== $mode: $count registrations, $conc clients x window $window, $replicas server(s); load average $(cut -d' ' -f1-3 /proc/loadavg)"
bpids=()
for i in "${!urls[@]}"; do
  "$tf" bench register --ts "${urls[i]}" --key "$work/issuer.jwk" --count $((count / replicas)) \
    --concurrency $((conc / replicas)) --window "$window" --sync >"$work/bench$i.out" 2>&1 &
  bpids+=($!)
done
status=0
for p in "${bpids[@]}"; do wait "$p" || status=1; done
for i in "${!urls[@]}"; do
  [ "$replicas" -gt 1 ] && echo "-- bench against replica $((i + 1))"
  cat "$work/bench$i.out"
done
for p in "${spids[@]}"; do kill "$p" 2>/dev/null || true; done
for i in "${!pids[@]}"; do
  awk -v i="$((i + 1))" '$1 > h {h = $1; g = $3} $2 > s {s = $2} END {
    printf "server %d: Go heap in use peak %.1f MiB, stacks peak %.1f MiB, %d goroutines at the heap peak\n", i, h / 1048576, s / 1048576, g }' "$work/mem$i"
  hwm=$(awk '/^VmHWM/ {print $2}' "/proc/${pids[i]}/status")
  used=$(( $(cpu "${pids[i]}") - cpu0[i] ))
  awk -v h="$hwm" -v u="$used" -v t="$tck" -v n="$count" -v r="$replicas" -v i="$((i + 1))" 'BEGIN {
    printf "server %d: VmHWM %.1f MiB, CPU %.1f s = %.0f us per registration (of all %d)\n", i, h / 1024, u / t, u / t / n * 1e6, n }'
  # What the server logged at warn and above: the count and the first lines.
  n=$(grep -c . "$work/serve$((i + 1)).err" || true)
  echo "server $((i + 1)): $n log lines at warn and above"
  head -c 2000 "$work/serve$((i + 1)).err" | head -n 5
done
exit $status
