#!/usr/bin/env bash
# Side by side: Sigstore's Rekor v2 (rekor-tiles, POSIX build) and
# `trustfabric serve` (POSIX), driven by the same closed loop: C clients, each
# with exactly one request in flight, starting requests for DURATION, on a
# fresh server and data directory per point. Entries/s and latency are those
# of the answers that arrive between WARMUP and DURATION (wrk-style: the
# first burst and the drain are not measured); server CPU per entry counts all
# the entries of the point. Issue 12 item 7; figures in
# docs/benchmarks.md and bench/peers/rekor/README.md. Not run by .ci/run.
#
#   bench/peers/rekor/run.sh [C ...]          (default C: 64 256 1024 2048 4096)
#
# Environment (all optional):
#   DURATION=20s         how long clients start requests at each point
#   WARMUP=5s            answers before this are not measured
#   TF=/path/trustfabric a prebuilt trustfabric (default: built from this checkout)
#   TF_CONFIG_EXTRA='checkpoint_interval: 50ms'   lines added to serve's --config
#   REKOR_ARGS='--checkpoint-interval 100ms --batch-max-age 100ms --persistent-antispam --server-timeout 60s'
#   SYSTEMS='trustfabric rekor'
#
# Rekor v2 is built once from the Go module proxy in a scratch module under
# ~/.cache/trustfabric/rekor-build and cached as
# ~/.cache/trustfabric/bin/rekor-server-posix-$REKOR_VERSION.
#
# Per point and system it prints the load generator's report, then one RESULT
# line; at the end a table with the ratios Trustfabric/Rekor. Server CPU is the
# utime+stime delta of the server process (/proc/PID/stat) across the load
# generator's run, divided by the entries registered; peak RSS is the server's
# VmHWM (/proc/PID/status) at the end of the point. Both are read by the same
# functions for both servers.
set -euo pipefail

REKOR_VERSION=v2.3.0
REKOR_PKG=github.com/sigstore/rekor-tiles/v2/cmd/rekor-server/posix
duration=${DURATION:-20s}
warmup=${WARMUP:-5s}
systems=${SYSTEMS:-trustfabric rekor}
rekor_args=${REKOR_ARGS:---checkpoint-interval 100ms --batch-max-age 100ms --persistent-antispam --server-timeout 60s}
clients=("$@")
[ ${#clients[@]} -gt 0 ] || clients=(64 256 1024 2048 4096)
for c in "${clients[@]}"; do
  [[ $c =~ ^[1-9][0-9]*$ ]] || { echo "usage: $0 [C ...] (C a positive integer, got $c)" >&2; exit 2; }
done
[[ $duration =~ ^[0-9]+s$ ]] || { echo "DURATION: want whole seconds like 20s, got $duration" >&2; exit 2; }
[[ $warmup =~ ^[0-9]+s$ ]] || { echo "WARMUP: want whole seconds like 5s, got $warmup" >&2; exit 2; }
dur_s=${duration%s}
[ "${warmup%s}" -lt "$dur_s" ] || { echo "WARMUP must be shorter than DURATION" >&2; exit 2; }

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
cache=$HOME/.cache/trustfabric
rekor=$cache/bin/rekor-server-posix-$REKOR_VERSION

# Build Rekor v2 once (scratch module: none of its dependencies reach go.mod).
if [ ! -x "$rekor" ]; then
  echo "building Rekor $REKOR_VERSION into $rekor (once)" >&2
  mkdir -p "$cache/rekor-build" "$cache/bin"
  (
    cd "$cache/rekor-build"
    printf 'module trustfabric.local/rekorbuild\n\ngo 1.26\n' >go.mod
    printf '//go:build tools\n\npackage rekorbuild\n\nimport _ "%s"\n' "$REKOR_PKG" >tools.go
    GOFLAGS=-mod=mod go get "$REKOR_PKG@$REKOR_VERSION"
    go build -o "$rekor.tmp" "$REKOR_PKG"
    mv "$rekor.tmp" "$rekor"
  )
fi

# Work directory (data directories, keys, reports) under the cache, not /tmp:
# on a shared machine other jobs sweep /tmp. Removed at exit.
mkdir -p "$cache/peer-rekor"
work=$(mktemp -d "$cache/peer-rekor/run.XXXXXX")
server_pid=""
stop_server() {
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
  fi
}
cleanup() { stop_server; rm -rf "$work"; }
trap cleanup EXIT

tf=${TF:-}
if [ -z "$tf" ]; then
  tf=$work/trustfabric
  (cd "$root" && go build -o "$tf" ./cmd/trustfabric)
fi
load=$work/rekorload
(cd "$root" && go build -o "$load" ./devtools/rekorload)

# Many connections per side at C=4096.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

"$tf" key generate --out "$work/issuer.jwk" --public-out "$work/issuer.pub.jwk" >/dev/null
"$tf" key generate --out "$work/ts.jwk" --public-out "$work/ts.pub.jwk" >/dev/null
"$load" keygen "$work/rekor-signer.pem"
# Connections per client address above the largest C (one IP sends them all);
# shipped defaults otherwise.
{
  echo "issuer: https://bench.trustfabric.test"
  echo "max_connections_per_client: 16384"
  [ -z "${TF_CONFIG_EXTRA:-}" ] || printf '%s\n' "$TF_CONFIG_EXTRA"
} >"$work/serve.yaml"

tck=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
vmhwm_kib() { awk '/^VmHWM/ {print $2}' "/proc/$1/status"; }
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

# start_trustfabric DIR: sets server_pid and url.
start_trustfabric() {
  "$tf" serve --addr 127.0.0.1:0 --data "$1/data" --config "$work/serve.yaml" --trust-key "$work/issuer.pub.jwk" \
    --key "$work/ts.jwk" --log-level warn >"$1/serve.out" 2>"$1/serve.err" &
  server_pid=$!
  local addr=""
  for _ in $(seq 300); do
    addr=$(sed -n 's/^listening on //p' "$1/serve.out")
    [ -n "$addr" ] && break
    kill -0 "$server_pid" 2>/dev/null || { cat "$1/serve.err" >&2; exit 1; }
    sleep 0.1
  done
  [ -n "$addr" ] || { echo "trustfabric serve did not start" >&2; exit 1; }
  url=http://$addr
}

# start_rekor DIR: sets server_pid and url.
start_rekor() {
  local ports
  mapfile -t ports < <("$load" freeport 3)
  # shellcheck disable=SC2086 # REKOR_ARGS is a list of flags
  "$rekor" serve --http-address 127.0.0.1 --http-port "${ports[0]}" --grpc-address 127.0.0.1 --grpc-port "${ports[1]}" \
    --http-metrics-port "${ports[2]}" --hostname bench.rekor.test --storage-dir "$1/log" \
    --signer-filepath "$work/rekor-signer.pem" --log-level warn $rekor_args >"$1/serve.out" 2>"$1/serve.err" &
  server_pid=$!
  url=http://127.0.0.1:${ports[0]}
  for _ in $(seq 300); do
    curl -fsS "$url/healthz" 2>/dev/null | grep -q SERVING && return
    kill -0 "$server_pid" 2>/dev/null || { cat "$1/serve.err" >&2; exit 1; }
    sleep 0.1
  done
  echo "rekor-server did not start" >&2
  exit 1
}

# to_ms DURATION (Go format: 980.2ms, 1.0023s, 850µs) -> milliseconds.
to_ms() {
  awk -v d="$1" 'BEGIN {
    if (d ~ /ms$/) { sub(/ms$/, "", d); print d + 0 }
    else if (d ~ /(µs|us)$/) { sub(/(µs|us)$/, "", d); print d / 1000 }
    else if (d ~ /m[0-9.]+s$/) { split(d, a, "m"); sub(/s$/, "", a[2]); print (a[1] * 60 + a[2]) * 1000 }
    else { sub(/s$/, "", d); print d * 1000 } }'
}

results=$work/results
: >"$results"
echo "== Rekor $REKOR_VERSION ($rekor_args) vs trustfabric serve (POSIX, shipped timings${TF_CONFIG_EXTRA:+ except $TF_CONFIG_EXTRA}); closed loop, $duration per point (measured from $warmup); C: ${clients[*]}"
echo "== $(nproc) CPUs, $(go version | cut -d' ' -f3), load average at start $(loadavg)"
for c in "${clients[@]}"; do
  for sys in $systems; do
    dir=$work/$sys-$c
    mkdir -p "$dir"
    la0=$(loadavg)
    case $sys in
      trustfabric)
        start_trustfabric "$dir"
        # Pool: at most one registration per 100 ms per client, capped at 10,000/s
        # (a run that exhausts it ends its measured window there).
        pool=$(( (c * 10 < 10000 ? c * 10 : 10000) * dur_s ))
        cmd=("$tf" bench register --ts "$url" --key "$work/issuer.jwk" --concurrency "$c" --window 1 --sync
          --duration "$duration" --warmup "$warmup" --count "$pool")
        ;;
      rekor)
        start_rekor "$dir"
        # Pool: Rekor answers after ≥ 1 s (its checkpoint poll), capped at 2,000/s.
        pool=$(( (c < 2000 ? c : 2000) * dur_s + c ))
        cmd=("$load" run --url "$url" --origin bench.rekor.test --signer "$work/rekor-signer.pem" --clients "$c"
          --duration "$duration" --warmup "$warmup" --count "$pool")
        ;;
      *) echo "SYSTEMS: unknown system $sys" >&2; exit 2 ;;
    esac
    echo "-- $sys, C=$c (pool $pool), load average $la0"
    t0=$(cpu_ticks "$server_pid")
    status=0
    "${cmd[@]}" >"$dir/bench.out" 2>&1 || status=$?
    t1=$(cpu_ticks "$server_pid")
    hwm=$(vmhwm_kib "$server_pid")
    stop_server
    cat "$dir/bench.out"
    if [ "$status" -ne 0 ]; then
      echo "!! $sys C=$c: load generator failed (exit $status); server log tail:" >&2
      tail -5 "$dir/serve.err" >&2
      continue
    fi
    n=$(sed -n 's/^registrations: *\([0-9]*\) .*/\1/p' "$dir/bench.out")
    rate=$(sed -n 's/^throughput: *\([0-9.]*\) .*/\1/p' "$dir/bench.out")
    read -r p50 p99 < <(sed -n 's/^receipt latency p50 \([^ ]*\) *p90 [^ ]* *p99 \([^ ]*\) .*/\1 \2/p' "$dir/bench.out")
    verified=$(sed -n 's/^verified: *\([0-9]*\/[0-9]*\) .*/\1/p' "$dir/bench.out")
    awk -v s="$sys" -v c="$c" -v n="$n" -v r="$rate" -v p50="$(to_ms "$p50")" -v p99="$(to_ms "$p99")" -v v="$verified" \
      -v u="$((t1 - t0))" -v t="$tck" -v h="$hwm" -v la="$la0" 'BEGIN {
      printf "RESULT %s C=%d entries=%d rate=%s p50_ms=%.0f p99_ms=%.0f verified=%s cpu_us=%.0f vmhwm_mib=%.1f load=%s\n",
        s, c, n, r, p50, p99, v, u / t / n * 1e6, h / 1024, la }' | tee -a "$results"
  done
done

echo
echo "== load average at the end $(loadavg)"
echo
echo "| C | system | entries/s | p50 | p99 | verified | server CPU / entry | peak RSS (VmHWM) |"
echo "|---|---|---|---|---|---|---|---|"
awk '{
  for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
  printf "| %s | %s | %s | %s ms | %s ms | %s | %s µs | %s MiB |\n", v["C"], $2, v["rate"], v["p50_ms"], v["p99_ms"], v["verified"], v["cpu_us"], v["vmhwm_mib"]
}' "$results"
echo
echo "| C | entries/s TF/Rekor | p50 TF/Rekor | p99 TF/Rekor | CPU per entry TF/Rekor | peak RSS TF/Rekor |"
echo "|---|---|---|---|---|---|"
awk '{
  s = $2; c = $3; sub(/^C=/, "", c)
  for (i = 4; i <= NF; i++) { split($i, kv, "="); m[s, c, kv[1]] = kv[2] }
  if (!(c in seen)) { seen[c] = 1; order[++k] = c }
} END {
  for (j = 1; j <= k; j++) {
    c = order[j]
    if (m["trustfabric", c, "rate"] == "" || m["rekor", c, "rate"] == "") continue
    printf "| %s | %.1fx | %.2fx | %.2fx | %.2fx | %.2fx |\n", c,
      m["trustfabric", c, "rate"] / m["rekor", c, "rate"], m["trustfabric", c, "p50_ms"] / m["rekor", c, "p50_ms"],
      m["trustfabric", c, "p99_ms"] / m["rekor", c, "p99_ms"], m["trustfabric", c, "cpu_us"] / m["rekor", c, "cpu_us"],
      m["trustfabric", c, "vmhwm_mib"] / m["rekor", c, "vmhwm_mib"]
  }
}' "$results"
