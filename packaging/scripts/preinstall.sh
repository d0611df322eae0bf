#!/bin/sh
# Before the files are unpacked (deb preinst, rpm %pre): the system user
# and group that run ncserver and own its sockets and config.
set -e
if ! getent group netcluster >/dev/null; then
	groupadd --system netcluster
fi
if ! getent passwd netcluster >/dev/null; then
	nologin=/usr/sbin/nologin
	[ -x "$nologin" ] || nologin=/sbin/nologin
	useradd --system --gid netcluster --no-create-home --home-dir /nonexistent \
		--shell "$nologin" --comment "netcluster server" netcluster
fi
