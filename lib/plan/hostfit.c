/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Whether this host has what a profile asks for: guest memory against the
 * host's (MemTotal of /proc/meminfo), vCPUs against the CPUs online.  Not
 * errors: QEMU starts anyway (memory is allocated as the guest touches it,
 * vCPUs are threads), but such a guest swaps, is killed by the OOM killer
 * or crawls, so the plan warns (avm start, avm check).
 */
#include "plan/internal.h"
#include "util/cleanup.h"
#include "util/fs.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* MemTotal in MiB, or -1.  */
static long long
host_memory_mib (void)
{
  _cleanup_free_ char *text = NULL;
  _cleanup_error_ avm_error_t err = NULL;
  size_t len;
  if (avm_read_file ("/proc/meminfo", 1u << 20, "a /proc file", &text, &len, &err) < 0)
    return -1;
  const char *p = strstr (text, "MemTotal:");
  long long kib;
  if (!p || sscanf (p, "MemTotal: %lld kB", &kib) != 1 || kib <= 0)
    return -1;
  return kib / 1024;
}

int
avm_plan_host_fit (json_t *profile, json_t *warnings)
{
  json_t *machine = json_object_get (profile, "machine");
  long long memory = json_integer_value (json_object_get (machine, "memory"));
  long long cpus = json_integer_value (json_object_get (machine, "cpus"));
  long long have_mib = host_memory_mib ();
  long online = sysconf (_SC_NPROCESSORS_ONLN);
  if (memory > 0 && have_mib > 0 && memory > have_mib
      && json_array_append_new (warnings,
                                json_sprintf ("machine.memory: the guest gets %lld MiB, more than this host has (%lld "
                                              "MiB): it would swap or be killed; use --set machine.memory=SIZE",
                                              memory, have_mib))
             < 0)
    return -ENOMEM;
  if (cpus > 0 && online > 0 && cpus > online
      && json_array_append_new (warnings,
                                json_sprintf ("machine.cpus: the guest gets %lld vCPUs, more than the %ld CPUs online "
                                              "on this host: it would run slowly; use --set machine.cpus=%ld",
                                              cpus, online, online))
             < 0)
    return -ENOMEM;
  return 0;
}
