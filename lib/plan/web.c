/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The web display (display.web): every output of the GPU on a VNC server
 * of its own, a unix socket in ${run_dir}/vnc named by the output's index,
 * and Debian's websockify serving Debian's noVNC pages and proxying each
 * page's WebSocket to the socket its token names (websockify's
 * UnixDomainSocketDirectory token plugin): one TCP port per instance, one
 * URL per output.
 *
 * avm binds that port itself (a tcp-listen resource) and hands it to
 * websockify as its standard input (--inetd), so the address is avm's to
 * check: QEMU's VNC server has no password here, whoever reaches the port
 * sees and drives the guest, and a non-loopback address is refused unless
 * the profile sets display.web.remote.  No readiness wait: the socket
 * listens before websockify starts, connections wait in its backlog.
 */
#include "plan/internal.h"
#include "util/cleanup.h"
#include "util/strfmt.h"

#include <arpa/inet.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>

#define WEB_RESOURCE "web"
#define VNC_DIR_RESOURCE "vnc"

bool
plan_web_enabled (struct plan_ctx *c)
{
  return pbool (c, "display.web.enabled");
}

static size_t
output_count (struct plan_ctx *c)
{
  size_t n = json_array_size (avm_json_path (c->p, "display.outputs"));
  return n ? n : 1;
}

/* noVNC's page, which websockify serves: listed by a dry run when it is
   not there, refused otherwise.  */
static int
check_novnc (struct plan_ctx *c)
{
  _cleanup_free_ char *page = NULL;
  int r;
  if ((r = plan_expand (c, pstr (c, "display.web.novnc"), "display.web.novnc", &page)) < 0)
    return r;
  char *p = avm_strdupf ("%s/vnc.html", page);
  if (!p)
    return avm_error_sys (c->err, ENOMEM, "plan");
  free (page);
  page = p;
  if (access (page, R_OK) == 0)
    return 0;
  int e = errno;
  if (c->req->dry_run)
    {
      json_array_append_new (c->missing, json_pack ("{s:s, s:s, s:s}", "key", "display.web.novnc", "path", page,
                                                    "error", strerror (e)));
      return plan_warn (c, "display.web.novnc %s: %s (install Debian's novnc package)", page, strerror (e));
    }
  if (e == ENOENT || e == ENOTDIR)
    return avm_error_input (c->err, "%s: display.web.novnc: %s: %s (install Debian's novnc package, or set the key)",
                            c->file, page, strerror (e));
  return avm_error_sys (c->err, e, "display.web.novnc %s", page);
}

/* The listening socket and the socket directory; the URLs.  */
int
plan_web_resources (struct plan_ctx *c)
{
  const char *listen = pstr (c, "display.web.listen");
  struct in_addr a;
  int r;
  if (streq (pstr (c, "display.gpu"), "none"))
    return avm_error_input (c->err, "%s: display.web: there is no screen to show (display.gpu is none)", c->file);
  if (inet_pton (AF_INET, listen, &a) != 1)
    return avm_error_input (c->err, "%s: display.web.listen: \"%s\" is not an IPv4 address (such as 127.0.0.1)",
                            c->file, listen);
  bool loopback = (ntohl (a.s_addr) >> 24) == 127;
  if (!loopback && !pbool (c, "display.web.remote"))
    return avm_error_input (c->err,
                            "%s: display.web.listen: %s is not a loopback address, and the VNC server behind the page "
                            "has no password: whoever reaches it sees and drives the guest; set display.web.remote "
                            "to true to allow it",
                            c->file, listen);
  long long port = pint (c, "display.web.port") + c->instance - 1;
  if (port > 65535)
    return avm_error_input (c->err, "%s: display.web.port: %lld for instance %d is above 65535", c->file, port,
                            c->instance);

  struct avm_plan_resource res;
  _cleanup_free_ char *dir = NULL;
  if ((r = plan_expand (c, "${run_dir}/vnc", "display.web", &dir)) < 0)
    return r;
  if (plan_resource_init (&res, VNC_DIR_RESOURCE, AVM_RES_DIRECTORY, dir) < 0)
    return avm_error_sys (c->err, ENOMEM, "plan");
  if ((r = plan_add_resource (c, &res, "display.web")) < 0)
    return r;
  plan_note_use (c, VNC_DIR_RESOURCE);
  if (plan_resource_init (&res, WEB_RESOURCE, AVM_RES_TCP_LISTEN, NULL) < 0)
    return avm_error_sys (c->err, ENOMEM, "plan");
  res.port = (int) port;
  if (!(res.address = strdup (listen)))
    {
      avm_plan_resource_clear (&res);
      return avm_error_sys (c->err, ENOMEM, "plan");
    }
  if ((r = plan_add_resource (c, &res, "display.web")) < 0)
    return r;

  /* noVNC's page connects to ws://HOST:PORT/PATH; websockify takes the
     output from the token in that path's query.  0.0.0.0 listens
     everywhere: the URL names this host's loopback, where it also
     listens.  */
  const char *host = streq (listen, "0.0.0.0") ? "127.0.0.1" : listen;
  for (size_t k = 0; k < output_count (c); k++)
    {
      char *sock = avm_strdupf ("%s/%zu", dir, k);
      char *url = avm_strdupf ("http://%s:%lld/vnc.html?autoconnect=true&resize=scale&path=websockify%%3Ftoken%%3D%zu",
                               host, port, k);
      if (!sock || !url || avm_argv_push_take (&c->vnc_sockets, sock) < 0 || avm_argv_push_take (&c->web_urls, url) < 0)
        return avm_error_sys (c->err, ENOMEM, "plan");
    }
  if (!(c->web_listen = avm_strdupf ("%s:%lld", listen, port)))
    return avm_error_sys (c->err, ENOMEM, "plan");
  return check_novnc (c);
}

/* websockify in inetd mode on the listening socket, as a profile would
   write it (services.websockify replaces it).  */
json_t *
plan_implied_web (struct plan_ctx *c)
{
  _cleanup_free_ char *web = avm_strdupf ("--web=%s", pstr (c, "display.web.novnc"));
  if (!web)
    return NULL;
  return json_pack ("{s:[s,s,s,s,s], s:s, s:s, s:s, s:b, s:s}", "exec", "websockify", "--inetd", web,
                    "--token-plugin=UnixDomainSocketDirectory", "--token-source=${run_dir}/vnc", "stdin", WEB_RESOURCE,
                    "ready", "none", "restart", "on-failure", "critical", 0, "description",
                    "noVNC pages and a WebSocket proxy to the guest's VNC servers (display.web)");
}

/* One VNC server per output, on the GPU's head of that index.  */
int
plan_emit_web (struct plan_ctx *c)
{
  int r;
  for (size_t k = 0; k < c->vnc_sockets.n; k++)
    {
      _cleanup_free_ char *q = plan_qv (c->vnc_sockets.v[k]);
      if (!q)
        return avm_error_sys (c->err, ENOMEM, "plan");
      if ((r = plan_opt (c, "-vnc", "unix:%s,id=vnc%zu,display=" AVM_PLAN_GPU_ID ",head=%zu", q, k, k)) < 0)
        return r;
    }
  return 0;
}
