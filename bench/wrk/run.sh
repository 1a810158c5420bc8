#!/usr/bin/env bash
# Granted holds and the crowd after a sell-out, measured by wrk (an
# independent client, not flashbench) side by side with the ceiling: the
# constant-response fasthttp server flashbench compares against (bench/ceiling.go,
# started from bin/flashbench with FLASHBENCH_CEILING_SERVER=1). One
# bin/flashsale (--fsync=always) serves, seeded with
#   product 1: 10,000,000 units, never sold out in a run: every hold a 201;
#   product 2: 1 unit, sold (hold, order, paid webhook) before the first round.
# Each round runs, one after another, for each N in CONNS:
#   ceiling  (N connections)  the same POST /api/holds request, answered 200
#   granted  (N connections)  POST /api/holds on product 1, every answer a 201
# and then the crowd with CROWD connections:
#   ceiling  (CROWD connections)
#   sold_out (CROWD connections)  POST /api/holds on product 2, every answer a 409
# wrk -tTHREADS -cN -dDURATION --latency --timeout 10s -s bench/wrk/holds.lua,
# whose response callback counts every answer without the expected status.
# The table (bench/wrk's Go program, go run ./bench/wrk DIR) gives medians over the rounds, the
# share of the ceiling (per round, same connections), and the worst p99
# and max; the script exits 1 if an answer had another status or a run had
# socket errors.
#
# Usage: bench/wrk/run.sh (make bench-wrk); the environment sets
#   ROUNDS (3), DURATION (8s), CONNS ("64 256"), CROWD (10000; 0: no crowd),
#   THREADS (2), OUT_DIR (keep the raw wrk outputs there; default: a
#   temporary directory, removed).
# Needs wrk (apt-get install wrk) and bin/flashsale, bin/flashbench (make build).
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${ROUNDS:-3}
dur=${DURATION:-8s}
conns=${CONNS:-64 256}
crowd=${CROWD:-10000}
threads=${THREADS:-2}
bin=./bin/flashsale
fb=./bin/flashbench

if ! command -v wrk >/dev/null 2>&1; then
	echo "bench/wrk/run.sh needs wrk (https://github.com/wg/wrk): apt-get install wrk (Debian, Ubuntu), brew install wrk, or build it from source" >&2
	exit 1
fi
for b in "$bin" "$fb"; do
	if [ ! -x "$b" ]; then echo "no $b: run make build first" >&2; exit 1; fi
done
# wrk and each server hold one file per connection, plus a few.
files_needed=$(( crowd + 1024 ))
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$files_needed" ]; then
	if ! ulimit -n "$files_needed" 2>/dev/null; then
		echo "CROWD=$crowd needs $files_needed open files a process; ulimit -n allows $(ulimit -n) (hard limit $(ulimit -Hn)): lower CROWD or raise the limit" >&2
		exit 1
	fi
fi

tmp=$(mktemp -d)
out=${OUT_DIR:-$tmp/out}
mkdir -p "$out"
pids=()
cleanup() {
	exec 3>&- 2>/dev/null || true
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT
# The report is built first, so that a run never ends without its table.
go build -o "$tmp/report" ./bench/wrk

cat > "$tmp/seed.json" <<'JSON'
[{"id":1,"name":"never sold out","price_cents":100,"total_stock":10000000,"max_per_hold":1},
 {"id":2,"name":"sold out","price_cents":100,"total_stock":1,"max_per_hold":1}]
JSON
addr=127.0.0.1:18390
url=http://$addr
"$bin" --addr "$addr" --data-dir "$tmp/data" --seed "$tmp/seed.json" --fsync=always --log-level warn \
	--connections-per-ip-max "$files_needed" &
pids+=($!)

# The ceiling serves until its stdin closes (cleanup closes fd 3).
mkfifo "$tmp/ceiling.in"
FLASHBENCH_CEILING_SERVER=1 "$fb" <"$tmp/ceiling.in" >"$tmp/ceiling.out" &
pids+=($!)
exec 3>"$tmp/ceiling.in"
ceiling=""
for _ in $(seq 1 200); do
	ceiling=$(awk '/^listening /{print $2; exit}' "$tmp/ceiling.out")
	if [ -n "$ceiling" ] && curl -fs "$url/healthz" >/dev/null 2>&1; then break; fi
	sleep 0.05
done
if [ -z "$ceiling" ] || ! curl -fs "$url/healthz" >/dev/null 2>&1; then
	echo "the ceiling or the server did not start" >&2; exit 1
fi

# Sell product 2's one unit: hold, order, paid webhook (no --webhook-secret:
# unsigned webhooks are accepted). Sold units never come back, so every
# later hold on it is a 409 however long the run.
post() { # path body [header] → body of a 2xx answer
	curl -fsS -X POST -H 'Content-Type: application/json' ${3:+-H "$3"} -d "$2" "$url$1"
}
token=$(post /api/holds '{"product_id":2,"qty":1}' | sed -E 's/.*"hold_token":"([^"]+)".*/\1/')
order=$(post /api/orders "{\"hold_token\":\"$token\"}" | sed -E 's/.*"order_id":([0-9]+).*/\1/')
post /api/payments/webhook "{\"status\":\"success\",\"order_id\":$order}" "Idempotency-Key: wrk-sellout-$order" >/dev/null
if ! curl -fs "$url/api/products/2" | grep -q '"available_stock":0'; then
	echo "product 2 is not sold out after its sale" >&2; exit 1
fi

run() { # phase conns round target product expected
	echo "round $3: $1, $2 connections" >&2
	wrk -t"$threads" -c"$2" -d"$dur" --latency --timeout 10s -s bench/wrk/holds.lua "$4" -- "$5" "$6" \
		>"$out/$1.c$2.r$3.txt"
}
for r in $(seq 1 "$rounds"); do
	for n in $conns; do
		run ceiling "$n" "$r" "http://$ceiling" 1 200
		run granted "$n" "$r" "$url" 1 201
	done
	if [ "$crowd" -gt 0 ]; then
		run ceiling "$crowd" "$r" "http://$ceiling" 2 200
		run sold_out "$crowd" "$r" "$url" 2 409
	fi
done

echo
echo "wrk $(wrk -v 2>&1 | awk 'NR==1{print $2}'), $rounds rounds of $dur, -t$threads --latency --timeout 10s, bin/flashsale --fsync=always; medians over rounds"
echo
"$tmp/report" "$out"
