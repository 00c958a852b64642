#!/usr/bin/env bash
# compose-up.sh — `make compose-up`: run the mesh with Docker Compose, then print the
# export lines that point the client commands (mxp agent, call, agents, bench, infer) at
# it, so that no command needs --edge or --edge-key.
#
# 1. Before building anything, checks that the host ports docker-compose.yml publishes are
#    free (deploy/docker/portcheck.go): a running `mxp dev` (make run) holds 9000/udp and
#    4222, and Compose used to fail on them only after building the images, leaving the
#    containers it had started (Redis) running. Skipped when this project already runs
#    (a second compose-up only updates it).
# 2. make images, then compose up -d; if that fails, compose down (no volume removed)
#    so that nothing is left running.
# 3. Waits for the edge to log its public key and prints the endpoints and export lines.
#
# Environment: GO, MAKE, COMPOSE (the Makefile passes them), and the port overrides
# docker-compose.yml reads (MXP_EDGE_UDP_PORT, MXP_EDGE_HTTP_PORT, MXP_REGISTRY_PORT,
# MXP_INFERENCE_PORT, MXP_NATS_PORT; each [IP:]PORT).
set -euo pipefail
cd "$(dirname "$0")/../.."
GO=${GO:-go}
MAKE=${MAKE:-make}
read -r -a compose <<<"${COMPOSE:-docker compose}"

edge_udp=${MXP_EDGE_UDP_PORT:-9000}
edge_http=${MXP_EDGE_HTTP_PORT:-127.0.0.1:9100}
registry=${MXP_REGISTRY_PORT:-127.0.0.1:9101}
inference=${MXP_INFERENCE_PORT:-127.0.0.1:8086}
nats=${MXP_NATS_PORT:-127.0.0.1:4222}

# dialable turns a published [IP:]PORT into an address a client on this host dials.
dialable() {
	case $1 in
	*:*) local host=${1%:*} port=${1##*:}; [[ $host == 0.0.0.0 || -z $host ]] && host=127.0.0.1; echo "$host:$port" ;;
	*) echo "127.0.0.1:$1" ;;
	esac
}

if [[ -z $("${compose[@]}" ps -q 2>/dev/null) ]]; then
	taken=$("$GO" run deploy/docker/portcheck.go "edge=$edge_udp/udp" "edge-http=$edge_http/tcp" \
		"registry=$registry/tcp" "inference=$inference/tcp" "nats=$nats/tcp")
	if [[ -n $taken ]]; then
		echo "compose-up: host ports the Compose mesh publishes are taken; nothing was built or started:" >&2
		echo "$taken" >&2
		echo "A running mxp dev (make run) holds 127.0.0.1:9000/udp and 127.0.0.1:4222: stop it (Ctrl-C)," >&2
		echo "or publish the Compose mesh elsewhere, e.g.:" >&2
		echo "  MXP_EDGE_UDP_PORT=19000 MXP_NATS_PORT=127.0.0.1:14222 make compose-up" >&2
		exit 1
	fi
fi

"$MAKE" --no-print-directory images

if ! "${compose[@]}" up -d; then
	echo "compose-up: ${compose[*]} up failed; stopping what it started (${compose[*]} down)" >&2
	"${compose[@]}" down >&2 || true
	exit 1
fi

key=
for _ in $(seq 1 30); do
	key=$("${compose[@]}" logs --no-color edge 2>/dev/null | grep -o '"public_key":"[^"]*"' | tail -1 | cut -d'"' -f4 || true)
	[[ -n $key ]] && break
	sleep 1
done
if [[ -z $key ]]; then
	echo "compose-up: the edge has not logged its public key within 30 s; see: ${compose[*]} logs edge" >&2
	exit 1
fi

cat <<OUT
MXP mesh running (docker compose)
  edge (secure UDP)   $(dialable "$edge_udp")
  edge public key     $key
  edge HTTP           http://$(dialable "$edge_http")  (/metrics /livez /readyz)
  registry HTTP       http://$(dialable "$registry")  (/v1/agents)
  inference HTTP      http://$(dialable "$inference")  (/v1/chat/completions)
  NATS                nats://$(dialable "$nats")

Point the client commands at it (paste into your shell):
export MXP_EDGE=$(dialable "$edge_udp")
export MXP_EDGE_KEY=$key
export MXP_INFERENCE_URL=http://$(dialable "$inference")/v1
OUT
