#!/usr/bin/env bash
# Checks the dependency rules of docs/architecture.md ("Dependency rules"):
#   1. no package under pkg/ imports services/ or the module list mesh/ (their tests
#      included);
#   2. the SDK (pkg/agent, pkg/agent/llm, pkg/agent/memory) and the wire contracts
#      (pkg/api/...) compile nothing of services/, the NATS server or the OpenTelemetry
#      SDK;
#   3. pkg/api imports the standard library only;
#   4. no service imports another service or the module list (services meet on the bus;
#      mesh/ imports them all);
#   5. the SDK (every package of pkg/agent, their tests included) never imports pkg/common
#      (the service foundation);
#   6. the SDK's core (pkg/agent) imports neither pkg/agent/llm nor pkg/agent/memory, so an
#      agent that needs no model compiles neither (nor the JSON Schema validator).
# It prints each SDK package's dependency count (all / outside the standard library) and
# exits 1 on the first broken rule it reports (all are reported).
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
status=0

# 1. pkg/ never imports services/ or mesh/; 4. a service never imports another service or
# mesh/. -test includes the packages' test imports.
while IFS= read -r dir; do
	case "$dir" in
	*/pkg/*)
		bad=$(cd "$dir" && $GO list -deps -test ./... | grep -E '^github\.com/mxp-mesh/mesh/(services/|mesh$|mesh[/ .])' || true)
		what="services/ or mesh/"
		;;
	*/services/*)
		self="github.com/mxp-mesh/mesh/services/$(basename "$dir")"
		bad=$(cd "$dir" && $GO list -deps -test ./... | grep -E '^github\.com/mxp-mesh/mesh/(services/|mesh$|mesh[/ .])' | grep -vE "^$self([/ ._]|\$)" || true)
		what="another service or mesh/"
		;;
	*) continue ;;
	esac
	if [ -n "$bad" ]; then
		echo "check-deps: ${dir#"$PWD"/} imports $what:"
		echo "$bad" | sed 's/^/  /'
		status=1
	fi
done < <($GO list -m -f '{{.Dir}}')

# 2. What an agent binary compiles.
forbidden='^github\.com/mxp-mesh/mesh/services/|^github\.com/nats-io/nats-server|^go\.opentelemetry\.io/otel/sdk'
for pkg in ./pkg/agent ./pkg/agent/llm ./pkg/agent/memory ./pkg/api/...; do
	deps=$($GO list -deps "$pkg")
	nonstd=$($GO list -deps -f '{{if not .Standard}}{{.ImportPath}}{{end}}' "$pkg")
	printf 'check-deps: %-20s %4d packages, %3d outside the standard library\n' "$pkg" \
		"$(echo "$deps" | wc -l)" "$(echo "$nonstd" | grep -c . || true)"
	bad=$(echo "$deps" | grep -E "$forbidden" || true)
	if [ -n "$bad" ]; then
		echo "check-deps: $pkg compiles what an agent must not:"
		echo "$bad" | sed 's/^/  /'
		status=1
	fi
done

# 3. The wire contracts are dependency-free.
bad=$($GO list -deps -f '{{if not .Standard}}{{.ImportPath}}{{end}}' ./pkg/api/... | grep -v '^github\.com/mxp-mesh/mesh/pkg/api/' || true)
if [ -n "$bad" ]; then
	echo "check-deps: pkg/api imports more than the standard library:"
	echo "$bad" | sed 's/^/  /'
	status=1
fi
# 5. The SDK never imports the service foundation.
bad=$(cd pkg/agent && $GO list -deps -test ./... | grep -E '^github\.com/mxp-mesh/mesh/pkg/common([/ .]|$)' || true)
if [ -n "$bad" ]; then
	echo "check-deps: pkg/agent imports pkg/common:"
	echo "$bad" | sed 's/^/  /'
	status=1
fi

# 6. The core compiles neither opt-in package.
bad=$($GO list -deps ./pkg/agent | grep -E '^github\.com/mxp-mesh/mesh/pkg/agent/(llm|memory)([/ .]|$)' || true)
if [ -n "$bad" ]; then
	echo "check-deps: the core (pkg/agent) imports an opt-in package:"
	echo "$bad" | sed 's/^/  /'
	status=1
fi
exit $status
