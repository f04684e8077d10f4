# SPDX-License-Identifier: MIT
# Sourced by scripts/run, scripts/test and scripts/bench: install what is
# missing from Debian's packages (as root), once.
coil_need_pkgs() {
	local missing=() p
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
			missing+=("$p")
	done
	((${#missing[@]})) || return 0
	echo "installing: ${missing[*]}" >&2
	if [ "$(id -u)" -ne 0 ]; then
		echo "error: missing packages (${missing[*]}) and not root: install them first" >&2
		return 1
	fi
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q >/dev/null || apt-get update -q
	apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
}

COIL_BUILD_PKGS=(build-essential meson ninja-build pkg-config liburing-dev
	libcmocka-dev clang llvm libclang-rt-dev procps iproute2 util-linux
	libhttp-parser-dev python3)
# TLS (engine/tls) and its tests' certificates and clients
COIL_BUILD_PKGS+=(libssl-dev openssl)
# eBPF steering (bpf/, engine/steer, coil-steer): libbpf, bpftool for the
# skeleton and the steer_live test's rules; clang and llvm are above.
COIL_BUILD_PKGS+=(libbpf-dev bpftool)
# DPDK backend (meson feature, auto) and its tests: libdpdk, the veth
# helper's ethtool (tx checksum offload off), iputils-ping
COIL_BUILD_PKGS+=(dpdk-dev libdpdk-dev ethtool iputils-ping)
# dpdk_tcp's lossy wire where the kernel has no sch_netem (nftables numgen)
COIL_BUILD_PKGS+=(nftables)
# HTTP clients and peers for the coil-httpd integration tests (tests/integration/httpd_*.sh)
COIL_BUILD_PKGS+=(curl apache2-utils nghttp2-client wrk nginx-light)
# scripts/bench: its peers (Twisted and Eventlet from /usr/bin/python3, h2o;
# nginx and wrk above), the charts (gnuplot), and the bench smoke test.
COIL_BUILD_PKGS+=(python3-twisted python3-eventlet h2o gnuplot-nox)
# /metrics parsed by the toolkit integration test (tests/integration/toolkit.py)
COIL_BUILD_PKGS+=(python3-prometheus-client)

# The build scripts/run serves from and scripts/test tests first: one
# directory, one set of options, so that either command can follow the
# other on the same clone and CI proves what README's first command builds.
COIL_MAIN_BUILD=build
COIL_MAIN_OPTS=(-Dbuildtype=release)

# coil_setup DIR [MESON OPTIONS...]: configure DIR with exactly these options
# (a DIR set up earlier with others is reconfigured, not silently reused).
coil_setup() {
	local dir=$1
	shift
	if [ -f "$dir/build.ninja" ]; then
		meson configure "$dir" "$@" >/dev/null
	else
		meson setup "$dir" "$@" >/dev/null
	fi
}
