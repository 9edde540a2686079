#!/usr/bin/env bash
# `make bump-otel VERSION=v0.X.Y [CONTRIB=v0.X.Z] [K8SATTRIBUTES=v1.A.B]`: move every collector
# module to one release.
#
# The collector is released as a set: core modules at v0.X.Y (beta) and v1.(X-94).Y (stable),
# ocb at v0.X.Y, contrib at v0.X.Z (often a patch later). contrib's k8sattributesprocessor has its
# own v1 line; give the version that belongs to the contrib release (the newest whose sources the
# module proxy serves). mdatagen is a generator, not a dependency; it is pinned separately in the
# Makefile because the proxy does not serve every release of it.
#
# What it changes: go.mod (through `go get`, then `go mod tidy`), the ocb manifests and the
# Makefile's OCB_VERSION. components_test.go then checks that builder-config.yaml and go.mod agree.
set -euo pipefail
cd "$(dirname "$0")/.."

version=${VERSION:?VERSION=v0.X.Y is required}
contrib=${CONTRIB:-$version}
k8sattributes=${K8SATTRIBUTES:-}

[[ $version =~ ^v0\.([0-9]+)\.([0-9]+)$ ]] || { echo "VERSION must look like v0.165.0" >&2; exit 2; }
stable="v1.$((BASH_REMATCH[1] - 94)).${BASH_REMATCH[2]}"
stable=${STABLE:-$stable}

core=go.opentelemetry.io/collector
contribmod=github.com/open-telemetry/opentelemetry-collector-contrib
k8sattr=$contribmod/processor/k8sattributesprocessor

# Every collector module go.mod requires (indirect ones too: a stale one, such as the root module
# that once held internal/statusutil, makes imports ambiguous), at the version of its line.
args=()
while read -r mod ver; do
	case $mod in
	"$k8sattr") args+=("$mod@${k8sattributes:-$ver}") ;;
	"$core" | $core/*) if [[ $ver == v1.* ]]; then args+=("$mod@$stable"); else args+=("$mod@$version"); fi ;;
	$contribmod/*) args+=("$mod@$contrib") ;;
	esac
done < <(awk '/^require \($/ { r = 1; next } r && /^\)/ { r = 0 } r { print $1, $2 }' go.mod |
	grep -E "^($core|$contribmod)[/ ]")

# k8sattributesprocessor's v1 line can lag the contrib release; the contrib-internal modules it
# imports must still come from the release, whose sources the proxy serves.
[[ -z $k8sattributes ]] || args+=("$contribmod/internal/kubelet@$contrib")

echo "go get ${args[*]}"
go get "${args[@]}"
# -e: tidy also loads the tests of the packages we import, and some contrib test-only modules
# (pkg/semconvtest) are not served by the proxy. Nothing we build needs them.
go mod tidy -e

# builder-config.yaml and the node agent's builder-config-agent.yaml: upstream entries only
# (in-repo ones are v0.0.0 with a path).
for manifest in builder-config.yaml builder-config-agent.yaml; do
tmp=$(mktemp)
awk -v core="$core" -v contrib="$contribmod" -v v="$version" -v s="$stable" -v c="$contrib" \
	-v k8sattr="$k8sattr" -v k="$k8sattributes" '
	$1 == "-" && $2 == "gomod:" && index($3, core "/") == 1 {
		sub(/v[0-9]+\.[0-9]+\.[0-9]+$/, ($4 ~ /^v1\./) ? s : v)
	}
	$1 == "-" && $2 == "gomod:" && $3 == k8sattr && k != "" { sub(/v[0-9]+\.[0-9]+\.[0-9]+$/, k); print; next }
	$1 == "-" && $2 == "gomod:" && index($3, contrib "/") == 1 && $3 != k8sattr {
		sub(/v[0-9]+\.[0-9]+\.[0-9]+$/, c)
	}
	{ print }' "$manifest" >"$tmp"
mv "$tmp" "$manifest"
done
sed -i -E "s/^(OCB_VERSION +\?= ).*/\1$version/" Makefile

echo "collector $version / $stable, contrib $contrib${k8sattributes:+, k8sattributesprocessor $k8sattributes}"
echo "next: make build test"
