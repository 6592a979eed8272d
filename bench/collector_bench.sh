#!/usr/bin/env bash
# collector_bench.sh — end-to-end collector benchmark (SPEC §8), flowsec against nfcapd on
# the same input, same machine, same run. Not a test: it prints figures and ratios.
#
#   cmake --preset release && cmake --build --preset release -j2
#   bench/collector_bench.sh            # ~5 minutes with the defaults below
#
# Part 1, UDP in → files. For every rate step (datagrams/s, 25 IPFIX records each, from
# build/release/bench/flowgen) and every target — flowsec -D b (binary IPFIX files),
# flowsec -D j (JSON lines), nfcapd — it starts the collector (own temporary directory,
# free port), sends for DURATION seconds, waits until the collector is idle, reads its CPU
# time (utime+stime of /proc/PID/stat, start-up excluded) and the socket's kernel drops
# (/proc/net/udp "drops"), stops it with SIGTERM by PID and counts the records stored:
# flowsec -D b: flowsec_output_records_written_total (cross-checked once with ipfixDump -s),
# flowsec -D j: lines in the files, nfcapd: `nfdump -R DIR -I` "Flows:". A run is loss-free
# when stored == sent. Every step runs REPEAT times; tables give medians.
# Part 2, TLS vs TCP in → -D b: flowgen over tcp and tls, first at STREAM_RATE messages/s
# (both loss-free: CPU per record compares like with like), then at --rate 0 (as fast as the
# collector takes it); records/s stored, records per CPU-second, TLS/TCP CPU ratio.
#
# Environment: BUILD (build/release), RATES ("25000 50000 100000 150000 200000 300000"),
# DURATION (3), REPEAT (2), RPM (records per message, 25), EXPORTERS (4), STREAM_DURATION (4),
# STREAM_RATE (40000),
# TARGETS ("fsb fsj nfcapd"), CERTS (made with scripts/make-test-certs.sh if missing).
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
BUILD=${BUILD:-$repo/build/release}
FLOWSEC=$BUILD/src/app/flowsec
FLOWGEN=$BUILD/bench/flowgen
RATES=${RATES:-"25000 50000 100000 150000 200000 300000"}
DURATION=${DURATION:-3}
REPEAT=${REPEAT:-2}
RPM=${RPM:-25}
EXPORTERS=${EXPORTERS:-4}
STREAM_DURATION=${STREAM_DURATION:-4}
STREAM_RATE=${STREAM_RATE:-40000}
TARGETS=${TARGETS:-"fsb fsj nfcapd"}
work=$(mktemp -d /tmp/collector-bench.XXXXXX)
CERTS=${CERTS:-$work/certs}
HZ=$(getconf CLK_TCK)
pid=

for x in "$FLOWSEC" "$FLOWGEN"; do
  [ -x "$x" ] || { echo "missing $x: build the release preset first" >&2; exit 1; }
done
command -v nfcapd >/dev/null || { echo "nfcapd missing (apt-get install nfdump)" >&2; exit 1; }

cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then kill -TERM "$pid"; wait "$pid" 2>/dev/null; fi
  rm -rf "$work"
}
trap cleanup EXIT

free_port() {  # a port free for both udp and tcp
  python3 -c 'import socket
while True:
    t=socket.socket(); t.bind(("127.0.0.1",0)); p=t.getsockname()[1]
    u=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)
    try:
        u.bind(("127.0.0.1",p)); print(p); break
    except OSError: pass'
}
cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
# /proc/net/udp: local_address is ADDR:PORT in hex; "drops" is the last column.
udp_line() { awk -v p=$(printf ':%04X' "$1") '$2 ~ p"$" {print; exit}' /proc/net/udp; }
udp_drops() { udp_line "$1" | awk '{print $NF}'; }
udp_queue() { local q; q=$(udp_line "$1" | awk '{split($5,a,":"); print a[2]}'); echo $((16#${q:-0})); }
metric() {  # sum of a flowsec metric (all label sets)
  curl -s "http://127.0.0.1:$1/metrics" |
    awk -v m="$2" '$1==m || index($1, m"{")==1 {s+=$NF} END {printf "%.0f\n", s+0}'
}
median() { sort -g | awk '{a[NR]=$1} END {if (NR==0) print "nan"; else if (NR%2) print a[(NR+1)/2]; else printf "%.0f\n", (a[NR/2]+a[NR/2+1])/2}'; }

# Waits until the collector has taken everything: socket queue empty and CPU time flat.
wait_idle() {  # PID PORT(udp or "") [METRICS_PORT]
  local last=-1 now same=0 i
  for i in $(seq 1 100); do
    now=$(cpu_ticks "$1")
    if [ -n "$2" ] && [ "$(udp_queue "$2")" != "0" ]; then same=0
    elif [ -n "${3:-}" ] && [ "$(metric "$3" flowsec_output_queue_records)" != "0" ]; then same=0
    elif [ "$now" = "$last" ]; then same=$((same + 1)); [ $same -ge 2 ] && return 0
    else same=0; fi
    last=$now
    sleep 0.2
  done
}

start_collector() {  # TARGET DIR PORT MPORT SCHEME -> sets pid
  local t=$1 dir=$2 port=$3 mport=$4 scheme=${5:-udp}
  case $t in
    fsb | fsj)
      local fmt=b; [ "$t" = fsj ] && fmt=j
      local tls=()
      [ "$scheme" = tls ] && tls=(--tls-cert "$CERTS/server.pem" --tls-priv-key "$CERTS/server.key")
      "$FLOWSEC" -i none -n none -3 "$scheme://127.0.0.1:$port" "${tls[@]}" -P "$dir" -D $fmt \
        --metrics "127.0.0.1:$mport" >"$dir.log" 2>&1 &
      pid=$!
      for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$mport/metrics" >/dev/null && break; sleep 0.05; done
      ;;
    nfcapd)
      nfcapd -w "$dir" -p "$port" -b 127.0.0.1 -B 33554432 -t 3600 >"$dir.log" 2>&1 &
      pid=$!
      for _ in $(seq 1 100); do [ -n "$(udp_line "$port")" ] && break; sleep 0.05; done
      ;;
  esac
}

# Data records in IPFIX files (RFC 5655: messages back to back), counted from the sets and
# the templates' record lengths, independently of flowsec's code.
count_ipfix() {
  python3 - "$@" <<'PY'
import struct, sys
total = 0
for path in sys.argv[1:]:
    data = open(path, 'rb').read()
    lengths, off = {}, 0
    while off + 16 <= len(data):
        mlen = struct.unpack_from('!H', data, off + 2)[0]
        end, s = off + mlen, off + 16
        while s + 4 <= end:
            sid, slen = struct.unpack_from('!HH', data, s)
            if sid == 2:  # template set: fixed-length fields only here
                t = s + 4
                while t + 4 <= s + slen:
                    tid, n = struct.unpack_from('!HH', data, t); t += 4; rl = 0
                    for _ in range(n):
                        eid, fl = struct.unpack_from('!HH', data, t); t += 4 + (4 if eid & 0x8000 else 0); rl += fl
                    lengths[tid] = rl
            elif sid >= 256 and lengths.get(sid):
                total += (slen - 4) // lengths[sid]
            s += max(slen, 4)
        off = end if mlen else len(data)
print(total)
PY
}

stored_records() {  # TARGET DIR
  case $1 in
    fsb) count_ipfix $(find "$2" -type f -name '*.ipfix') ;;
    fsj) find "$2" -type f ! -name '*.tmp' -exec cat {} + | wc -l ;;
    nfcapd) nfdump -R "$2" -I 2>/dev/null | awk '/^Flows:/ {print $2; exit}' ;;
  esac
}

# One run: prints "sent stored kernel_drops output_drops cpu_seconds achieved_msg_rate rcvbuf".
run_once() {  # TARGET RATE
  local t=$1 rate=$2 dir port mport out sent c0 c1 drops odrops=- stored rb
  dir=$work/$t-$rate-$RANDOM; mkdir -p "$dir"
  port=$(free_port); mport=$(free_port)
  start_collector "$t" "$dir" "$port" "$mport" udp
  sleep 0.2
  rb=$(ss -uamn "sport = :$port" 2>/dev/null | grep -o 'rb[0-9]*' | head -1)
  c0=$(cpu_ticks "$pid")
  out=$("$FLOWGEN" --to "127.0.0.1:$port" --proto ipfix --transport udp --rate "$rate" \
    --duration "$DURATION" --records-per-message "$RPM" --exporters "$EXPORTERS" 2>/dev/null)
  sent=$(sed -n 's/.* records=\([0-9]*\).*/\1/p' <<<"$out")
  local ach=$(sed -n 's/.* msg_rate=\([0-9]*\).*/\1/p' <<<"$out")
  if [ "$t" = nfcapd ]; then wait_idle "$pid" "$port"; else wait_idle "$pid" "$port" "$mport"; fi
  c1=$(cpu_ticks "$pid")
  drops=$(udp_drops "$port")
  [ "$t" != nfcapd ] && odrops=$(metric "$mport" flowsec_output_records_dropped_total)
  kill -TERM "$pid"; wait "$pid" 2>/dev/null; pid=
  stored=$(stored_records "$t" "$dir")
  if [ "$t" = fsb ] && [ ! -f "$work/checked" ] && command -v ipfixDump >/dev/null; then
    touch "$work/checked"  # independent count once: ipfixDump over the binary files
    local n=0 f
    for f in $(find "$dir" -type f -name '*.ipfix'); do
      n=$((n + $(ipfixDump -i "$f" -s 2>/dev/null | sed -n 's/.* \([0-9]*\) Data Records.*/\1/p' | head -1)))
    done
    echo "  (check: ipfixDump counts $n records in the -D b files, the script's count is $stored)" >&2
  fi
  echo "$sent ${stored:-0} ${drops:-0} $odrops $(awk -v a="$c0" -v b="$c1" -v hz="$HZ" 'BEGIN{printf "%.2f", (b-a)/hz}') ${ach:-0} ${rb:-rb?}"
  rm -rf "$dir" "$dir.log"
}

name() { case $1 in fsb) echo "flowsec -D b" ;; fsj) echo "flowsec -D j" ;; nfcapd) echo nfcapd ;; esac; }

echo "# collector_bench $(date -u +%FT%TZ)  nproc=$(nproc)  cpu=$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)"
echo "# uptime: $(uptime)"
echo "# rates ${RATES} datagrams/s x $RPM records, ${DURATION}s each, $EXPORTERS exporters, repeat $REPEAT"
printf '%-13s %8s %4s %10s %10s %8s %7s %8s %7s %12s %s\n' target dgram/s run sent stored lost kdrops outdrops cpu_s rec/cpu_s rcvbuf
declare -A best rpc lossy steprpc
for t in $TARGETS; do best[$t]=0; rpc[$t]=; lossy[$t]=0; done
for rate in $RATES; do
  for t in $TARGETS; do
    if [ "${lossy[$t]}" -ge 2 ]; then  # lossy at two steps in a row: higher steps say nothing new
      printf '%-13s %8s    - skipped (lost records at the two previous steps)\n' "$(name "$t")" "$rate"
      continue
    fi
    losses=(); rpcs=()
    for r in $(seq 1 "$REPEAT"); do
      read -r sent stored drops odrops cpu ach rb < <(run_once "$t" "$rate")
      lost=$((sent - stored))
      rp=$(awk -v n="$stored" -v c="$cpu" 'BEGIN{ if (c>0) printf "%.0f", n/c; else print 0}')
      printf '%-13s %8s %4s %10s %10s %8s %7s %8s %7s %12s %s (sent at %s/s)\n' "$(name "$t")" "$rate" "$r" "$sent" \
        "$stored" "$lost" "$drops" "$odrops" "$cpu" "$rp" "$rb" "$ach"
      losses+=("$lost"); rpcs+=("$rp")
    done
    # Loss-free at this step when the median run lost nothing.
    ml=$(printf '%s\n' "${losses[@]}" | median)
    mr=$(printf '%s\n' "${rpcs[@]}" | median)
    if awk -v l="$ml" 'BEGIN{exit !(l<=0)}'; then
      best[$t]=$((rate * RPM)); rpc[$t]="${rpc[$t]} $mr"; lossy[$t]=0
    else
      lossy[$t]=$((lossy[$t] + 1))
    fi
    steprpc[$t/$rate]=$mr
  done
done

echo
echo "# UDP → files: highest zero-loss rate (median of $REPEAT) and records per CPU-second (median over the loss-free steps)"
for t in $TARGETS; do
  m=$(printf '%s\n' ${rpc[$t]:-0} | median)
  printf '%-13s zero-loss up to %9s records/s   %10s records/CPU-s\n' "$(name "$t")" "${best[$t]}" "$m"
done
if [[ " $TARGETS " == *" nfcapd "* ]]; then
  echo "# records per CPU-second at the same step (median of $REPEAT), flowsec / nfcapd:"
  for rate in $RATES; do
    [ -n "${steprpc[nfcapd/$rate]:-}" ] || continue
    line="  $rate dgram/s: nfcapd ${steprpc[nfcapd/$rate]}"
    for t in fsb fsj; do
      [ -n "${steprpc[$t/$rate]:-}" ] || continue
      line="$line, $(name "$t") ${steprpc[$t/$rate]} ($(awk -v a="${steprpc[$t/$rate]}" -v b="${steprpc[nfcapd/$rate]}" 'BEGIN{printf "%.2f×", a/b}'))"
    done
    echo "$line"
  done
  # Records per CPU-second: the median of the per-step ratios over the steps both ran (the
  # same input; the loss-free step sets of the two differ, so their own medians do not compare).
  nf_best=${best[nfcapd]}
  for t in fsb fsj; do
    [[ " $TARGETS " == *" $t "* ]] || continue
    ratios=()
    for rate in $RATES; do
      [ -n "${steprpc[nfcapd/$rate]:-}" ] && [ -n "${steprpc[$t/$rate]:-}" ] || continue
      ratios+=("$(awk -v a="${steprpc[$t/$rate]}" -v b="${steprpc[nfcapd/$rate]}" 'BEGIN{printf "%.4f", (b > 0 ? a / b : 0)}')")
    done
    m=$(printf '%s\n' "${ratios[@]:-0}" | sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}')
    awk -v n="$(name "$t")" -v a="${best[$t]}" -v b="$nf_best" -v c="$m" 'BEGIN{
      printf "%-13s / nfcapd: zero-loss rate %s×, records per CPU-second %.2f× (median of the per-step ratios)\n", n,
        (b>0 ? sprintf("%.2f", a/b) : "n/a"), c }'
  done
fi

# Part 2: TLS vs TCP into -D b, at a fixed rate both sustain (CPU per record compares like
# with like) and at --rate 0 (as fast as the collector takes it; records dropped by the
# output queue are counted and not stored).
if [ ! -f "$CERTS/server.pem" ]; then "$repo/scripts/make-test-certs.sh" "$CERTS" >/dev/null; fi
echo
echo "# Stream → -D b: ${STREAM_DURATION}s, $EXPORTERS connections, repeat $REPEAT; rate in messages/s of $RPM records (0 = max)"
printf '%-6s %7s %4s %10s %10s %8s %11s %12s %9s %s\n' scheme rate run sent stored cpu_s records/s rec/cpu_s outdrops flowgen_err/drop
declare -A srpc srate
for srate_set in "$STREAM_RATE" 0; do
  for scheme in tcp tls; do
    rl=(); rr=()
    for r in $(seq 1 "$REPEAT"); do
      dir=$work/$scheme-$r; mkdir -p "$dir"
      port=$(free_port); mport=$(free_port)
      start_collector fsb "$dir" "$port" "$mport" "$scheme"
      c0=$(cpu_ticks "$pid")
      ca=(); [ "$scheme" = tls ] && ca=(--ca "$CERTS/ca.pem")
      out=$("$FLOWGEN" --to "localhost:$port" --proto ipfix --transport "$scheme" "${ca[@]}" \
        --rate "$srate_set" --duration "$STREAM_DURATION" --records-per-message "$RPM" \
        --exporters "$EXPORTERS" 2>/dev/null)
      sent=$(sed -n 's/.* records=\([0-9]*\).*/\1/p' <<<"$out")
      secs=$(sed -n 's/.* seconds=\([0-9.]*\).*/\1/p' <<<"$out")
      gerr=$(sed -n 's/.* errors=\([0-9]*\) dropped=\([0-9]*\).*/\1\/\2/p' <<<"$out")
      wait_idle "$pid" "" "$mport"
      c1=$(cpu_ticks "$pid")
      odrops=$(metric "$mport" flowsec_output_records_dropped_total)
      kill -TERM "$pid"; wait "$pid" 2>/dev/null; pid=
      stored=$(stored_records fsb "$dir")
      cpu=$(awk -v a="$c0" -v b="$c1" -v hz="$HZ" 'BEGIN{printf "%.2f", (b-a)/hz}')
      rate=$(awk -v n="$stored" -v s="$secs" 'BEGIN{printf "%.0f", n/s}')
      rp=$(awk -v n="$stored" -v c="$cpu" 'BEGIN{ if (c>0) printf "%.0f", n/c; else print 0}')
      printf '%-6s %7s %4s %10s %10s %8s %11s %12s %9s %s\n' "$scheme" "$srate_set" "$r" "$sent" \
        "$stored" "$cpu" "$rate" "$rp" "$odrops" "$gerr"
      rl+=("$rp"); rr+=("$rate")
      rm -rf "$dir" "$dir.log"
    done
    srpc[$scheme/$srate_set]=$(printf '%s\n' "${rl[@]}" | median)
    srate[$scheme/$srate_set]=$(printf '%s\n' "${rr[@]}" | median)
  done
  awk -v a="${srpc[tcp/$srate_set]}" -v b="${srpc[tls/$srate_set]}" -v ra="${srate[tcp/$srate_set]}" \
    -v rb="${srate[tls/$srate_set]}" -v m="$srate_set" 'BEGIN{
    printf "rate %s: tcp %s records/s stored, %s records/CPU-s;  tls %s records/s stored, %s records/CPU-s\n", m, ra, a, rb, b
    if (b>0) printf "rate %s: TLS costs %.2f× TCP per stored record (collector CPU; target ≤ 1.25×)\n", m, a/b }'
done
echo "# uptime: $(uptime)"
