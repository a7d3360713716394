/* SPDX-License-Identifier: Apache-2.0 */
/* First-use binding of libudev (see util/dl.h). */
#include "host/lazy_udev.h"

AVM_DL_DEFINE (udev, AVM_UDEV_FUNCS, "libudev.so.1", "libudev1")
