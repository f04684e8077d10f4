#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# coil-httpd driven from /usr/bin/python3 (httpd_client.py): http.client
# with keep-alive, several requests on one connection, HTTP/1.0 with and
# without keep-alive; raw pipelining (10, 100 and 1000 requests in one
# write, 5 MiB files among small responses, random splits), responses in
# order; request bodies (chunked with trailers, Content-Length,
# Expect: 100-continue) followed by pipelined requests.
#
# usage: httpd_python.sh <coil-httpd>
set -euo pipefail
source "$(dirname "$0")/httpd_lib.sh"
httpd_init httpd_python "$@"

httpd_start --cores 2 --max-body 65536
pyclient httpclient
pyclient pipeline --seed "$RANDOM"
pyclient body --max-body 65536 --seed "$RANDOM"
httpd_stop
echo "PASS: httpd_python"
