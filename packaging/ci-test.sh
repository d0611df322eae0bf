#!/usr/bin/env bash
# packaging/ci-test.sh: what CI does with the packages, as root on a
# Debian-like machine without systemd running: build the .deb (and .rpm),
# install the .deb with dpkg, run ncserver as its unit would (the unit's
# ExecStart, Environment, User and RuntimeDirectory), talk to it with
# ncclient, stop it, remove and purge the package. Any failed step fails.
set -euo pipefail
cd "$(dirname "$0")"

say() { printf '=== packaging: %s\n' "$*"; }
fail() {
	printf '*** packaging FAILED: %s\n' "$*" >&2
	[ -n "${work:-}" ] && [ -f "$work/ncserver.log" ] && sed 's/^/ncserver: /' "$work/ncserver.log" >&2
	exit 1
}
[ "$(id -u)" = 0 ] || fail "must run as root (dpkg -i)"
work=$(mktemp -d)
server_pid=
cleanup() {
	[ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

say "vet and build"
go vet ./... || fail "go vet (packaging)"
go run . -out "$work/out" -formats deb,rpm || fail "building the packages"
deb=$(ls "$work"/out/*.deb) && rpm=$(ls "$work"/out/*.rpm) || fail "no .deb or .rpm built"
[ -s "$rpm" ] || fail "empty $rpm"
[ "$(dpkg-deb -f "$deb" Package)" = netcluster ] || fail "$deb: not the netcluster package"

say "install $(basename "$deb")"
if dpkg -s netcluster >/dev/null 2>&1; then dpkg --purge netcluster >/dev/null || fail "purging a netcluster left installed"; fi
dpkg -i "$deb" || fail "dpkg -i"
getent passwd netcluster >/dev/null || fail "no netcluster user after install"
getent group netcluster >/dev/null || fail "no netcluster group after install"
[ "$(stat -c '%U:%G %a' /etc/netcluster/config.json)" = "root:netcluster 640" ] ||
	fail "/etc/netcluster/config.json is $(stat -c '%U:%G %a' /etc/netcluster/config.json), want root:netcluster 640"
for bin in ncserver ncclient; do
	v=$("$bin" -version) || fail "$bin -version"
	[[ $v == "$bin "* ]] || fail "$bin -version said: $v"
	echo "$v"
done
ncserver -check /etc/netcluster/config.json || fail "the packaged config does not check"
units=(/usr/lib/systemd/system/ncserver.service /usr/lib/systemd/system/ncserver.socket /usr/lib/systemd/system/ncserver-control.socket)
if command -v systemd-analyze >/dev/null; then
	verify=$(systemd-analyze verify "${units[@]}" 2>&1) || fail "systemd-analyze verify: $verify"
	[ -z "$verify" ] || fail "systemd-analyze verify complains: $verify"
	echo "systemd-analyze verify: clean"
fi

say "start ncserver as ncserver.service would"
unit=${units[0]}
key() { sed -n "s/^$1=//p" "$unit"; }
exec_start=$(key ExecStart)
user=$(key User) group=$(key Group)
rundir=/run/$(key RuntimeDirectory)
[ -n "$exec_start" ] && [ "$user" = netcluster ] && [ "$group" = netcluster ] && [ "$rundir" = /run/netcluster ] ||
	fail "unexpected unit: ExecStart=$exec_start User=$user Group=$group RuntimeDirectory=$rundir"
mapfile -t unit_env < <(key Environment)
install -d -o "$user" -g "$group" -m "$(key RuntimeDirectoryMode)" "$rundir"
# shellcheck disable=SC2086 # ExecStart is split into words, as systemd does
env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin "${unit_env[@]}" \
	setpriv --reuid="$user" --regid="$group" --init-groups -- $exec_start >"$work/ncserver.log" 2>&1 &
server_pid=$!
for _ in $(seq 100); do
	[ -S "$rundir/netcluster-control" ] && grep -q 'ncserver ready' "$work/ncserver.log" && break
	kill -0 "$server_pid" 2>/dev/null || fail "ncserver exited at start"
	sleep 0.1
done
grep -q 'ncserver ready' "$work/ncserver.log" || fail "ncserver not ready after 10 s"
[ "$(stat -c '%U:%G %a' "$rundir/netcluster-A")" = "netcluster:netcluster 660" ] ||
	fail "$rundir/netcluster-A is $(stat -c '%U:%G %a' "$rundir/netcluster-A"), want netcluster:netcluster 660"
[ "$(stat -c '%U %a' "$rundir/netcluster-control")" = "netcluster 600" ] || fail "control socket mode"
grep -q "pid=$server_pid config=\"config /etc/netcluster/config.json\"" "$work/ncserver.log" ||
	fail "the start-up log does not name the pid and the config"

say "talk to it with ncclient"
nc() { ncclient -socketdir "$rundir" -timeout 5s "$@"; }
nc stats || fail "ncclient stats"
nc -json stats | grep -q '"channels"' || fail "ncclient -json stats"
nc listen A log -n 1 >"$work/listen.out" &
listen_pid=$!
for _ in $(seq 50); do
	nc emit A log '"from ci"' >/dev/null || fail "ncclient emit"
	grep -q 'from ci' "$work/listen.out" && break
	sleep 0.2
done
wait "$listen_pid" || fail "ncclient listen"
grep -q '"event":"log"' "$work/listen.out" && grep -q 'from ci' "$work/listen.out" || fail "listen got: $(cat "$work/listen.out")"
echo "listen got: $(cat "$work/listen.out")"

say "stop it"
kill -TERM "$server_pid"
wait "$server_pid" || fail "ncserver exited with status $? on SIGTERM"
server_pid=
[ ! -e "$rundir/netcluster-A" ] || fail "sockets left behind after SIGTERM"
rm -rf "$rundir"

say "remove and purge"
dpkg -r netcluster || fail "dpkg -r"
[ ! -e /usr/bin/ncserver ] || fail "/usr/bin/ncserver left after dpkg -r"
[ -e /etc/netcluster/config.json ] || fail "dpkg -r removed the conffile (only purge should)"
dpkg --purge netcluster || fail "dpkg --purge"
[ ! -e /etc/netcluster ] || fail "/etc/netcluster left after purge"
! getent passwd netcluster >/dev/null || fail "netcluster user left after purge"
! getent group netcluster >/dev/null || fail "netcluster group left after purge"
say "ok: built $(basename "$deb") and $(basename "$rpm"); installed, served, removed"
