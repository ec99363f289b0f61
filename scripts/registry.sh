#!/usr/bin/env bash
# A real local registry for the labs and the tests: Debian's docker-registry on 127.0.0.1.
#
#   scripts/registry.sh start DATADIR PORT [--htpasswd USER:PASS] [--token REALM,ISSUER,CERT] [--tls CERT,KEY[,CLIENTCA]]
#   scripts/registry.sh stop DATADIR
#
# DATADIR holds the registry's config, storage, log and pid file; `stop` kills that registry
# and waits for it to exit. Servers listen on 127.0.0.1 only. --tls serves HTTPS with CERT and
# KEY; with CLIENTCA it also requires a client certificate signed by that CA.
set -euo pipefail

usage() { echo "usage: $0 start DATADIR PORT [--htpasswd USER:PASS] [--token REALM,ISSUER,CERTFILE] [--tls CERT,KEY[,CLIENTCA]] | stop DATADIR" >&2; exit 2; }

start() {
  local dir=$1 port=$2; shift 2
  local auth="" tls=""
  while [ $# -gt 0 ]; do
    case $1 in
      --htpasswd)
        local user=${2%%:*} pass=${2#*:}
        command -v htpasswd >/dev/null || { echo "registry.sh: htpasswd not found (apt-get install apache2-utils)" >&2; exit 1; }
        mkdir -p "$dir"
        htpasswd -Bbc "$dir/htpasswd" "$user" "$pass" 2>/dev/null
        auth=$'auth:\n  htpasswd:\n    realm: container-parts-lab\n    path: '"$dir/htpasswd"
        shift 2 ;;
      --token)
        IFS=, read -r realm issuer cert <<<"$2"
        auth=$'auth:\n  token:\n    realm: '"$realm"$'\n    service: container-parts-lab\n    issuer: '"$issuer"$'\n    rootcertbundle: '"$cert"
        shift 2 ;;
      --tls)
        IFS=, read -r cert key clientca <<<"$2"
        tls=$'  tls:\n    certificate: '"$cert"$'\n    key: '"$key"
        [ -z "$clientca" ] || tls+=$'\n    clientcas:\n      - '"$clientca"
        shift 2 ;;
      *) usage ;;
    esac
  done
  command -v docker-registry >/dev/null || { echo "registry.sh: docker-registry not found (apt-get install docker-registry)" >&2; exit 1; }
  mkdir -p "$dir/storage"
  if [ -f "$dir/pid" ] && kill -0 "$(cat "$dir/pid")" 2>/dev/null; then stop "$dir"; fi
  cat > "$dir/config.yml" <<YAML
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $dir/storage
  delete:
    enabled: true
  redirect:
    disable: true
http:
  addr: 127.0.0.1:$port
$tls
$auth
YAML
  # setsid: the registry must not die with the shell that started it, nor take its signals.
  setsid docker-registry serve "$dir/config.yml" >"$dir/registry.log" 2>&1 < /dev/null &
  echo $! > "$dir/pid"
  for _ in $(seq 1 100); do
    if [ -z "$tls" ] && curl -s -o /dev/null "http://127.0.0.1:$port/v2/"; then return 0; fi
    # Listening is enough for TLS: a registry that wants a client certificate answers no plain request.
    if [ -n "$tls" ] && (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    if ! kill -0 "$(cat "$dir/pid")" 2>/dev/null; then
      echo "registry.sh: the registry exited; its log:" >&2; tail -5 "$dir/registry.log" >&2; exit 1
    fi
    sleep 0.1
  done
  echo "registry.sh: the registry did not answer on 127.0.0.1:$port" >&2
  exit 1
}

stop() {
  local dir=$1
  [ -f "$dir/pid" ] || return 0
  local pid; pid=$(cat "$dir/pid")
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$dir/pid"
}

case ${1:-} in
  start) [ $# -ge 3 ] || usage; shift; start "$@" ;;
  stop) [ $# -eq 2 ] || usage; stop "$2" ;;
  *) usage ;;
esac
