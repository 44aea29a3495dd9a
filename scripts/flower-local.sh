#!/usr/bin/env bash
# A real Flower federation on this machine: a SuperLink and one SuperNode per client on loopback,
# running the app in flower/ — clients train with wsa-lab's engine, the server averages and fuses
# the clients' weight scopes — then stops every process it started.
#
#   scripts/flower-local.sh [--config fed.json] [--clients N] [--out DIR] [--device cpu] [--secure]
#
# --config        a federated config (`wsa-lab fed --print-config` writes one); default: wsa-lab's
#                 defaults (digits, 10 clients, 10 rounds)
# --clients N     SuperNodes to start (partition-id 0..N-1); default: the config's clients
# --out DIR       where the server writes the results, as `wsa-lab fed` does (default out/flower)
# --device D      auto, cpu or gpu, for the server and every client (default auto)
# --cold-clients  Flower's default: a new ClientApp process (and engine process) for every
#                 client in every round. Without it each SuperNode runs with --isolation process
#                 beside a warm client (flower/wsa_flower/warm.py) that keeps the app, its engine
#                 and the client's data loaded from round to round: the same numbers, sooner
# --round-timeout S   seconds a round waits for its clients (default 600)
# --min-clients N     clients a round needs (default: 2, or 1 with one client)
# --secure        TLS (a CA and a certificate for 127.0.0.1/localhost made for this run) and
#                 SuperNode authentication: each SuperNode gets its own key pair, registered with
#                 the SuperLink before it starts; unregistered keys are refused. Without it:
#                 insecure, for loopback only
# --rogue-node    with --secure, also start a SuperNode whose key is not registered (posing as
#                 client 0); the run fails unless the SuperLink refused it
# --resume        go on from the last round the federation in --out wrote (its checkpoint),
#                 with the same config, instead of starting at round 1
# --extra-node CFG    also start a SuperNode with this node config (e.g. 'partition-id=9'); repeatable
# --stop-client K --after-round R   kill client K's SuperNode as soon as round R is written: a
#                 client dying mid-federation, to see the server carry on without it
# --restart-superlink-after-round R   kill the SuperLink (and the ServerApp it runs) as soon as
#                 this run has written round R, start it again with its state file, and resume
#                 the federation on the same SuperNodes
#
# Flower comes from $FLOWER_PYTHON (a Python with flwr 1.42.0) or, when unset, from .venv-flower,
# created here on first use with the versions flower/pyproject.toml pins. wsa-lab comes from
# $WSA_LAB, else the release build (built here when missing).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"

config="" clients="" out="$root/out/flower" device="auto" round_timeout=600 min_clients="" cold_clients=""
stop_client="" stop_after="" extra_nodes=() secure="" rogue_node="" resume="" restart_after=""
while [ $# -gt 0 ]; do
  case "$1" in
    --config) config="$(realpath "$2")"; shift 2 ;;
    --clients) clients="$2"; shift 2 ;;
    --out) out="$(realpath -m "$2")"; shift 2 ;;
    --device) device="$2"; shift 2 ;;
    --cold-clients) cold_clients=1; shift ;;
    --round-timeout) round_timeout="$2"; shift 2 ;;
    --min-clients) min_clients="$2"; shift 2 ;;
    --secure) secure=1; shift ;;
    --rogue-node) rogue_node=1; shift ;;
    --resume) resume=1; shift ;;
    --extra-node) extra_nodes+=("$2"); shift 2 ;;
    --stop-client) stop_client="$2"; shift 2 ;;
    --after-round) stop_after="$2"; shift 2 ;;
    --restart-superlink-after-round) restart_after="$2"; shift 2 ;;
    -h|--help) sed -n '2,36p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "error: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
if [ -n "$stop_client" ] && [ -z "$stop_after" ]; then
  echo "error: --stop-client needs --after-round R" >&2; exit 2
fi
if [ -n "$rogue_node" ] && [ -z "$secure" ]; then
  echo "error: --rogue-node needs --secure: without SuperNode authentication every node may join" >&2; exit 2
fi
case "$restart_after" in
  ""|[1-9]|[1-9][0-9]|[1-9][0-9][0-9]) ;;
  *) echo "error: --restart-superlink-after-round takes a round number (1, 2, ...), not $restart_after" >&2; exit 2 ;;
esac

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
json_get() { # file key [default]: the value of a top-level key of a JSON object
  "$FLOWER_PYTHON" -c 'import json, sys; print(json.load(open(sys.argv[1])).get(sys.argv[2], *sys.argv[3:]))' "$@"
}
config_clients="$(json_get "$config" clients)"
config_rounds="$(json_get "$config" rounds 10)"
clients="${clients:-$config_clients}"
min_clients="${min_clients:-$(( clients < 2 ? 1 : 2 ))}"

# --- the federation -----------------------------------------------------------------------
work="$(mktemp -d -t wsa-flower.XXXXXX)"
state_dir="" # the SuperLink's state file's folder, made below
logs="$out/logs"
mkdir -p "$logs"
checkpoint="$out/flower-checkpoint/latest.json"
# The last round the server app has checkpointed (0: none), and whether it finished.
checkpoint_round() { [ -f "$checkpoint" ] && json_get "$checkpoint" round 2>/dev/null || echo 0; }
checkpoint_complete() { [ -f "$checkpoint" ] && [ "$(json_get "$checkpoint" complete 2>/dev/null)" = True ]; }
# Flower 1.42's `flwr run` exits 0 even when the ServerApp failed: the server's checkpoint says
# whether the federation finished and how far it got.
stopped_early() {
  local written
  written="$(checkpoint_round)"
  echo "[flower] the federation stopped after round $written of $config_rounds: rounds 1..$written are kept in $out"
}
resume_hint="scripts/flower-local.sh --resume with the same --config and --out goes on from there"
if [ -z "$resume" ]; then
  # An earlier run's rounds in the same folder would end the watchers' waits at once.
  rm -rf "$out/flower-rounds.json" "$out/flower-checkpoint"
fi
rounds_before="$(checkpoint_round)"
pgids=()
watchers=()
# A process's children, grandchildren, ...: Flower starts its SuperExec and apps in sessions of
# their own, out of reach of a signal to the process group.
descendants() { # pid...
  local child
  for child in $(ps -o pid= --ppid "$(IFS=,; echo "$*")" 2>/dev/null); do echo "$child"; descendants "$child"; done
}
stop_all() {
  for w in "${watchers[@]}"; do kill "$w" 2>/dev/null || true; done
  local spawned
  spawned="$(descendants "${pgids[@]}")"
  for g in "${pgids[@]}"; do kill -TERM -- "-$g" 2>/dev/null || true; done
  for p in $spawned; do kill -TERM "$p" 2>/dev/null || true; done
  sleep 1
  for g in "${pgids[@]}"; do kill -KILL -- "-$g" 2>/dev/null || true; done
  for p in $spawned; do kill -KILL "$p" 2>/dev/null || true; done
  rm -rf "$work" ${state_dir:+"$state_dir"}
}
trap stop_all EXIT
trap '[ -f "$checkpoint" ] && { stopped_early; echo "[flower] $resume_hint"; } >&2; exit 130' INT TERM

# The SuperLink's database (SQLite: its state and every message part not yet delivered) in a RAM
# file system where there is one with room: Flower 1.42 commits to it on every request (each
# message part pulled or pushed), and on a disk those commits took about as much CPU as the rest
# of the federation (a digits run of 4 rounds: 20 s of CPU in all with it in /dev/shm, 36 s in
# /tmp). A file still, so that a restarted SuperLink reads it. Room: 1 GiB free, enough for the
# parts of a round of models far larger than the engine's (a container's /dev/shm may be 64 MiB).
state_dir="$work"
shm_free_kib="$(df -Pk /dev/shm 2> /dev/null | awk 'NR == 2 { print $4 }')"
if [ -w /dev/shm ] && [ "$(stat -f -c %T /dev/shm 2> /dev/null)" = tmpfs ] && [ "${shm_free_kib:-0}" -ge 1048576 ]; then
  state_dir="$(mktemp -d -p /dev/shm wsa-flower-state.XXXXXX 2> /dev/null || echo "$work")"
fi

free_port() { "$FLOWER_PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# Starts "$@" in a process group of its own (so that it and the apps it spawns stop together).
start() { # log-file command...
  local log="$1"; shift
  setsid "$@" >> "$log" 2>&1 &
  pgids+=("$!")
  disown "$!" # stopped by stop_all, without the shell reporting each as killed
}

export FLWR_HOME="$work/flwr-home"
mkdir -p "$FLWR_HOME"
link_port="$(free_port)"
pki="$out/pki"      # what may be shown: the CA's and the server's certificates, public keys
secrets="$work/pki" # what may not: the private keys, gone with $work

# The CA, the SuperLink's certificate (for 127.0.0.1 and localhost) and one EC key pair per
# SuperNode in OpenSSH format (Flower 1.42's `--auth-supernode-private-key` reads that format,
# `flwr supernode register` the public half). openssl when there is one, else Python's
# `cryptography` (a dependency of flwr).
make_pki() { # node-name...
  rm -rf "$pki"
  mkdir -p "$pki"
  (umask 077 && mkdir -p "$secrets")
  if command -v openssl > /dev/null; then
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
      -subj "/CN=WSA Lab local Flower CA" -addext "basicConstraints=critical,CA:TRUE" \
      -addext "keyUsage=critical,keyCertSign,cRLSign" -keyout "$secrets/ca.key" -out "$pki/ca.crt" 2> /dev/null
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=127.0.0.1" \
      -keyout "$secrets/server.key" -out "$secrets/server.csr" 2> /dev/null
    printf '%s\n' "subjectAltName=IP:127.0.0.1,DNS:localhost" "basicConstraints=critical,CA:FALSE" \
      "keyUsage=critical,digitalSignature,keyEncipherment" "extendedKeyUsage=serverAuth" \
      "subjectKeyIdentifier=hash" "authorityKeyIdentifier=keyid,issuer" > "$secrets/server.ext"
    openssl x509 -req -in "$secrets/server.csr" -CA "$pki/ca.crt" -CAkey "$secrets/ca.key" \
      -CAcreateserial -CAserial "$secrets/ca.srl" \
      -days 2 -extfile "$secrets/server.ext" -out "$pki/server.crt" 2> /dev/null
    certificates=""
  else
    certificates=1
  fi
  "$FLOWER_PYTHON" - "$pki" "$secrets" "$certificates" "$@" <<'EOF'
import datetime, ipaddress, os, sys
from pathlib import Path
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization as ser
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

public, secret, certificates, nodes = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], sys.argv[4:]
def write_secret(path, data):
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as f:
        f.write(data)
if certificates:
    now = datetime.datetime.now(datetime.timezone.utc)
    def cert(subject, key, issuer, issuer_key, extensions):
        builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(minutes=5))
                   .not_valid_after(now + datetime.timedelta(days=2)))
        for extension, critical in extensions:
            builder = builder.add_extension(extension, critical)
        return builder.sign(issuer_key, hashes.SHA256())
    name = lambda cn: x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    ca_key, server_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    usage = dict.fromkeys(["digital_signature", "content_commitment", "key_encipherment", "data_encipherment",
                           "key_agreement", "key_cert_sign", "crl_sign", "encipher_only", "decipher_only"], False)
    ca = cert(name("WSA Lab local Flower CA"), ca_key, name("WSA Lab local Flower CA"), ca_key, [
        (x509.BasicConstraints(ca=True, path_length=None), True),
        (x509.KeyUsage(**{**usage, "key_cert_sign": True, "crl_sign": True}), True), (ca_ski, False)])
    server = cert(name("127.0.0.1"), server_key, ca.subject, ca_key, [
        (x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]), False),
        (x509.BasicConstraints(ca=False, path_length=None), True),
        (x509.KeyUsage(**{**usage, "digital_signature": True, "key_encipherment": True}), True),
        (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False),
        (x509.SubjectKeyIdentifier.from_public_key(server_key.public_key()), False),
        (x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), False)])
    (public / "ca.crt").write_bytes(ca.public_bytes(ser.Encoding.PEM))
    (public / "server.crt").write_bytes(server.public_bytes(ser.Encoding.PEM))
    write_secret(secret / "server.key", server_key.private_bytes(
        ser.Encoding.PEM, ser.PrivateFormat.PKCS8, ser.NoEncryption()))
for node in nodes:
    key = ec.generate_private_key(ec.SECP384R1())
    write_secret(secret / node, key.private_bytes(ser.Encoding.PEM, ser.PrivateFormat.OpenSSH, ser.NoEncryption()))
    (public / f"{node}.pub").write_bytes(
        key.public_key().public_bytes(ser.Encoding.OpenSSH, ser.PublicFormat.OpenSSH) + f" {node}\n".encode())
    # As the SuperLink names a key in its log (SubjectPublicKeyInfo, PEM).
    (public / f"{node}.pem").write_bytes(
        key.public_key().public_bytes(ser.Encoding.PEM, ser.PublicFormat.SubjectPublicKeyInfo))
EOF
}

node_names=()
for k in $(seq 0 $((clients - 1))); do node_names+=("supernode-$k"); done
for i in "${!extra_nodes[@]}"; do node_names+=("supernode-extra-$i"); done
if [ -n "$secure" ]; then
  make_pki "${node_names[@]}" ${rogue_node:+supernode-rogue}
  connection="root-certificates = \"$pki/ca.crt\""
  link_security=(--ssl-ca-certfile "$pki/ca.crt" --ssl-certfile "$pki/server.crt" --ssl-keyfile "$secrets/server.key"
    --enable-supernode-auth)
else
  connection="insecure = true"
  link_security=(--insecure)
fi
cat > "$FLWR_HOME/config.toml" <<EOF
[superlink]
default = "local"

[superlink.local]
address = "127.0.0.1:$link_port"
$connection
EOF

wait_for_superlink() {
  for _ in $(seq 150); do
    "$FLOWER_PYTHON" -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 0.2)' "$link_port" 2>/dev/null && return 0
    sleep 0.2
  done
  echo "error: the SuperLink did not open 127.0.0.1:$link_port within 30 s; see $logs/superlink.log" >&2
  exit 1
}
superlink_pgid=""
start_superlink() {
  # The state (registered SuperNodes, runs) in a file rather than in memory: a SuperLink started
  # again on it still knows the SuperNodes, which then reconnect by themselves.
  # The app's dependencies are those of this Python: no per-run environments to download.
  start "$logs/superlink.log" "$bin/flower-superlink" "${link_security[@]}" --host 127.0.0.1 --port "$link_port" \
    --database "$state_dir/superlink-state.db" --disable-runtime-dependency-installation
  superlink_pgid="${pgids[-1]}"
  wait_for_superlink
}

: > "$logs/superlink.log"
echo "[flower] SuperLink on 127.0.0.1:$link_port${secure:+ (TLS, SuperNode authentication)}; logs in $logs"
start_superlink

if [ -n "$secure" ]; then
  # Flower 1.42: with --enable-supernode-auth the SuperLink takes only SuperNodes whose public
  # key was registered through its Control API (`flwr supernode register`).
  for name in "${node_names[@]}"; do
    # In JSON form `flwr` exits 0 whether or not it succeeded; its answer says which.
    "$bin/flwr" supernode register "$pki/$name.pub" --name "$name" --format json > "$work/registered.json" 2>&1 || true
    if [ "$(json_get "$work/registered.json" success 2>/dev/null)" != True ]; then
      echo "error: registering $name's key with the SuperLink failed: $(cat "$work/registered.json")" >&2; exit 1
    fi
    echo "[flower] registered $name's key ($pki/$name.pub): node $(json_get "$work/registered.json" node-id)"
  done
fi

node_pgid=()
start_node() { # name node-config
  local security=(--insecure)
  [ -n "$secure" ] && security=(--root-certificates "$pki/ca.crt" --auth-supernode-private-key "$secrets/$1")
  : > "$logs/$1.log"
  local runtime_port
  runtime_port="$(free_port)"
  if [ -n "$cold_clients" ]; then
    start "$logs/$1.log" "$bin/flower-supernode" "${security[@]}" --superlink "127.0.0.1:$link_port" \
      --host 127.0.0.1 --port "$runtime_port" --node-config "$2"
    node_pgid+=("${pgids[-1]}")
    return
  fi
  start "$logs/$1.log" "$bin/flower-supernode" "${security[@]}" --superlink "127.0.0.1:$link_port" \
    --host 127.0.0.1 --port "$runtime_port" --node-config "$2" --isolation process
  node_pgid+=("${pgids[-1]}")
  # The node's ClientApps, in one process for the whole run; it ends with its SuperNode. On
  # loopback a message arrives within seconds: one that has not after 60 s belongs to a stopped run.
  start "$logs/$1.log" "$FLOWER_PYTHON" "$root/flower/wsa_flower/warm.py" \
    --runtime-api-address "127.0.0.1:$runtime_port" --insecure --parent-pid "${pgids[-1]}" --label "$out/$1" \
    --give-up-after 60
}
for k in $(seq 0 $((clients - 1))); do
  start_node "supernode-$k" "partition-id=$k num-partitions=$clients"
done
for i in "${!extra_nodes[@]}"; do
  start_node "supernode-extra-$i" "${extra_nodes[$i]}"
done
if [ -n "$rogue_node" ]; then
  # The second line of its PEM: key material only (the first starts as every P-384 key's does).
  rogue_key_line="$(sed -n 3p "$pki/supernode-rogue.pem")"
  echo "[flower] starting an unregistered SuperNode (key $pki/supernode-rogue.pub, $rogue_key_line...)"
  start_node "supernode-rogue" "partition-id=0 num-partitions=$clients"
fi
echo "[flower] $clients SuperNodes${extra_nodes:+ and ${#extra_nodes[@]} more}; config $config"

wait_for_round() { # R: until this run's server has checkpointed round R; fails if it finished first
  local written
  while written="$(checkpoint_round)"; [ "$written" -lt "$1" ] || [ "$written" -le "$rounds_before" ]; do
    ! checkpoint_complete || return 1
    sleep 0.1
  done
}
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
  watchers+=("$!")
fi
superlink_killed="$work/superlink-killed"
if [ -n "$restart_after" ]; then
  # SIGKILL, as a crash: the SuperLink, its SuperExec and the ServerApp go at once.
  (
    wait_for_round "$restart_after" || exit 0
    doomed="$(descendants "$superlink_pgid")"
    kill -KILL -- "-$superlink_pgid"
    for p in $doomed; do kill -KILL "$p" 2>/dev/null || true; done
    touch "$superlink_killed"
    echo "[flower] killed the SuperLink (and the ServerApp it ran) after round $(checkpoint_round)"
  ) &
  restart_watcher="$!"
  watchers+=("$restart_watcher")
fi

run_federation() { # resume: true or false
  local run_config="fed-config=\"$config\" out-dir=\"$out\" device=\"$device\" round-timeout=$round_timeout"
  run_config+=" min-clients=$min_clients wsa-lab=\"$WSA_LAB\" resume=$1"
  "$bin/flwr" run "$root/flower" --stream --run-config "$run_config" 2>&1 | tee -a "$logs/server.log"
}

: > "$logs/server.log"
run_federation "$([ -n "$resume" ] && echo true || echo false)" || true
if [ -n "$restart_after" ]; then
  # `flwr run` returns as the SuperLink goes; the watcher notes the kill just after.
  for _ in $(seq 50); do [ -f "$superlink_killed" ] && break; sleep 0.1; done
  kill "$restart_watcher" 2>/dev/null || true
  if [ ! -f "$superlink_killed" ]; then
    echo "error: the federation ended before round $restart_after, so the SuperLink was not restarted" >&2; exit 1
  fi
  stopped_early
  echo "[flower] restarting the SuperLink on its state file; the SuperNodes reconnect, and the federation resumes"
  echo "[flower] --- SuperLink restarted ---" >> "$logs/superlink.log"
  start_superlink
  run_federation true || true
fi

if [ -n "$rogue_node" ]; then
  # The SuperLink names the refused key in its log (its PEM, newlines escaped): look for the line
  # of it printed above.
  refusal=""
  for _ in $(seq 100); do
    refusal="$(grep -F "$rogue_key_line" "$logs/superlink.log" | grep -F "No SuperNode found with the given public key" | head -1 || true)"
    [ -n "$refusal" ] && break
    sleep 0.2
  done
  if [ -z "$refusal" ]; then
    echo "error: the SuperLink did not refuse the unregistered SuperNode; see $logs/superlink.log and $logs/supernode-rogue.log" >&2
    exit 1
  fi
  # Its words, without colours and with the key shortened to the line looked for.
  refusal="$(printf '%s' "$refusal" | sed -e 's/\x1b\[[0-9;]*m//g' -e "s|b'-----BEGIN PUBLIC KEY-----.*-----END PUBLIC KEY-----\\\\n'|...$rogue_key_line...|")"
  echo "[flower] the SuperLink refused the unregistered SuperNode: $refusal"
fi

if ! checkpoint_complete; then
  if [ -f "$checkpoint" ]; then
    stopped_early >&2
    echo "error: the federation did not finish (see $logs/server.log and $logs/superlink.log); $resume_hint" >&2
  else
    echo "error: the federation wrote no results; see $logs/server.log and $logs/superlink.log" >&2
  fi
  exit 1
fi
echo "[flower] results in $out (summary.json, rounds.csv, clients.csv, models/)"
