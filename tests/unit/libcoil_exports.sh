#!/bin/sh
# SPDX-License-Identifier: MIT
# Production links carry no test double: libcoil (shared and static)
# defines no coil_fake_* symbol, which libcoil-testing does. libcoil.so
# exports the public API and, of the engine's internals, only what
# libcoil-testing needs (engine/libcoil.map): nothing else can be linked
# against by accident.
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
if ! nm -D --defined-only "$so" | grep -qE ' T coil_engine_create(@@COIL_0)?$'; then
	echo "$so does not export coil_engine_create"; fail=1
fi
# No internal symbol beyond the map's list, and libcoil-testing's needs
# are all in it (it links: the loader would refuse it otherwise).
inner=$(nm -D --defined-only "$so" | awk '{print $3}' | sed 's/@.*//' |
	grep -vE '^coil_[a-z0-9]' | grep -v '^COIL_')
need=$(nm -D --undefined-only "$testing" | awk '{print $2}' | sed 's/@.*//' |
	grep -E '^coil__' | sort -u)
extra=$(printf '%s\n' "$inner" | while read -r s; do
		[ -n "$s" ] || continue
		printf '%s\n' "$need" | grep -qxF "$s" || echo "$s"
	done)
if [ -n "$extra" ]; then
	echo "$so exports internals no test library needs:"; echo "$extra"; fail=1
fi
for s in $need; do
	printf '%s\n' "$inner" | grep -qxF "$s" || {
		echo "$testing needs $s, which $so does not export"; fail=1; }
done
n_int=$(printf '%s\n' "$inner" | grep -c .)
echo "libcoil.so: $(nm -D --defined-only "$so" | grep -c ' coil_[a-z0-9]') public symbols, $n_int internals (for libcoil-testing)"
exit $fail
