#!/usr/bin/env bash
# Signalling load on the trunkline binary: SIPp as 1001 calls SIPp as 1002
# through it (INVITE with digest, 180, 200, ACK, BYE, 200 on both legs),
# RATE calls a second for CALLS calls, media anchored in the relay (no RTP
# flows). Prints calls per second, failed calls, and Trunkline's CPU time
# per call from /proc (user + system), and beside it the two SIPp
# processes' together: they send and receive what Trunkline's two legs do
# with far less work per message, so theirs is a reference for the cost
# of the messages alone on this machine.
#
#   benches/sip_load.sh [RATE] [CALLS]        (defaults: 2000 20000)
#
# The binary is the release build in $CARGO_TARGET_DIR (default target/).
# SIP_LOAD_PERF=FILE also records a `perf record -e cpu-clock -g` profile
# of Trunkline during the calls into FILE.
set -euo pipefail
cd "$(dirname "$0")/.."
rate=${1:-2000}
calls=${2:-20000}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; wait; rm -rf "$work"' EXIT

cargo build --release -q -p trunkline
cat > "$work/trunkline.toml" <<TOML
[sip]
listen = [ { transport = "udp", address = "127.0.0.1:35060" } ]
[http]
address = "127.0.0.1:38080"
[data]
dir = "$work/data"
[registrar]
algorithms = ["MD5"]
[[extensions]]
number = "1001"
password = "load-1001"
[[extensions]]
number = "1002"
password = "load-1002"
TOML
RUST_LOG=warn "${CARGO_TARGET_DIR:-target}/release/trunkline" --config "$work/trunkline.toml" > "$work/out" 2> "$work/log" &
pbx=$!
for _ in $(seq 100); do grep -q '^ready' "$work/out" && break; sleep 0.1; done

sipp=(sipp -nostdin -i 127.0.0.1 -t u1)
# User + system seconds of this shell's waited-for children, from
# `times`, into $children (`times` must run in this shell, not a subshell).
children_cpu() {
    times > "$work/times"
    children=$(awk 'NR == 2 {
        split($1, u, /[ms]/); split($2, s, /[ms]/)
        print u[1] * 60 + u[2] + s[1] * 60 + s[2]
    }' "$work/times")
}
# 1002 registers from the port it then answers on.
"${sipp[@]}" -sf benches/sipp/register.xml -s 1002 -au 1002 -ap load-1002 -p 35070 -m 1 127.0.0.1:35060 > /dev/null
"${sipp[@]}" -sf benches/sipp/answer.xml -p 35070 -m "$calls" > /dev/null 2>&1 &
callee=$!
children_cpu
sipp_before=$children

ticks() { awk '{print $14 + $15}' "/proc/$pbx/stat"; }
before=$(ticks)
if [ -n "${SIP_LOAD_PERF:-}" ]; then
    perf record -q -e cpu-clock -g -p "$pbx" -o "$SIP_LOAD_PERF" > /dev/null 2>&1 &
    perf=$!
fi
start=$(date +%s.%N)
status=0
"${sipp[@]}" -sf benches/sipp/call.xml -s 1002 -au 1001 -ap load-1001 -p 35080 \
    -r "$rate" -m "$calls" -l 10000 -timeout 600s -trace_stat -stf "$work/stat.csv" \
    127.0.0.1:35060 > /dev/null 2>&1 || status=$?
end=$(date +%s.%N)
after=$(ticks)
# The callee's SIPp ends once it has answered every call; one that some
# failed calls never reached is stopped after 10 s (what it used counts).
for _ in $(seq 100); do kill -0 "$callee" 2> /dev/null || break; sleep 0.1; done
kill "$callee" 2> /dev/null || true
wait "$callee" || true
children_cpu
sipp_cpu=$(awk -v a="$sipp_before" -v b="$children" 'BEGIN { print b - a }')
if [ -n "${SIP_LOAD_PERF:-}" ]; then
    kill -INT "$perf"
    wait "$perf" || true
fi
hz=$(getconf CLK_TCK)
# The last line of SIPp's statistics file: its counters at the end.
failed=$(awk -F';' 'NR==1 { for (i = 1; i <= NF; i++) if ($i == "FailedCall(C)") col = i } END { print $col }' "$work/stat.csv")
awk -v calls="$calls" -v failed="$failed" -v s="$start" -v e="$end" -v t="$((after - before))" -v hz="$hz" -v rate="$rate" -v sipp="$sipp_cpu" 'BEGIN {
    wall = e - s
    printf "sip_load: %d calls offered at %d/s: %.0f calls/s over %.1f s, %s failed, trunkline CPU %.1f µs per call (%.2f s); both SIPp together %.1f µs per call (%.2f s)\n",
        calls, rate, calls / wall, wall, failed, t / hz * 1e6 / calls, t / hz, sipp * 1e6 / calls, sipp
}'
exit "$status"
