/* SPDX-License-Identifier: MIT */
/*
 * coil: a poll-mode, shared-nothing, one-loop-per-core network engine.
 * Include this header to get the core public API (engine, loops, timers,
 * services, connections, UDP); HTTP is in <coil/http1.h> (the codec) and
 * <coil/http.h> (the server library).
 */
#ifndef COIL_COIL_H
#define COIL_COIL_H

#include <coil/engine.h>
#include <coil/loop.h>
#include <coil/timer.h>
#include <coil/service.h>
#include <coil/conn.h>
#include <coil/udp.h>
#include <coil/defer.h>
#include <coil/post.h>
#include <coil/frame.h>
#include <coil/stats.h>
#include <coil/options.h>
#include <coil/steer.h>
#include <coil/tls.h>
#include <coil/version.h>

#endif
