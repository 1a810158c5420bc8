#!/usr/bin/env bash
# Side by side on this machine: the single-node server and a 3-node cluster
# (three processes on 127.0.0.1, --fsync=always), loaded by flashbench from
# the same client, in interleaved rounds. Prints, per round:
#   single  hot     holds/s through the single node
#   cluster hot-leader    holds/s on a product whose partition the target node leads
#   cluster hot-forwarded holds/s on a product led by another node (forwarded)
#   single  browse / cluster browse-follower   product reads
# and, for the cluster, fsyncs and Raft messages per 1,000 granted holds on
# the leader. Usage: bench/clusterbench/run.sh [rounds] [duration] [conns]
# (make bench-cluster). Needs bin/flashsale and bin/flashbench (make build).
# READ_CONNS_MORE (default "1024") adds a line per round with the product
# reads of both at each of these connection counts: a follower's ReadIndex
# round is shared by the reads that arrive while the one before it is out,
# so its cost per read falls as more readers wait.
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-3}
dur=${2:-10s}
conns=${3:-64}
read_conns_more=${READ_CONNS_MORE-1024}
bin=./bin/flashsale
fb=./bin/flashbench
tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT

cat > "$tmp/seed.json" <<'JSON'
[{"id":1,"name":"hot p1","price_cents":100,"total_stock":100000000,"max_per_hold":1},
 {"id":2,"name":"hot p2","price_cents":100,"total_stock":100000000,"max_per_hold":1},
 {"id":3,"name":"hot p0","price_cents":100,"total_stock":100000000,"max_per_hold":1}]
JSON
cat > "$tmp/cluster.json" <<'JSON'
{"partitions": 3, "nodes": [
 {"id": 1, "http": "127.0.0.1:18181", "raft": "127.0.0.1:19181"},
 {"id": 2, "http": "127.0.0.1:18182", "raft": "127.0.0.1:19182"},
 {"id": 3, "http": "127.0.0.1:18183", "raft": "127.0.0.1:19183"}]}
JSON

wait_healthy() { # url
	for _ in $(seq 1 200); do
		if curl -fs "$1/healthz" >/dev/null 2>&1; then return 0; fi
		sleep 0.05
	done
	echo "no healthy server at $1" >&2; exit 1
}
secs=${dur%s}
rate() { # flashbench browse output → req/s of all requests
	awk '/^  all /{print $5; exit}'
}
granted_rate() { # flashbench hot output → granted holds (201) per second
	awk -v s="$secs" '/^hot: product/{for(i=1;i<=NF;i++) if($i=="granted") {printf "%d\n", $(i+1)/s; exit}}'
}
metric() { # url name → value
	curl -s "$1/metrics" | awk -v n="$2" '$1==n{print $2}'
}
# follower_browse url conns → "reads/s (reads per ReadIndex round on that node)"
follower_browse() {
	local b0 r0 rate_
	b0=$(metric "$1" 'flashsale_raft_reads_total{event="barrier"}'); r0=$(metric "$1" 'flashsale_raft_reads_total{event="round"}')
	rate_=$("$fb" --url "$1" --workload browse --duration "$dur" --conns "$2" --with-ceiling=false | rate)
	echo "$rate_ ($(( ($(metric "$1" 'flashsale_raft_reads_total{event="barrier"}') - b0) / ($(metric "$1" 'flashsale_raft_reads_total{event="round"}') - r0 + 1) )) reads a round)"
}
# leader_of url partition → node id
leader_of() {
	curl -s "$1/cluster" | tr '{' '\n' | awk -v p="$2" -F'[:,]' '/"leader"/ && $2==p {print $4}'
}

for r in $(seq 1 "$rounds"); do
	rm -rf "$tmp/single" "$tmp"/node*
	"$bin" --addr 127.0.0.1:18190 --data-dir "$tmp/single" --seed "$tmp/seed.json" --log-level warn &
	pids+=($!)
	wait_healthy http://127.0.0.1:18190
	s_hot=$("$fb" --url http://127.0.0.1:18190 --workload hot --product 1 --duration "$dur" --conns "$conns" --with-ceiling=false | granted_rate)
	s_browse=$("$fb" --url http://127.0.0.1:18190 --workload browse --duration "$dur" --conns "$conns" --with-ceiling=false | rate)
	declare -A s_more=()
	for c in $read_conns_more; do
		s_more[$c]=$("$fb" --url http://127.0.0.1:18190 --workload browse --duration "$dur" --conns "$c" --with-ceiling=false | rate)
	done
	kill "${pids[-1]}"; wait "${pids[-1]}" 2>/dev/null || true

	for i in 1 2 3; do
		"$bin" --cluster "$tmp/cluster.json" --node-id "$i" --data-dir "$tmp/node$i" --seed "$tmp/seed.json" --log-level warn &
		pids+=($!)
	done
	for i in 1 2 3; do wait_healthy "http://127.0.0.1:1818$i"; done
	sleep 4 # let the leaders spread (rebalancing runs every 3 s)
	u=http://127.0.0.1:18181
	# product p lives in partition p mod 3: 1 → 1, 2 → 2, 3 → 0
	lead_p=""; fwd_p=""
	for p in 1 2 3; do
		if [ "$(leader_of $u $((p % 3)))" = 1 ]; then lead_p=${lead_p:-$p}; else fwd_p=${fwd_p:-$p}; fi
	done
	f0=$(metric $u flashsale_raft_fsyncs_total); m0=$(metric $u 'flashsale_raft_messages_total{result="sent"}')
	c_lead=$("$fb" --url $u --workload hot --product "${lead_p:-1}" --duration "$dur" --conns "$conns" --with-ceiling=false | tee "$tmp/lead.txt" | granted_rate)
	f1=$(metric $u flashsale_raft_fsyncs_total); m1=$(metric $u 'flashsale_raft_messages_total{result="sent"}')
	granted=$(awk '/^hot: product/{for(i=1;i<=NF;i++) if($i=="granted") {print $(i+1); exit}}' "$tmp/lead.txt")
	c_fwd=$("$fb" --url $u --workload hot --product "${fwd_p:-2}" --duration "$dur" --conns "$conns" --with-ceiling=false | granted_rate)
	follower=$u
	for i in 1 2 3; do
		if [ "$(leader_of $u 0)" != "$i" ]; then follower="http://127.0.0.1:1818$i"; break; fi
	done
	c_browse=$(follower_browse "$follower" "$conns")
	more=""
	for c in $read_conns_more; do
		more+=" | $c conns: single browse ${s_more[$c]} cluster browse-follower $(follower_browse "$follower" "$c")"
	done
	for _ in 1 2 3; do kill "${pids[-1]}"; wait "${pids[-1]}" 2>/dev/null || true; unset 'pids[-1]'; done

	echo "round $r: single hot $s_hot | cluster hot-leader $c_lead (product ${lead_p:-none}) hot-forwarded $c_fwd (product ${fwd_p:-none}) | single browse $s_browse | cluster browse-follower $c_browse ($follower)"
	if [ -n "$more" ]; then echo "round $r: reads${more}"; fi
	if [ -n "$granted" ] && [ "$granted" -gt 0 ]; then
		echo "round $r: leader per 1000 granted holds: $(( (f1 - f0) * 1000 / granted )) fsyncs, $(( (m1 - m0) * 1000 / granted )) raft messages sent"
	fi
done
