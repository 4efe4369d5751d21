#!/usr/bin/env bash
# bench:compare — every pulse-bench scenario against Pulse (-dev: embedded
# JetStream, so the measured process includes storage) and Centrifugo v6
# (memory engine, history on in the "tenant" namespace) in one run, each
# scenario on a freshly started server, then the Pulse/Centrifugo ratios.
#
#   cmd/pulse-bench/compare.sh   # OUT=<dir> keeps the results, QUICK=1 small sizes, ONLY=<regex> a subset,
#                                # CENTRIFUGO_BIN=<path> skips the install, PULSE_PUBLISH=http publishes
#                                # to Pulse through its HTTP API (default nats: JetStream, like its workers),
#                                # PULSE_FLAGS='-nats-sync always' adds gateway flags
#
# Loopback only. Every scenario is bounded by -timeout; servers started here
# are stopped here, by their pid.
set -euo pipefail
cd "$(dirname "$0")/../.."

CF_VERSION=${CF_VERSION:-v6.9.1}
OUT=${OUT:-$(mktemp -d /tmp/pulse-bench.XXXXXX)}
WORK=$(mktemp -d /tmp/pulse-bench-work.XXXXXX)
PULSE_PORT=${PULSE_PORT:-28080} NATS_PORT=${NATS_PORT:-24222} CF_PORT=${CF_PORT:-28000}
export PULSE_JWT_HMAC_SECRET=${PULSE_JWT_HMAC_SECRET:-bench-secret-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')}
export PULSE_API_KEY=${PULSE_API_KEY:-bench-key-$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')}
PULSE_PUBLISH=${PULSE_PUBLISH:-nats}
SERVER_PID=
cleanup() { [[ -n $SERVER_PID ]] && kill "$SERVER_PID" 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

mkdir -p "$OUT"
echo "results in $OUT" >&2
go build -o "$WORK/gateway" ./cmd/gateway
go build -o "$WORK/pulse-bench" ./cmd/pulse-bench
CF=${CENTRIFUGO_BIN:-}
if [[ -z $CF ]]; then
  echo "installing centrifugo $CF_VERSION (several minutes on 2 cores)" >&2
  GOBIN="$WORK/bin" GOFLAGS=-mod=mod go install "github.com/centrifugal/centrifugo/v6@$CF_VERSION"
  CF="$WORK/bin/centrifugo"
fi
cat > "$WORK/centrifugo.json" <<JSON
{
  "http_server": {"address": "127.0.0.1", "port": $CF_PORT},
  "log": {"level": "warn"},
  "client": {"token": {"hmac_secret_key": "$PULSE_JWT_HMAC_SECRET"}, "allowed_origins": ["*"]},
  "http_api": {"key": "$PULSE_API_KEY"},
  "channel": {"namespaces": [{"name": "tenant", "history_size": 1000, "history_ttl": "600s",
    "force_recovery": true, "allow_subscribe_for_client": true}]}
}
JSON

wait_port() { for _ in $(seq 100); do (echo >/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 not up" >&2; return 1; }
start() {
  case $1 in
    pulse) "$WORK/gateway" -dev -addr "127.0.0.1:$PULSE_PORT" -nats-listen "127.0.0.1:$NATS_PORT" \
             -jwt-hmac-secret "$PULSE_JWT_HMAC_SECRET" -api-key "$PULSE_API_KEY" -log-level warn ${PULSE_FLAGS:-} >"$OUT/pulse-server.log" 2>&1 &
           SERVER_PID=$!; wait_port "$PULSE_PORT"; wait_port "$NATS_PORT" ;;
    centrifugo) "$CF" -c "$WORK/centrifugo.json" >"$OUT/centrifugo-server.log" 2>&1 &
           SERVER_PID=$!; wait_port "$CF_PORT" ;;
  esac
  sleep 2 # let start-up work (stream creation, simulators) settle before the baseline
}
stop() { kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=; sleep 1; }
bench() { # server scenario flags...
  local server=$1 port; shift
  if [[ $server == pulse ]]; then port=$PULSE_PORT; else port=$CF_PORT; fi
  local extra=()
  # Pulse gets publications the way its workers send them (JetStream publish
  # to its embedded server, stored before the ack); PULSE_PUBLISH=http uses its
  # HTTP API instead, like Centrifugo's.
  [[ $server == pulse ]] && extra=(-metrics-url "http://127.0.0.1:$port/metrics" -publish "$PULSE_PUBLISH" -nats-url "nats://127.0.0.1:$NATS_PORT")
  "$WORK/pulse-bench" "$@" -server "$server" -url "ws://127.0.0.1:$port/connection/websocket" \
    -api-url "http://127.0.0.1:$port/api/publish" -server-pid "$SERVER_PID" "${extra[@]}" -timeout 2m \
    2> >(grep -v 'level=INFO' >&2) | tee -a "$OUT/$server.jsonl" || echo "$server $*: failed" >&2
}

# 20k connections do not fit: RLIMIT_NOFILE is 20000 here (hard), and the
# server needs a few descriptors besides its connections. The bench shares
# the large run between two processes (-procs 2) so it is not the limit.
IDLE_BIG=${IDLE_BIG:-19900}
SCENARIOS=(
  "idle -n 10000 -channels 100"
  "idle -n $IDLE_BIG -channels 100 -procs 2"
  "fanout -n 1000 -rate 100 -duration 15s"
  "fanout -n 1000 -rate 500 -duration 15s"
  "channels -n 5000 -channels 5000 -rate 2000 -duration 15s"
  "storm -n 5000 -channels 50 -rate 200 -duration 15s -storm-after 4s"
)
if [[ -n ${QUICK:-} ]]; then
  SCENARIOS=("idle -n 1000" "fanout -n 200 -rate 100 -duration 5s" "channels -n 500 -channels 500 -rate 500 -duration 5s" "storm -n 500 -channels 50 -rate 100 -duration 6s")
fi
for sc in "${SCENARIOS[@]}"; do
  [[ -n ${ONLY:-} && ! $sc =~ ${ONLY} ]] && continue   # ONLY='fanout|storm' runs a subset
  for server in pulse centrifugo; do
    echo "== $server: $sc" >&2
    start "$server"
    # shellcheck disable=SC2086
    bench "$server" $sc
    stop
  done
done
echo
"$WORK/pulse-bench" compare "$OUT/pulse.jsonl" "$OUT/centrifugo.jsonl" | tee "$OUT/compare.txt"
