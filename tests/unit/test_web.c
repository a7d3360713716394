/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The web display (display.web, -O display=web; issue 17): the plan (a
 * VNC server per output on a unix socket, websockify in inetd mode on a
 * socket avm binds, one port per instance, loopback unless the profile
 * says otherwise), and the demo guest booted with it for real: Debian's
 * websockify serves Debian's noVNC page, and a WebSocket of the page's
 * URL reaches QEMU's VNC server (its RFB greeting).
 */
#include "test_start.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

static struct ts_env env;

static void
setup (void)
{
  ts_env_init (&env);
}

static void
teardown (void)
{
  ts_env_fini (&env);
}

TestSuite (web, .init = setup, .fini = teardown);

/* `avm start --dry-run --json` of PROFILE with -O display=web and EXTRA
   (NULL-ended): the plan, or NULL with *ERR and *RC when it fails.  */
static json_t *
web_plan (const char *profile, int *rc, char **err, char *const extra[])
{
  char *args[32]
      = { "start", "-n", "--json", "-p", (char *) profile, "-O", "display=web", "--set", "machine.accel=tcg" };
  size_t n = 9;
  for (size_t i = 0; extra && extra[i]; i++)
    args[n++] = extra[i];
  args[n] = NULL;
  char *out = NULL;
  *rc = tu_avmv (args, &out, err);
  json_t *j = *rc == 0 ? json_loads (out, 0, NULL) : NULL;
  free (out);
  return j;
}

static json_t *
named (json_t *arr, const char *name)
{
  size_t i;
  json_t *e;
  json_array_foreach (arr, i, e)
    if (strcmp (json_string_value (json_object_get (e, "name")) ?: "", name) == 0)
      return e;
  return NULL;
}

/* One VNC server per output, each its own token of one websockify port
   that moves with the instance; websockify gets the socket avm binds.  */
Test (web, plan_per_output_and_instance)
{
  int rc;
  char *err = NULL;
  char *i3[] = { "-i", "3", NULL };
  json_t *j = web_plan ("aaos-x86_64", &rc, &err, i3);
  cr_assert_eq (rc, 0, "%s", err);
  char *argv = json_dumps (json_object_get (json_object_get (j, "qemu"), "argv"), 0);
  for (int k = 0; k < 2; k++)
    {
      char *want = ts_fmt ("\"-vnc\", \"unix:%s/3/vnc/%d,id=vnc%d,display=gpu0,head=%d\"",
                           getenv ("AVM_RUNTIME_DIR") ?: "/run/avm", k, k, k);
      cr_assert (strstr (argv, want), "no %s in %s", want, argv);
    }
  cr_assert_null (strstr (argv, "vnc/2"), "%s", argv);
  json_t *web = json_object_get (json_object_get (j, "guest"), "web");
  cr_assert_str_eq (json_string_value (json_object_get (web, "listen")), "127.0.0.1:6082");
  json_t *urls = json_object_get (web, "urls");
  cr_assert_eq (json_array_size (urls), 2);
  cr_assert_str_eq (json_string_value (json_array_get (urls, 1)),
                    "http://127.0.0.1:6082/vnc.html?autoconnect=true&resize=scale&path=websockify%3Ftoken%3D1");
  json_t *res = named (json_object_get (j, "resources"), "web");
  cr_assert_str_eq (json_string_value (json_object_get (res, "type")), "tcp-listen");
  cr_assert_eq (json_integer_value (json_object_get (res, "port")), 6082);
  cr_assert_str_eq (json_string_value (json_object_get (res, "address")), "127.0.0.1");
  json_t *ws = named (json_object_get (j, "services"), "websockify");
  cr_assert_not_null (ws, "%s", json_dumps (json_object_get (j, "services"), 0));
  cr_assert_str_eq (json_string_value (json_object_get (ws, "stdin")), "web");
  cr_assert (json_is_true (json_object_get (ws, "implied")));
  cr_assert (json_is_false (json_object_get (ws, "critical")));
  char *wargv = json_dumps (json_object_get (ws, "argv"), 0);
  cr_assert (strstr (wargv, "\"--inetd\", \"--web=/usr/share/novnc\", \"--token-plugin=UnixDomainSocketDirectory\""),
             "%s", wargv);
  cr_assert (json_is_true (json_object_get (j, "approved")), "websockify is not approved");
  free (wargv);
  free (argv);
  json_decref (j);

  /* Without the option: nothing of it.  */
  free (err);
  err = NULL;
  char *args[] = { "start", "-n", "--json", "-p", "aaos-x86_64", "--set", "machine.accel=tcg", NULL };
  char *out = NULL;
  cr_assert_eq (tu_avmv (args, &out, &err), 0, "%s", err);
  j = json_loads (out, 0, NULL);
  cr_assert (json_is_null (json_object_get (json_object_get (j, "guest"), "web")));
  cr_assert_null (named (json_object_get (j, "services"), "websockify"));
  cr_assert_null (strstr (out, "\"-vnc\""));
  json_decref (j);
  free (out);
  free (err);
}

/* What is refused (exit 2, one line naming the key) and what the profile
   must say to listen beyond loopback.  */
Test (web, plan_refusals_and_remote)
{
  static const struct
  {
    const char *set[3];
    const char *error; /* NULL: accepted */
  } cases[] = {
    { { "display.web.listen=0.0.0.0" }, "display.web.listen: 0.0.0.0 is not a loopback address" },
    { { "display.web.listen=192.0.2.7" }, "set display.web.remote to true to allow it" },
    { { "display.web.listen=localhost" }, "display.web.listen: \"localhost\" is not an IPv4 address" },
    { { "display.gpu=none" }, "display.web: there is no screen to show (display.gpu is none)" },
    { { "display.web.port=65535", "-i2" }, "display.web.port: 65536 for instance 2 is above 65535" },
    { { "display.web.listen=0.0.0.0", "display.web.remote=true" }, NULL },
    { { "display.web.listen=127.0.0.2" }, NULL },
  };
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++)
    {
      char *extra[8];
      size_t n = 0;
      for (size_t i = 0; i < 3 && cases[k].set[i]; i++)
        if (strncmp (cases[k].set[i], "-i", 2) == 0)
          {
            extra[n++] = "-i";
            extra[n++] = (char *) cases[k].set[i] + 2;
          }
        else
          {
            extra[n++] = "--set";
            extra[n++] = (char *) cases[k].set[i];
          }
      extra[n] = NULL;
      int rc;
      char *err = NULL;
      json_t *j = web_plan ("demo", &rc, &err, extra);
      if (cases[k].error)
        {
          cr_assert_eq (rc, 2, "case %zu: exit %d: %s", k, rc, err);
          cr_assert (strstr (err, cases[k].error), "case %zu: %s", k, err);
          cr_assert_eq (strchr (err, '\n'), err + strlen (err) - 1, "case %zu: not one line: %s", k, err);
        }
      else
        {
          cr_assert_eq (rc, 0, "case %zu: %s", k, err);
          json_t *web = json_object_get (json_object_get (j, "guest"), "web");
          const char *url = json_string_value (json_array_get (json_object_get (web, "urls"), 0));
          /* Everywhere: the URL names this host's loopback.  */
          cr_assert (url
                         && strncmp (url,
                                     strstr (cases[k].set[0], "0.0.0.0") ? "http://127.0.0.1:6080/"
                                                                         : "http://127.0.0.2:6080/",
                                     22)
                                == 0,
                     "case %zu: %s", k, url);
        }
      json_decref (j);
      free (err);
    }
}

/* noVNC that is not installed: listed by a dry run, with what to do.  */
Test (web, plan_without_novnc)
{
  int rc;
  char *err = NULL;
  char *extra[] = { "--set", "display.web.novnc=/nonexistent/novnc", NULL };
  json_t *j = web_plan ("demo", &rc, &err, extra);
  cr_assert_eq (rc, 0, "%s", err);
  cr_assert (strstr (err, "display.web.novnc /nonexistent/novnc/vnc.html: No such file or directory (install "
                          "Debian's novnc package)"),
             "%s", err);
  char *missing = json_dumps (json_object_get (j, "missing_files"), 0);
  cr_assert (strstr (missing, "\"key\": \"display.web.novnc\""), "%s", missing);
  free (missing);
  json_decref (j);
  free (err);
}

/* A TCP port nothing listens on now.  */
static int
free_port (void)
{
  int s = socket (AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
  socklen_t l = sizeof a;
  cr_assert (s >= 0 && bind (s, (struct sockaddr *) &a, sizeof a) == 0
             && getsockname (s, (struct sockaddr *) &a, &l) == 0);
  close (s);
  return ntohs (a.sin_port);
}

static int
connect_port (int port)
{
  int s = socket (AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a
      = { .sin_family = AF_INET, .sin_port = htons (port), .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
  struct timeval tv = { .tv_sec = 20 };
  cr_assert (s >= 0);
  setsockopt (s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  cr_assert_eq (connect (s, (struct sockaddr *) &a, sizeof a), 0, "connect to port %d: %m", port);
  return s;
}

/* Send REQUEST and read until the headers end (and, for a plain GET, the
   connection closes): what came back.  */
static char *
exchange (int s, const char *request, bool to_eof)
{
  cr_assert_eq (write (s, request, strlen (request)), (ssize_t) strlen (request));
  size_t len = 0, cap = 1 << 16;
  char *buf = malloc (cap + 1);
  for (;;)
    {
      if (len == cap)
        buf = realloc (buf, (cap *= 2) + 1);
      ssize_t r = read (s, buf + len, cap - len);
      if (r <= 0)
        break;
      len += (size_t) r;
      buf[len] = 0;
      if (!to_eof && strstr (buf, "\r\n\r\n"))
        {
          /* The first WebSocket frame may follow the headers.  */
          char *body = strstr (buf, "\r\n\r\n") + 4;
          if ((size_t) (buf + len - body) >= 2 && (size_t) (buf + len - body) >= 2u + (body[1] & 0x7f))
            break;
        }
    }
  buf[len] = 0;
  return buf;
}

/* The demo with -O display=web: the URL is printed at boot and listed by
   avm status; the page is served; its WebSocket reaches QEMU's VNC server.  */
Test (web, demo_page_and_vnc_through_websockify, .timeout = 300)
{
  char *img = tu_demo_image ();
  if (access ("/usr/bin/websockify", X_OK) != 0 || access ("/usr/share/novnc/vnc.html", R_OK) != 0)
    cr_skip_test ("websockify or novnc not installed (tests/deps.sh installs them)");
  int port = free_port ();
  struct ts_avm a;
  /* Two outputs: a page each.  */
  ts_start (&env, &a, "demo", "--images", img, "--set", "machine.accel=tcg", "-O", "display=web", "--set",
            ts_fmt ("display.web.port=%d", port), "--set",
            "display.outputs=[{\"xres\":1024,\"yres\":768},{\"xres\":800,\"yres\":600}]", NULL);
  char *msgs = ts_wait_notify (&a, "READY=1", 240);
  cr_assert (strstr (msgs, "READY=1"), "%s\n%s", msgs, ts_stderr (&a));
  char *url = ts_fmt ("http://127.0.0.1:%d/vnc.html?autoconnect=true&resize=scale&path=websockify%%3Ftoken%%3D0", port);
  char *err = ts_stderr (&a);
  cr_assert (strstr (err, ts_fmt ("web display, output 1: http://127.0.0.1:%d/vnc.html?", port)), "%s", err);
  cr_assert (strstr (err, ts_fmt ("web display, output 0: %s", url)), "%s", err);

  char *out = NULL;
  cr_assert_eq (ts_avm (&env, &out, "status", "--json", NULL), 0);
  json_t *st = ts_json (out);
  json_t *web = json_object_get (st, "web");
  cr_assert_str_eq (json_string_value (json_array_get (json_object_get (web, "urls"), 0)), url, "%s", out);
  json_decref (st);
  cr_assert_eq (ts_avm (&env, &out, "status", NULL), 0);
  cr_assert (strstr (out, ts_fmt ("web display, output 0: %s (VNC %s/vnc/0)", url, env.run1)), "%s", out);

  /* The page, from Debian's noVNC.  */
  int s = connect_port (port);
  char *page = exchange (s, "GET /vnc.html HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", true);
  close (s);
  cr_assert (strncmp (page, "HTTP/1.", 7) == 0 && strstr (page, " 200 "), "%.200s", page);
  cr_assert (strstr (page, "noVNC"), "%.400s", page);
  free (page);

  /* Each page's WebSocket: QEMU's RFB greeting in the first binary frame.  */
  for (int k = 0; k < 2; k++)
    {
      s = connect_port (port);
      char *resp = exchange (s,
                             ts_fmt ("GET /websockify?token=%d HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                                     "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                                     "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: binary\r\n\r\n",
                                     k),
                             false);
      close (s);
      cr_assert (strstr (resp, "101 Switching Protocols"), "output %d: %.300s", k, resp);
      /* RFC 6455's sample key and its accept value.  */
      cr_assert (strstr (resp, "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), "%.300s", resp);
      const char *frame = strstr (resp, "\r\n\r\n") + 4;
      cr_assert_eq ((unsigned char) frame[0], 0x82, "output %d: not a final binary frame", k);
      cr_assert_eq (frame[1] & 0x7f, 12);
      cr_assert (memcmp (frame + 2, "RFB 003.008\n", 12) == 0, "output %d: %.12s", k, frame + 2);
      free (resp);
    }

  cr_assert_eq (ts_avm (&env, &out, "stop", NULL), 0);
  cr_assert_eq (ts_wait (&a, 60), 0, "%s", ts_stderr (&a));
  free (img);
}

/* The whole path as a user takes it: Debian's headless Chromium (driven
   by npm's playwright-core, tests/browser/novnc.mjs) opens the printed URL,
   the page shows the guest's screen (the demo's text on its framebuffer
   console: not a black frame), and a click and a key typed in the page
   reach the guest, which echoes them on its console.  */
Test (web, chromium_sees_and_drives_the_demo, .timeout = 400)
{
  char *img = tu_demo_image ();
  if (access ("/usr/bin/websockify", X_OK) != 0 || access ("/usr/share/novnc/vnc.html", R_OK) != 0)
    cr_skip_test ("websockify or novnc not installed (tests/deps.sh installs them)");
  const char *script = ts_fmt ("%s/tests/browser/novnc.mjs", tu_srcdir ());
  if (access ("/usr/bin/chromium", X_OK) != 0
      || access (ts_fmt ("%s/tests/browser/node_modules/playwright-core", tu_srcdir ()), R_OK) != 0)
    cr_skip_test ("chromium or playwright-core not installed (tests/deps.sh installs them)");
  int port = free_port ();
  struct ts_avm a;
  ts_start (&env, &a, "demo", "--images", img, "--set", "machine.accel=tcg", "-O", "display=web", "--set",
            ts_fmt ("display.web.port=%d", port), NULL);
  char *msgs = ts_wait_notify (&a, "READY=1", 240);
  cr_assert (strstr (msgs, "READY=1"), "%s\n%s", msgs, ts_stderr (&a));
  char *url = ts_fmt ("http://127.0.0.1:%d/vnc.html?autoconnect=true&resize=scale&path=websockify%%3Ftoken%%3D0", port);
  char *shot = ts_path (&env, "browser.png");
  char *argv[] = { "node", (char *) script, url, shot, "a", NULL };
  char *out = NULL, *err = NULL;
  int rc = tu_run (argv, NULL, &out, &err);
  cr_assert_eq (rc, 0, "novnc.mjs: exit %d\n%s%s", rc, out, err);
  json_t *r = ts_json (out);
  /* The guest's screen at its size, with the demo's banner and report:
     more than a cursor (fbcon's block is 16x32 pixels).  */
  cr_assert_eq (json_integer_value (json_object_get (r, "width")), 1024, "%s", out);
  cr_assert_eq (json_integer_value (json_object_get (r, "height")), 768, "%s", out);
  cr_assert_gt (json_integer_value (json_object_get (r, "lit")), 5000, "the page shows no text: %s (see %s)", out,
                shot);
  unsigned char sig[8] = { 0 };
  FILE *f = fopen (shot, "rb");
  cr_assert (f && fread (sig, 1, 8, f) == 8 && memcmp (sig, "\x89PNG\r\n\x1a\n", 8) == 0, "%s is not a PNG", shot);
  fclose (f);
  json_decref (r);
  free (out);
  free (err);
  out = NULL;

  /* The click (the tablet's BTN_LEFT in the middle of the screen: absolute
     16384,16384 of 0..32767, give or take noVNC's rounding) and KEY_A.  */
  const char *log = NULL;
  for (int i = 0; i < 100; i++)
    {
      log = ts_read_log (&env, "console-console.log");
      if (strstr (log, "AVM_DEMO input: key 30 up") && strstr (log, "AVM_DEMO input: click 272 up at "))
        break;
      tu_sleep_ms (100);
    }
  cr_assert (strstr (log, "AVM_DEMO input: key 30 down"), "no key from the page:\n%s", log);
  const char *click = strstr (log, "AVM_DEMO input: click 272 down at ");
  cr_assert (click, "no click from the page:\n%s", log);
  int x = -1, y = -1;
  cr_assert_eq (sscanf (click, "AVM_DEMO input: click 272 down at %d,%d", &x, &y), 2, "%.60s", click);
  cr_assert (x > 15000 && x < 17800 && y > 15000 && y < 17800, "click at %d,%d, not the middle", x, y);

  cr_assert_eq (ts_avm (&env, &out, "stop", NULL), 0);
  cr_assert_eq (ts_wait (&a, 60), 0, "%s", ts_stderr (&a));
  free (img);
}
