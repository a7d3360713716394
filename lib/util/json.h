/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <jansson.h>

/* jansson >= 2.9 provides json_decrefp for the cleanup attribute.  */
#define _cleanup_json_ __attribute__ ((cleanup (json_decrefp)))
