/* SPDX-License-Identifier: Apache-2.0 */
/* The private D-Bus of -display dbus: an implied service (services.c).  */
#include "plan/internal.h"
#include "util/cleanup.h"
#include "util/strbuf.h"

#include <stdio.h>

/* A private dbus-daemon for `-display dbus`, unless the profile declares
   its own "dbus" service.  Its configuration is avm's own (a "file"
   resource): a session-type bus with EXTERNAL authentication (only the
   user avm runs as) and no service directories, so nothing can be
   activated on it and only QEMU and the display program meet there.  */
static const char dbus_config[] = "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\"\n"
                                  " \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n"
                                  "<!-- written by avm: the private bus of -display dbus -->\n"
                                  "<busconfig>\n"
                                  "  <type>session</type>\n"
                                  "  <listen>unix:path=%s</listen>\n"
                                  "  <auth>EXTERNAL</auth>\n"
                                  "  <policy context=\"default\">\n"
                                  "    <allow send_destination=\"*\" eavesdrop=\"true\"/>\n"
                                  "    <allow eavesdrop=\"true\"/>\n"
                                  "    <allow own=\"*\"/>\n"
                                  "  </policy>\n"
                                  "</busconfig>\n";

json_t *
plan_implied_dbus (void)
{
  json_t *s = json_pack ("{s:[s,s,s,s,s,s], s:s, s:s, s:s, s:b, s:s}", "exec", "dbus-daemon",
                         "--config-file=${run_dir}/dbus.conf", "--nofork", "--nopidfile", "--nosyslog",
                         "--address=unix:path=${socket}", "socket", "${run_dir}/dbus.sock", "ready", "socket",
                         "restart", "on-failure", "critical", 1, "description",
                         "private D-Bus for -display dbus (an external display program attaches here)");
  return s;
}

/* The configuration: its <listen> (required by dbus-daemon, and the same
   as the --address that overrides it) is the service's socket, XML-escaped.  */
int
plan_implied_dbus_config (struct plan_ctx *c)
{
  _cleanup_free_ char *path = NULL, *sock = NULL, *content = NULL;
  int r;
  if ((r = plan_expand (c, "${run_dir}/dbus.conf", "services.dbus", &path)) < 0
      || (r = plan_expand (c, "${run_dir}/dbus.sock", "services.dbus", &sock)) < 0)
    return r;
  struct avm_strbuf b = { 0 };
  for (const char *p = sock; *p; p++)
    avm_strbuf_adds (&b, *p == '&' ? "&amp;" : *p == '<' ? "&lt;" : *p == '>' ? "&gt;" : (char[]) { *p, 0 });
  _cleanup_free_ char *esc = avm_strbuf_steal (&b);
  if (!esc)
    return avm_error_sys (c->err, ENOMEM, "plan");
  if (asprintf (&content, dbus_config, esc) < 0)
    return avm_error_sys (c->err, ENOMEM, "plan");
  struct avm_plan_resource res;
  if (plan_resource_init (&res, "dbus_config", AVM_RES_FILE, path) < 0)
    return avm_error_sys (c->err, ENOMEM, "plan");
  res.content = steal_pointer (&content);
  return plan_add_resource (c, &res, "services.dbus");
}
