/* SPDX-License-Identifier: Apache-2.0 */
#include "helper/catalog.h"
#include "util/cleanup.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The shape of a value.  Hand-written matchers: the shapes are few and
   small, and a regex library would be a larger thing to trust.  */
enum kind
{
  K_NONE,     /* a flag without value (--virgl) */
  K_FD,       /* ${fd:NAME}: a descriptor avm passes */
  K_FDS,      /* ${fd:A},${fd:B},... */
  K_PATH,     /* an absolute path (no comma) */
  K_ENVPATH,  /* an absolute path (an environment variable's: commas are fine) */
  K_UINT,     /* a decimal number */
  K_PORT,     /* 1..65535 */
  K_BOOL,     /* true or false */
  K_WORD,     /* [A-Za-z0-9_.-]+ */
  K_WORDS,    /* WORD,WORD,... */
  K_ENUM,     /* one of VALUES ("a|b|c") */
  K_HOSTPORT, /* HOST:PORT (an IPv4 address or a host name) */
  K_URI,      /* one of the forms VALUES names: vsock (vsock:CID:PORT),
                 unix (unix://PATH), unix-path (unix:path=PATH) */
  K_OPTS,     /* key[=value],... of the SUB table (virtiofsd -o, --vm) */
};

struct opt
{
  const char *name; /* flag (with its dashes), option key, or NULL for a positional */
  enum kind kind;
  const char *values;    /* K_ENUM, K_URI */
  const struct opt *sub; /* K_OPTS */
  bool next;             /* the value is the next argument (-o VALUE), not after '=' */
};

enum style
{
  GNU,    /* --name=VALUE, --name, or NAME VALUE for `next` flags */
  GFLAGS, /* Cuttlefish's host tools (gflags): -name=VALUE or --name=VALUE */
};

struct helper
{
  const char *program;
  enum style style;
  const struct opt *flags;      /* NULL-name-terminated */
  const struct opt *positional; /* in order, kind K_NONE-terminated; NULL: none */
};

/* clang-format off */
#define END { NULL, K_NONE, NULL, NULL, false }
#define F(n, k) { n, k, NULL, NULL, false }
#define E(n, v) { n, K_ENUM, v, NULL, false }
/* clang-format on */

static const struct opt virtiofsd_o[] = {
  F ("source", K_PATH),
  E ("cache", "auto|always|none|never|metadata"),
  E ("sandbox", "namespace|chroot"),
  F ("xattr", K_NONE),
  F ("no_xattr", K_NONE),
  F ("flock", K_NONE),
  F ("no_flock", K_NONE),
  F ("posix_lock", K_NONE),
  F ("no_posix_lock", K_NONE),
  F ("readdirplus", K_NONE),
  F ("no_readdirplus", K_NONE),
  F ("writeback", K_NONE),
  F ("no_writeback", K_NONE),
  F ("announce_submounts", K_NONE),
  E ("log_level", "debug|info|warn|err|error"),
  F ("timeout", K_UINT),
  F ("max_idle_threads", K_UINT),
  END,
};

static const struct opt virtiofsd[] = {
  F ("--socket-path", K_PATH),
  F ("--fd", K_FD),
  F ("--shared-dir", K_PATH),
  E ("--cache", "auto|always|never|metadata"),
  E ("--sandbox", "namespace|chroot|none"),
  E ("--log-level", "error|warn|info|debug|trace|off"),
  E ("--inode-file-handles", "never|prefer|mandatory"),
  F ("--thread-pool-size", K_UINT),
  F ("--xattr", K_NONE),
  F ("--announce-submounts", K_NONE),
  F ("--rlimit-nofile", K_UINT),
  F ("--syslog", K_NONE),
  { "-o", K_OPTS, NULL, virtiofsd_o, true },
  END,
};

static const struct opt vsock_vm[] = {
  F ("guest-cid", K_UINT),      F ("socket", K_PATH), F ("uds-path", K_PATH),
  F ("tx-buffer-size", K_UINT), F ("groups", K_WORD), END,
};

static const struct opt vhost_device_vsock[] = {
  { "--vm", K_OPTS, NULL, vsock_vm, true },
  F ("--guest-cid", K_UINT),
  F ("--socket", K_PATH),
  F ("--uds-path", K_PATH),
  F ("--tx-buffer-size", K_UINT),
  END,
};

static const struct opt vhost_user_gpu[] = {
  F ("--socket-path", K_PATH), F ("--fd", K_FD), F ("--virgl", K_NONE), F ("--render-node", K_PATH), END,
};

static const struct opt vhost_device_video[] = {
  F ("--socket-path", K_PATH),
  F ("--v4l2-device", K_PATH),
  E ("--backend", "v4l2-decoder|null"),
  END,
};

static const struct opt dbus_daemon[] = {
  F ("--config-file", K_PATH),
  F ("--nofork", K_NONE),
  F ("--nopidfile", K_NONE),
  F ("--nosyslog", K_NONE),
  { "--address", K_URI, "unix-path", NULL, false },
  END,
};

/* Debian's websockify in inetd mode (the listening socket avm bound is
   its stdin), serving noVNC and proxying to a VNC socket of a directory.  */
static const struct opt websockify[] = {
  F ("--inetd", K_NONE),        F ("--web", K_PATH),       E ("--token-plugin", "UnixDomainSocketDirectory"),
  F ("--token-source", K_PATH), F ("--heartbeat", K_UINT), END,
};

static const struct opt vhal_proxy_server_pos[] = {
  F (NULL, K_PATH),
  F (NULL, K_HOSTPORT),
  { NULL, K_URI, "vsock|unix", NULL, false },
  END,
};

/* Cuttlefish's host tools: the flags avm's profiles give them (and the
   release-dependent ones of profiles/aaos-base.json).  */
static const struct opt kernel_log_monitor[] = { F ("log_pipe_fd", K_FD), F ("subscriber_fds", K_FDS), END };
static const struct opt logcat_receiver[] = { F ("log_pipe_fd", K_FD), END };
static const struct opt secure_env[] = {
  F ("confui_server_fd", K_FD),
  F ("snapshot_control_fd", K_FD),
  F ("keymaster_fd_in", K_FD),
  F ("keymaster_fd_out", K_FD),
  F ("gatekeeper_fd_in", K_FD),
  F ("gatekeeper_fd_out", K_FD),
  F ("oemlock_fd_in", K_FD),
  F ("oemlock_fd_out", K_FD),
  F ("keymint_fd_in", K_FD),
  F ("keymint_fd_out", K_FD),
  F ("kernel_events_fd", K_FD),
  E ("keymint_impl", "software|tpm"),
  E ("gatekeeper_impl", "software|tpm"),
  E ("oemlock_impl", "software|tpm"),
  E ("tpm_impl", "in_memory|host_device"),
  F ("undefok", K_WORDS),
  END,
};
static const struct opt modem_simulator[] = { F ("server_fds", K_FDS), F ("sim_type", K_UINT), END };
static const struct opt root_canal[] = {
  F ("test_port", K_PORT), F ("hci_port", K_PORT), F ("link_port", K_PORT), F ("link_ble_port", K_PORT), END,
};
static const struct opt tcp_connector[] = {
  F ("fifo_in", K_FD), F ("fifo_out", K_FD), F ("data_port", K_PORT), F ("buffer_size", K_UINT), END,
};
static const struct opt socket_vsock_proxy[] = {
  E ("server_type", "tcp|vsock|unix"),
  E ("client_type", "tcp|vsock|unix"),
  F ("server_fd", K_FD),
  F ("server_tcp_port", K_PORT),
  F ("server_vsock_port", K_UINT),
  F ("client_tcp_host", K_WORD),
  F ("client_tcp_port", K_PORT),
  F ("client_vsock_id", K_UINT),
  F ("client_vsock_port", K_UINT),
  F ("label", K_WORD),
  F ("events_fd", K_FD),
  F ("start_event_id", K_UINT),
  F ("stop_event_id", K_UINT),
  F ("vhost_user_vsock", K_BOOL),
  END,
};
static const struct opt adb_connector[] = { F ("addresses", K_HOSTPORT), END };
static const struct opt gnss_grpc_proxy[] = {
  F ("gnss_in_fd", K_FD),
  F ("gnss_out_fd", K_FD),
  F ("fixed_location_in_fd", K_FD),
  F ("fixed_location_out_fd", K_FD),
  F ("gnss_grpc_socket", K_PATH),
  F ("gnss_grpc_port", K_PORT),
  F ("gnss_file_path", K_PATH),
  F ("fixed_location_file_path", K_PATH),
  END,
};
static const struct opt tombstone_receiver[] = { F ("server_fd", K_FD), F ("tombstone_dir", K_PATH), END };
static const struct opt config_server[] = { F ("server_fd", K_FD), END };
static const struct opt sensors_simulator[] = {
  F ("sensors_in_fd", K_FD),
  F ("sensors_out_fd", K_FD),
  F ("webrtc_fd", K_FD),
  END,
};
static const struct opt no_flags[] = { END };

static const struct helper catalog[] = {
  { "adb_connector", GFLAGS, adb_connector, NULL },
  { "config_server", GFLAGS, config_server, NULL },
  { "dbus-daemon", GNU, dbus_daemon, NULL },
  { "gnss_grpc_proxy", GFLAGS, gnss_grpc_proxy, NULL },
  { "kernel_log_monitor", GFLAGS, kernel_log_monitor, NULL },
  { "logcat_receiver", GFLAGS, logcat_receiver, NULL },
  { "modem_simulator", GFLAGS, modem_simulator, NULL },
  { "root-canal", GFLAGS, root_canal, NULL },
  { "secure_env", GFLAGS, secure_env, NULL },
  { "sensors_simulator", GFLAGS, sensors_simulator, NULL },
  { "socket_vsock_proxy", GFLAGS, socket_vsock_proxy, NULL },
  { "tcp_connector", GFLAGS, tcp_connector, NULL },
  { "tombstone_receiver", GFLAGS, tombstone_receiver, NULL },
  { "vhal_proxy_server", GNU, no_flags, vhal_proxy_server_pos },
  { "vhost-device-video", GNU, vhost_device_video, NULL },
  { "vhost-device-vsock", GNU, vhost_device_vsock, NULL },
  { "vhost_device_vsock", GNU, vhost_device_vsock, NULL },
  { "vhost-user-gpu", GNU, vhost_user_gpu, NULL },
  { "virtiofsd", GNU, virtiofsd, NULL },
  { "websockify", GNU, websockify, NULL },
};

/* The environment a helper may be given (profiles/aaos-base.json's
   service_env: where the Cuttlefish tools find their configuration).  */
static const struct opt approved_env[] = {
  F ("CUTTLEFISH_CONFIG_FILE", K_ENVPATH),
  F ("CUTTLEFISH_INSTANCE", K_UINT),
  F ("ANDROID_HOST_OUT", K_ENVPATH),
  F ("ANDROID_PRODUCT_OUT", K_ENVPATH),
  F ("ANDROID_ROOT", K_ENVPATH),
  F ("ANDROID_TZDATA_ROOT", K_ENVPATH),
  F ("HOME", K_ENVPATH),
  END,
};

const char *const *
avm_helper_programs (void)
{
  static const char *names[sizeof catalog / sizeof catalog[0] + 1];
  for (size_t i = 0; i < sizeof catalog / sizeof catalog[0]; i++)
    names[i] = catalog[i].program;
  return names;
}

static bool
is_uint (const char *v, size_t n)
{
  if (n == 0 || n > 10)
    return false;
  for (size_t i = 0; i < n; i++)
    if (!isdigit ((unsigned char) v[i]))
      return false;
  return true;
}

static bool
is_port (const char *v, size_t n)
{
  if (!is_uint (v, n) || n > 5)
    return false;
  long p = strtol (v, NULL, 10);
  return p >= 1 && p <= 65535;
}

static bool
is_word (const char *v, size_t n)
{
  if (n == 0)
    return false;
  for (size_t i = 0; i < n; i++)
    if (!isalnum ((unsigned char) v[i]) && !strchr ("_.-", v[i]))
      return false;
  return true;
}

/* ${fd:NAME} or ${fd:NAME.read}: what the planner leaves for the
   supervisor to resolve.  */
static bool
is_fd (const char *v, size_t n)
{
  if (n < 7 || strncmp (v, "${fd:", 5) != 0 || v[n - 1] != '}')
    return false;
  return is_word (v + 5, n - 6);
}

/* An absolute path without control characters; in an argument also
   without a comma (helpers split options there: the planner refuses one
   that comes from a variable).  */
static bool
is_any_path (const char *v, size_t n)
{
  if (n == 0 || v[0] != '/')
    return false;
  for (size_t i = 0; i < n; i++)
    if ((unsigned char) v[i] < 0x20 || v[i] == 0x7f)
      return false;
  return true;
}

static bool
is_path (const char *v, size_t n)
{
  return is_any_path (v, n) && !memchr (v, ',', n);
}

static bool
is_hostport (const char *v, size_t n)
{
  const char *colon = memrchr (v, ':', n);
  if (!colon || colon == v)
    return false;
  size_t h = colon - v;
  for (size_t i = 0; i < h; i++)
    if (!isalnum ((unsigned char) v[i]) && !strchr (".-", v[i]))
      return false;
  return is_port (colon + 1, n - h - 1);
}

/* Each '|'-separated element of LIST against V[0..N).  */
static bool
in_list (const char *list, const char *v, size_t n)
{
  for (const char *p = list; p && *p;)
    {
      size_t l = strcspn (p, "|");
      if (l == n && strncmp (p, v, n) == 0)
        return true;
      p += l + (p[l] == '|');
    }
  return false;
}

static bool
is_uri (const char *forms, const char *v, size_t n)
{
  if (in_list (forms, "vsock", 5) && n > 6 && strncmp (v, "vsock:", 6) == 0)
    {
      const char *c = memchr (v + 6, ':', n - 6);
      return c && is_uint (v + 6, c - v - 6) && is_uint (c + 1, n - (c + 1 - v));
    }
  if (in_list (forms, "unix", 4) && n > 7 && strncmp (v, "unix://", 7) == 0)
    return is_path (v + 7, n - 7);
  if (in_list (forms, "unix-path", 9) && n > 10 && strncmp (v, "unix:path=", 10) == 0)
    return is_path (v + 10, n - 10);
  return false;
}

static const char *
kind_name (const struct opt *o)
{
  switch (o->kind)
    {
    case K_NONE:
      return "no value";
    case K_FD:
      return "a descriptor ${fd:NAME}";
    case K_FDS:
      return "descriptors ${fd:NAME},...";
    case K_PATH:
      return "an absolute path without commas";
    case K_ENVPATH:
      return "an absolute path";
    case K_UINT:
      return "a number";
    case K_PORT:
      return "a port 1..65535";
    case K_BOOL:
      return "true or false";
    case K_WORD:
      return "a word (letters, digits, _ . -)";
    case K_WORDS:
      return "words separated by commas";
    case K_ENUM:
      return o->values;
    case K_HOSTPORT:
      return "HOST:PORT";
    case K_URI:
      return strcmp (o->values, "unix-path") == 0 ? "unix:path=PATH" : "vsock:CID:PORT or unix://PATH";
    case K_OPTS:
      return "options key=value,...";
    }
  return "?";
}

static int match_opts (const struct opt *sub, const char *v, size_t n, char **why);

/* Whether V[0..N) has O's shape; *WHY names the offending part for K_OPTS.  */
static int
match (const struct opt *o, const char *v, size_t n, char **why)
{
  switch (o->kind)
    {
    case K_NONE:
      return 0;
    case K_FD:
      return is_fd (v, n);
    case K_FDS:
    case K_WORDS:
      for (const char *p = v, *end = v + n; p <= end;)
        {
          const char *c = memchr (p, ',', end - p);
          size_t l = c ? (size_t) (c - p) : (size_t) (end - p);
          if (!(o->kind == K_FDS ? is_fd (p, l) : is_word (p, l)))
            return 0;
          if (!c)
            break;
          p = c + 1;
        }
      return 1;
    case K_PATH:
      return is_path (v, n);
    case K_ENVPATH:
      return is_any_path (v, n);
    case K_UINT:
      return is_uint (v, n);
    case K_PORT:
      return is_port (v, n);
    case K_BOOL:
      return (n == 4 && strncmp (v, "true", 4) == 0) || (n == 5 && strncmp (v, "false", 5) == 0);
    case K_WORD:
      return is_word (v, n);
    case K_ENUM:
      return in_list (o->values, v, n);
    case K_HOSTPORT:
      return is_hostport (v, n);
    case K_URI:
      return is_uri (o->values, v, n);
    case K_OPTS:
      return match_opts (o->sub, v, n, why);
    }
  return 0;
}

static const struct opt *
find (const struct opt *table, const char *name, size_t n)
{
  for (const struct opt *o = table; o->name; o++)
    if (strlen (o->name) == n && strncmp (o->name, name, n) == 0)
      return o;
  return NULL;
}

/* key[=value],... each key of SUB.  1 when approved; 0 with *WHY; -ENOMEM.  */
static int
match_opts (const struct opt *sub, const char *v, size_t n, char **why)
{
  const char *end = v + n;
  for (const char *p = v;;)
    {
      const char *c = memchr (p, ',', end - p);
      size_t l = c ? (size_t) (c - p) : (size_t) (end - p);
      const char *eq = memchr (p, '=', l);
      size_t kl = eq ? (size_t) (eq - p) : l;
      const struct opt *o = find (sub, p, kl);
      if (!o)
        return asprintf (why, "option %.*s is not approved", (int) kl, p) < 0 ? -ENOMEM : 0;
      bool ok = o->kind == K_NONE ? !eq : eq && match (o, eq + 1, l - kl - 1, why) == 1;
      if (!ok)
        return asprintf (why, "option %.*s wants %s", (int) kl, p, kind_name (o)) < 0 ? -ENOMEM : 0;
      if (!c)
        break;
      p = c + 1;
    }
  return 1;
}

static const struct helper *
lookup (const char *program)
{
  const char *base = strrchr (program, '/');
  base = base ? base + 1 : program;
  for (size_t i = 0; i < sizeof catalog / sizeof catalog[0]; i++)
    if (strcmp (catalog[i].program, base) == 0)
      return &catalog[i];
  return NULL;
}

/* One flag argument A (maybe taking NEXT).  1 when approved, 0 with *WHY,
   -ENOMEM.  *USED_NEXT when NEXT was its value.  */
static int
check_flag (const struct helper *h, const char *a, const char *next, bool *used_next, char **why)
{
  size_t len = strlen (a);
  const char *eq = strchr (a, '=');
  size_t nl = eq ? (size_t) (eq - a) : len;
  const struct opt *o;
  if (h->style == GFLAGS)
    {
      /* -name=V and --name=V are the same flag to gflags.  */
      const char *name = a + 1 + (a[1] == '-');
      o = find (h->flags, name, nl - (name - a));
    }
  else
    o = find (h->flags, a, nl);
  if (!o)
    return asprintf (why, "%s has no approved flag %.*s", h->program, (int) nl, a) < 0 ? -ENOMEM : 0;
  const char *v = eq ? eq + 1 : NULL;
  if (o->next)
    {
      if (eq || !next)
        return asprintf (why, "%s wants its value as the next argument", o->name) < 0 ? -ENOMEM : 0;
      v = next;
      *used_next = true;
    }
  if (o->kind == K_NONE)
    {
      if (v)
        return asprintf (why, "%.*s takes no value", (int) nl, a) < 0 ? -ENOMEM : 0;
      return 1;
    }
  if (!v)
    return asprintf (why, "%.*s wants %s", (int) nl, a, kind_name (o)) < 0 ? -ENOMEM : 0;
  _cleanup_free_ char *sub = NULL;
  int r = match (o, v, strlen (v), &sub);
  if (r < 0)
    return r;
  if (r == 0)
    {
      if (sub)
        return asprintf (why, "%.*s: %s", (int) nl, a, sub) < 0 ? -ENOMEM : 0;
      return asprintf (why, "%.*s wants %s", (int) nl, a, kind_name (o)) < 0 ? -ENOMEM : 0;
    }
  return 1;
}

int
avm_helper_approved (json_t *argv, json_t *env, char **why)
{
  *why = NULL;
  const char *program = json_string_value (json_array_get (argv, 0));
  if (!program)
    return asprintf (why, "no program") < 0 ? -ENOMEM : 1;
  const struct helper *h = lookup (program);
  if (!h)
    return asprintf (why, "program %s is not an approved helper", program) < 0 ? -ENOMEM : 1;

  size_t npos = 0, n = json_array_size (argv);
  for (size_t i = 1; i < n; i++)
    {
      const char *a = json_string_value (json_array_get (argv, i));
      size_t at = i;
      _cleanup_free_ char *sub = NULL;
      int r;
      if (!a)
        return asprintf (why, "argument %zu is not a string", i) < 0 ? -ENOMEM : 1;
      if (a[0] == '-' && a[1])
        {
          bool used_next = false;
          const char *next = i + 1 < n ? json_string_value (json_array_get (argv, i + 1)) : NULL;
          r = check_flag (h, a, next, &used_next, &sub);
          if (used_next)
            i++;
        }
      else
        {
          const struct opt *o = h->positional ? &h->positional[npos] : NULL;
          if (!o || o->kind == K_NONE)
            r = asprintf (&sub, "%s takes no further positional argument", h->program) < 0 ? -ENOMEM : 0;
          else if ((r = match (o, a, strlen (a), &sub)) == 0 && !sub
                   && asprintf (&sub, "positional argument %zu wants %s", npos + 1, kind_name (o)) < 0)
            r = -ENOMEM;
          npos++;
        }
      if (r < 0)
        return r;
      if (r == 0)
        return asprintf (why, "argument %zu \"%s\": %s", at, a, sub) < 0 ? -ENOMEM : 1;
    }

  const char *k;
  json_t *v;
  json_object_foreach (env, k, v)
    {
      const struct opt *o = find (approved_env, k, strlen (k));
      const char *s = json_string_value (v);
      if (!o)
        return asprintf (why, "environment variable %s is not approved", k) < 0 ? -ENOMEM : 1;
      if (!s || match (o, s, strlen (s), NULL) != 1)
        return asprintf (why, "environment variable %s wants %s", k, kind_name (o)) < 0 ? -ENOMEM : 1;
    }
  return 0;
}
