#!/bin/sh
# After removal (deb postrm, rpm %postun): forget the units; on a deb
# purge also remove the config directory, the sockets' directory and the
# netcluster user and group (rpm keeps users, as Fedora's guidelines ask).
set -e
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload || true
fi
if [ "$1" = purge ]; then
	rm -rf /etc/netcluster /run/netcluster
	if getent passwd netcluster >/dev/null; then userdel netcluster || true; fi
	if getent group netcluster >/dev/null; then groupdel netcluster || true; fi
fi
exit 0
