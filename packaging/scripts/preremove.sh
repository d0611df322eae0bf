#!/bin/sh
# Before removal (deb prerm "remove", rpm %preun with 0 left): stop and
# disable the service and its sockets. Upgrades keep them running.
set -e
case "$1" in
remove | 0)
	if [ -d /run/systemd/system ]; then
		systemctl disable --now ncserver.service ncserver.socket ncserver-control.socket || true
	fi
	;;
esac
exit 0
