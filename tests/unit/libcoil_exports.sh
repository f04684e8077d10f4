#!/bin/sh
# SPDX-License-Identifier: MIT
# Production links carry no test double: libcoil (shared and static)
# defines no coil_fake_* symbol, which libcoil-testing does.
# Usage: libcoil_exports.sh LIBCOIL.so LIBCOIL.a LIBCOIL-TESTING.so
set -u
so=$1 a=$2 testing=$3
fail=0
for f in "$so" "$a" "$testing"; do
	[ -f "$f" ] || { echo "missing: $f"; exit 1; }
done
fakes=$(nm -D --defined-only "$so" | grep -E ' coil_fake_')
if [ -n "$fakes" ]; then
	echo "$so exports test doubles:"; echo "$fakes"; fail=1
fi
fakes=$(nm --defined-only "$a" 2>/dev/null | grep -E ' coil_fake_')
if [ -n "$fakes" ]; then
	echo "$a defines test doubles:"; echo "$fakes"; fail=1
fi
# The check sees symbols where they are: libcoil-testing has them.
if ! nm -D --defined-only "$testing" | grep -qE ' T coil_fake_create$'; then
	echo "$testing does not export coil_fake_create"; fail=1
fi
# and libcoil exports its API.
if ! nm -D --defined-only "$so" | grep -qE ' T coil_engine_create$'; then
	echo "$so does not export coil_engine_create"; fail=1
fi
exit $fail
