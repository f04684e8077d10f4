/* SPDX-License-Identifier: MIT */
/*
 * coil: a poll-mode, shared-nothing, one-loop-per-core network engine.
 * Include this header to get the whole public API.
 */
#ifndef COIL_COIL_H
#define COIL_COIL_H

#include <coil/engine.h>
#include <coil/loop.h>
#include <coil/timer.h>
#include <coil/service.h>
#include <coil/conn.h>
#include <coil/udp.h>
#include <coil/http1.h>
#include <coil/options.h>
#include <coil/steer.h>
#include <coil/version.h>

#endif
