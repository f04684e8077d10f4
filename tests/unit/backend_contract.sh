#!/bin/sh
# SPDX-License-Identifier: MIT
# The backend contract (engine/backend/backend.h): a backend performs I/O
# and reports events through coil__conn_* calls; the core alone decides a
# connection's flags and close reason. Fails when a backend writes them.
# Usage: backend_contract.sh SOURCE_ROOT
root=${1:?source root}
hits=$(grep -nE '\b(c|conn)->(flags|close_reason)[[:space:]]*([|&^]?=)[^=]' \
	"$root"/engine/backend/*.c)
if [ -n "$hits" ]; then
	echo "a backend sets connection flags or close reasons itself:"
	echo "$hits"
	exit 1
fi
# The check must see the files it judges.
ls "$root"/engine/backend/uring.c "$root"/engine/backend/epoll.c >/dev/null
