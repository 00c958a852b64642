#!/usr/bin/env bash
# build-images.sh — build the MXP mesh images FROM scratch, pulling nothing from a registry.
#
#   deploy/docker/build-images.sh [mesh] [redis]     (default: both; `make images` runs it)
#
# mesh:  mxp-mesh/mxp-edge:dev, mxp-mesh/mxp-registry:dev, mxp-mesh/mxp-inference:dev and
#        mxp-mesh/mxp:dev from the static binaries in bin/ (`make build`, CGO_ENABLED=0),
#        the host's CA certificates and deploy/docker/Dockerfile.
# redis: mxp-mesh/redis:dev from the host's redis-server and redis-cli plus the shared
#        libraries and loader `ldd` lists (deploy/docker/Dockerfile.redis). Fails with a
#        message, building nothing, when redis-server is not installed.
#
# TAG (default dev) and BIN (default bin) override the tag and the binaries' folder.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
TAG=${TAG:-dev}
BIN=${BIN:-bin}
CERTS=${CERTS:-/etc/ssl/certs/ca-certificates.crt}

die() { echo "build-images: $*" >&2; exit 1; }

# quiet_build runs docker build and shows its output only when it fails (the legacy
# builder's deprecation notice is noise here: without buildx there is no other builder).
quiet_build() {
	local log
	log=$(mktemp)
	if ! docker build "$@" >"$log" 2>&1; then
		cat "$log" >&2
		rm -f "$log"
		die "docker build $* failed"
	fi
	rm -f "$log"
}

docker info >/dev/null 2>&1 || die "docker is not usable here (docker info failed)"

build_mesh() {
	local ctx="$BIN/docker-context"
	[ -r "$CERTS" ] || die "no CA certificates at $CERTS (set CERTS=FILE)"
	rm -rf "$ctx"
	mkdir -p "$ctx/data"
	chmod 0770 "$ctx/data"
	for b in mxp mxp-edge mxp-registry mxp-inference; do
		[ -x "$BIN/$b" ] || die "$BIN/$b is missing: run make build first"
		if ldd "$BIN/$b" >/dev/null 2>&1; then
			die "$BIN/$b is dynamically linked; build it with CGO_ENABLED=0 (make build)"
		fi
		cp "$BIN/$b" "$ctx/$b"
	done
	cp "$CERTS" "$ctx/ca-certificates.crt"
	local target name
	for target in edge:mxp-edge registry:mxp-registry inference:mxp-inference dev:mxp; do
		name=${target#*:}
		target=${target%%:*}
		echo "build-images: mxp-mesh/$name:$TAG (target $target)"
		quiet_build -f deploy/docker/Dockerfile --target "$target" -t "mxp-mesh/$name:$TAG" "$ctx"
	done
}

# copy_with_libs FILE DEST_ROOT copies FILE to DEST_ROOT/usr/bin and every library ldd
# lists (and the loader) to the same path under DEST_ROOT, following symlinks.
copy_with_libs() {
	local file=$1 dest=$2 lib
	mkdir -p "$dest/usr/bin"
	cp -L "$file" "$dest/usr/bin/$(basename "$file")"
	ldd "$file" | awk '/=> \// { print $3 } /^[ \t]*\// { print $1 }' | while read -r lib; do
		[ -e "$lib" ] || die "ldd lists $lib for $file but it does not exist"
		mkdir -p "$dest$(dirname "$lib")"
		cp -L "$lib" "$dest$lib"
	done
}

build_redis() {
	local server cli ctx="$BIN/redis-context"
	server=$(command -v redis-server || true)
	[ -n "$server" ] || die "redis-server is not installed on this host, so mxp-mesh/redis:$TAG cannot be built without pulling an image (install the distribution's redis-server package, e.g. apt-get install redis-server)"
	rm -rf "$ctx"
	mkdir -p "$ctx/rootfs/data"
	chmod 1777 "$ctx/rootfs/data"
	copy_with_libs "$server" "$ctx/rootfs"
	cli=$(command -v redis-cli || true)
	if [ -n "$cli" ]; then
		copy_with_libs "$cli" "$ctx/rootfs"
	fi
	cp deploy/docker/Dockerfile.redis "$ctx/Dockerfile"
	echo "build-images: mxp-mesh/redis:$TAG ($("$server" --version | cut -d' ' -f3))"
	quiet_build -t "mxp-mesh/redis:$TAG" "$ctx"
}

what=("$@")
[ ${#what[@]} -gt 0 ] || what=(mesh redis)
for w in "${what[@]}"; do
	case $w in
	mesh) build_mesh ;;
	redis) build_redis ;;
	*) die "unknown image set $w (mesh or redis)" ;;
	esac
done
