/* SPDX-License-Identifier: Apache-2.0 */
/* First-use binding of libudev (see util/dl.h). */
#define AVM_LAZY_UDEV_IMPL
#include "host/lazy_udev.h"

#include "util/dl.h"

AVM_DL_DEFINE (udev, AVM_UDEV_FUNCS, "libudev.so.1", "Debian: libudev1")
