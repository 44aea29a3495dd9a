#!/usr/bin/env bash
# A real Flower federation on this machine: a SuperLink and one SuperNode per client on loopback
# (insecure: localhost only), running the app in flower/ — clients train with wsa-lab's engine,
# the server averages and fuses the clients' weight scopes — then stops every process it started.
#
#   scripts/flower-local.sh [--config fed.json] [--clients N] [--out DIR] [--device cpu]
#
# --config        a federated config (`wsa-lab fed --print-config` writes one); default: wsa-lab's
#                 defaults (digits, 10 clients, 10 rounds)
# --clients N     SuperNodes to start (partition-id 0..N-1); default: the config's clients
# --out DIR       where the server writes the results, as `wsa-lab fed` does (default out/flower)
# --device D      auto, cpu or gpu, for the server and every client (default auto)
# --round-timeout S   seconds a round waits for its clients (default 600)
# --min-clients N     clients a round needs (default: 2, or 1 with one client)
# --extra-node CFG    also start a SuperNode with this node config (e.g. 'partition-id=9'); repeatable
# --stop-client K --after-round R   kill client K's SuperNode as soon as round R is written: a
#                 client dying mid-federation, to see the server carry on without it
#
# Flower comes from $FLOWER_PYTHON (a Python with flwr 1.42.0) or, when unset, from .venv-flower,
# created here on first use with the versions flower/pyproject.toml pins. wsa-lab comes from
# $WSA_LAB, else the release build (built here when missing).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"

config="" clients="" out="$root/out/flower" device="auto" round_timeout=600 min_clients=""
stop_client="" stop_after="" extra_nodes=()
while [ $# -gt 0 ]; do
  case "$1" in
    --config) config="$(realpath "$2")"; shift 2 ;;
    --clients) clients="$2"; shift 2 ;;
    --out) out="$(realpath -m "$2")"; shift 2 ;;
    --device) device="$2"; shift 2 ;;
    --round-timeout) round_timeout="$2"; shift 2 ;;
    --min-clients) min_clients="$2"; shift 2 ;;
    --extra-node) extra_nodes+=("$2"); shift 2 ;;
    --stop-client) stop_client="$2"; shift 2 ;;
    --after-round) stop_after="$2"; shift 2 ;;
    -h|--help) sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "error: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
if [ -n "$stop_client" ] && [ -z "$stop_after" ]; then
  echo "error: --stop-client needs --after-round R" >&2; exit 2
fi

# --- the programs -------------------------------------------------------------------------
if [ -z "${WSA_LAB:-}" ]; then
  WSA_LAB="${CARGO_TARGET_DIR:-$root/target}/release/wsa-lab"
  if [ ! -x "$WSA_LAB" ]; then
    echo "[flower] building wsa-lab (release)"
    (cd "$root" && cargo build --release -p wsa-lab-cli)
  fi
fi
export WSA_LAB
FLOWER_PYTHON="${FLOWER_PYTHON:-$("$root/scripts/flower-venv.sh" "$root/.venv-flower")}"
bin="$(dirname "$FLOWER_PYTHON")"
# The SuperLink and SuperNodes start Flower's other programs (flower-superexec) by name.
export PATH="$bin:$PATH"
for tool in flower-superlink flower-supernode flwr; do
  [ -x "$bin/$tool" ] || { echo "error: $bin/$tool missing: FLOWER_PYTHON must be a Python with flwr installed" >&2; exit 1; }
done

if [ -z "$config" ]; then
  mkdir -p "$out"
  config="$out/fed-config.json"
  "$WSA_LAB" fed --print-config > "$config.tmp" && mv "$config.tmp" "$config"
fi
[ -f "$config" ] || { echo "error: config $config does not exist" >&2; exit 1; }
config_clients="$("$FLOWER_PYTHON" -c 'import json, sys; print(json.load(open(sys.argv[1]))["clients"])' "$config")"
clients="${clients:-$config_clients}"
min_clients="${min_clients:-$(( clients < 2 ? 1 : 2 ))}"

# --- the federation -----------------------------------------------------------------------
work="$(mktemp -d -t wsa-flower.XXXXXX)"
logs="$out/logs"
mkdir -p "$logs"
# The rounds of an earlier run in the same folder would end --stop-client's wait at once.
rm -f "$out/flower-rounds.json"
pgids=()
watcher=""
stop_all() {
  [ -n "$watcher" ] && kill "$watcher" 2>/dev/null || true
  for g in "${pgids[@]}"; do kill -TERM -- "-$g" 2>/dev/null || true; done
  sleep 1
  for g in "${pgids[@]}"; do kill -KILL -- "-$g" 2>/dev/null || true; done
  rm -rf "$work"
}
trap stop_all EXIT
trap 'exit 130' INT TERM

free_port() { "$FLOWER_PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# Starts "$@" in a process group of its own (so that it and the apps it spawns stop together).
start() { # log-file command...
  local log="$1"; shift
  setsid "$@" > "$log" 2>&1 &
  pgids+=("$!")
  disown "$!" # stopped by stop_all, without the shell reporting each as killed
}

export FLWR_HOME="$work/flwr-home"
mkdir -p "$FLWR_HOME"
link_port="$(free_port)"
cat > "$FLWR_HOME/config.toml" <<EOF
[superlink]
default = "local"

[superlink.local]
address = "127.0.0.1:$link_port"
insecure = true
EOF

echo "[flower] SuperLink on 127.0.0.1:$link_port; logs in $logs"
# The app's dependencies are those of this Python: no per-run environments to download.
start "$logs/superlink.log" "$bin/flower-superlink" --insecure --host 127.0.0.1 --port "$link_port" \
  --disable-runtime-dependency-installation
for _ in $(seq 100); do
  "$FLOWER_PYTHON" -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 0.2)' "$link_port" 2>/dev/null && break
  sleep 0.2
done

node_pgid=()
start_node() { # name node-config
  start "$logs/$1.log" "$bin/flower-supernode" --insecure --superlink "127.0.0.1:$link_port" \
    --host 127.0.0.1 --port "$(free_port)" --node-config "$2"
  node_pgid+=("${pgids[-1]}")
}
for k in $(seq 0 $((clients - 1))); do
  start_node "supernode-$k" "partition-id=$k num-partitions=$clients"
done
for i in "${!extra_nodes[@]}"; do
  start_node "supernode-extra-$i" "${extra_nodes[$i]}"
done
echo "[flower] $clients SuperNodes${extra_nodes:+ and ${#extra_nodes[@]} more}; config $config"

if [ -n "$stop_client" ]; then
  # Kills client K's SuperNode (and its ClientApp) once the server has written round R.
  (
    rounds="$out/flower-rounds.json"
    until [ -f "$rounds" ] && [ "$("$FLOWER_PYTHON" -c 'import json, sys; print(len(json.load(open(sys.argv[1]))))' "$rounds" 2>/dev/null || echo 0)" -ge "$stop_after" ]; do
      sleep 0.1
    done
    echo "[flower] stopping client $stop_client's SuperNode after round $stop_after"
    kill -KILL -- "-${node_pgid[$stop_client]}"
  ) &
  watcher=$!
fi

run_config="fed-config=\"$config\" out-dir=\"$out\" device=\"$device\" round-timeout=$round_timeout"
run_config+=" min-clients=$min_clients wsa-lab=\"$WSA_LAB\""
"$bin/flwr" run "$root/flower" --stream --run-config "$run_config" 2>&1 | tee "$logs/server.log"

if [ ! -f "$out/summary.json" ]; then
  echo "error: the federation wrote no results; see $logs/server.log and $logs/superlink.log" >&2
  exit 1
fi
echo "[flower] results in $out (summary.json, rounds.csv, clients.csv, models/)"
