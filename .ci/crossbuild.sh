#!/usr/bin/env bash
# crossbuild.sh: vet and build for every platform we ship but do not run on,
# and compile (not run) the Windows test binaries.
#
#   .ci/crossbuild.sh                 # the whole module (./...)
#   .ci/crossbuild.sh ./internal/...  # some packages
#
# Targets: windows/amd64 windows/arm64 darwin/arm64 linux/arm64, with
# CGO_ENABLED=0 (no C cross-compilers needed). For windows/amd64 it also runs
# `go test -c` for every package that has test files. It runs every step,
# then fails if any failed, naming each failing target and command.
set -euo pipefail

cd "$(dirname "$0")/.."

targets=(windows/amd64 windows/arm64 darwin/arm64 linux/arm64)
test_target=windows/amd64
if (($# > 0)); then
	pkgs=("$@")
else
	pkgs=(./...)
fi

export CGO_ENABLED=0
failures=()

# step TARGET CMD...: run CMD for TARGET, record a failure instead of exiting.
step() {
	local target=$1
	shift
	echo "crossbuild: [$target] $*"
	if ! GOOS=${target%/*} GOARCH=${target#*/} "$@"; then
		echo "crossbuild: FAILED [$target] $*" >&2
		failures+=("[$target] $*")
	fi
}

for target in "${targets[@]}"; do
	step "$target" go vet "${pkgs[@]}"
	step "$target" go build "${pkgs[@]}"
done

# Packages with tests, as the test target sees them (build tags included).
if ! test_pkgs=$(GOOS=${test_target%/*} GOARCH=${test_target#*/} \
	go list -f '{{if or .TestGoFiles .XTestGoFiles}}{{.ImportPath}}{{end}}' "${pkgs[@]}"); then
	echo "crossbuild: FAILED [$test_target] go list ${pkgs[*]}" >&2
	failures+=("[$test_target] go list ${pkgs[*]}")
	test_pkgs=
fi
for pkg in $test_pkgs; do
	step "$test_target" go test -c -o /dev/null "$pkg"
done

if ((${#failures[@]} > 0)); then
	echo >&2
	echo "crossbuild: ${#failures[@]} step(s) FAILED:" >&2
	printf '  %s\n' "${failures[@]}" >&2
	exit 1
fi
echo "crossbuild: OK for ${targets[*]} (test binaries: $test_target)"
