#!/bin/sh
# After unpacking (deb postinst "configure", rpm %post): make systemd see
# the units; on an upgrade, restart a running ncserver. Nothing is enabled
# or started on a fresh install: systemctl enable --now ncserver.
set -e
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload || true
	case "$1" in
	configure) [ -n "$2" ] && systemctl try-restart ncserver.service || true ;; # deb upgrade
	[2-9]*) systemctl try-restart ncserver.service || true ;;                    # rpm upgrade
	esac
fi
exit 0
