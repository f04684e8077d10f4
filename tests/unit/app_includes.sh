#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Apps use only the public API: every #include in apps/ names either a
# public header <coil/NAME.h> (engine/include/coil/, or the generated
# coil/version.h), a system header, or a header of the apps themselves
# ("x.h" resolving inside apps/). Fails naming each include that reaches
# into engine/, bpf/ or the build's private coil_config.h.
#
# usage: app_includes.sh SOURCE_ROOT
set -u
root=$(cd "${1:?usage: app_includes.sh SOURCE_ROOT}" && pwd)
apps=$root/apps
[ -d "$apps" ] && [ -d "$root/engine/include/coil" ] || { echo "not a coil tree: $root"; exit 1; }

# Every header of the project that is not public: by path below engine/
# and bpf/, and by base name (an app could reach one through -I).
declare -A private
while IFS= read -r f; do
	rel=${f#"$root"/}
	case $rel in engine/include/coil/*) continue ;; esac
	private[$(basename "$f")]=$rel
done < <(find "$root/engine" "$root/bpf" -name '*.h' -o -name '*.h.in')
private[coil_config.h]="the build's private config (meson.build)"

bad=0 seen=0
while IFS= read -r src; do
	dir=$(dirname "$src")
	while IFS= read -r line; do
		inc=
		seen=$((seen + 1))
		lineno=${line%%:*}
		[[ ${line#*:} =~ include[[:space:]]*([^[:space:]]*) ]] && inc=${BASH_REMATCH[1]}
		where="${src#"$root"/}:$lineno: $inc"
		case $inc in
		\<coil/*\>)
			name=${inc#<}; name=${name%>}
			[ -f "$root/engine/include/$name" ] || [ -f "$root/engine/include/$name.in" ] || {
				echo "$where: not a public header in engine/include/coil"; bad=1; }
			;;
		\<*\>)
			name=${inc#<}; name=${name%>}
			if [ -n "${private[$(basename "$name")]:-}" ]; then
				echo "$where: private engine header (${private[$(basename "$name")]})"
				bad=1
			fi
			;;
		\"*\")
			name=${inc#\"}; name=${name%\"}
			path=$(realpath -m "$dir/$name")
			if [ ! -f "$path" ] || [[ $path != "$apps"/* ]]; then
				if [ -n "${private[$(basename "$name")]:-}" ]; then
					echo "$where: private engine header (${private[$(basename "$name")]})"
				else
					echo "$where: not a header of the apps (resolves to ${path#"$root"/})"
				fi
				bad=1
			fi
			;;
		*)
			echo "$where: cannot read this include"; bad=1 ;;
		esac
	done < <(grep -nE '^[[:space:]]*#[[:space:]]*include' "$src")
done < <(find "$apps" -name '*.c' -o -name '*.h')

# A scan that found nothing checked nothing.
[ "$seen" -gt 20 ] || { echo "only $seen includes found under apps/: the scan is broken"; exit 1; }
[ "$bad" -eq 0 ] || { echo "FAIL: apps must use only the public API (engine/include/coil)"; exit 1; }
echo "PASS: $seen includes under apps/, all public, system or the apps' own"
