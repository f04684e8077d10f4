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
