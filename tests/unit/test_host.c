/* SPDX-License-Identifier: Apache-2.0 */
/* Host checks: KVM, render nodes, character devices, programs, the report.  */
#include "host/hostcheck.h"
#include "testutil.h"
#include "util/cleanup.h"
#include "util/fs.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <glob.h>
#include <grp.h>
#include <limits.h>
#include <linux/kvm.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>

/* A temporary directory, removed with what the test put in it.  */
#define HOST_TMP_TEMPLATE "/tmp/avm-test-host-XXXXXX"
static char host_tmp[] = HOST_TMP_TEMPLATE;
static bool host_tmp_made;

static const char *
tmp_dir (void)
{
  if (!host_tmp_made)
    {
      cr_assert_not_null (mkdtemp (host_tmp), "mkdtemp: %s", strerror (errno));
      host_tmp_made = true;
    }
  return host_tmp;
}

static char *
tmp_file (const char *name, mode_t mode)
{
  char *path = avm_path_join (tmp_dir (), name);
  int fd = open (path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  cr_assert_geq (fd, 0, "creating %s: %s", path, strerror (errno));
  cr_assert_eq (write (fd, "#!/bin/sh\nexit 0\n", 17), 17);
  close (fd);
  cr_assert_eq (chmod (path, mode), 0);
  return path;
}

static void
tmp_cleanup (void)
{
  if (!host_tmp_made)
    return;
  DIR *d = opendir (host_tmp);
  struct dirent *de;
  while (d && (de = readdir (d)))
    if (strcmp (de->d_name, ".") && strcmp (de->d_name, ".."))
      {
        _cleanup_free_ char *p = avm_path_join (host_tmp, de->d_name);
        unlink (p);
      }
  if (d)
    closedir (d);
  rmdir (host_tmp);
  strcpy (host_tmp, HOST_TMP_TEMPLATE);
  host_tmp_made = false;
}

static const struct avm_check_item *
only_item (const struct avm_host_report *r)
{
  cr_assert_eq (r->n, 1, "expected one item, got %zu", r->n);
  return &r->items[0];
}

/* ---- KVM ---------------------------------------------------------------- */

/* Probe /dev/kvm here, independently of the library.  */
static bool
probe_kvm (int *open_errno)
{
  int fd = open ("/dev/kvm", O_RDWR | O_CLOEXEC);
  *open_errno = fd < 0 ? errno : 0;
  if (fd < 0)
    return false;
  int version = ioctl (fd, KVM_GET_API_VERSION, 0);
  int vm = version == 12 ? ioctl (fd, KVM_CREATE_VM, 0) : -1;
  if (vm >= 0)
    close (vm);
  close (fd);
  return vm >= 0;
}

Test (host, kvm_usable_agrees_with_direct_probe)
{
  int open_errno;
  bool expected = probe_kvm (&open_errno);
  _cleanup_free_ char *why = NULL;
  bool usable = avm_kvm_usable (&why);

  cr_assert_eq (usable, expected, "avm_kvm_usable says %d (%s), direct probe says %d", usable, why ? why : "no reason",
                expected);
  if (usable)
    cr_assert_null (why, "a usable KVM has no reason: %s", why);
  else
    {
      cr_assert_not_null (why);
      cr_assert (strstr (why, "/dev/kvm"), "reason does not name the device: %s", why);
      if (open_errno == ENOENT)
        cr_assert (strstr (why, "does not exist") && strstr (why, "--device /dev/kvm"), "%s", why);
      if (open_errno == EACCES)
        cr_assert (strstr (why, "permission denied opening /dev/kvm") && strstr (why, "kvm group"), "%s", why);
    }
  /* WHY may be NULL.  */
  cr_assert_eq (avm_kvm_usable (NULL), expected);
}

Test (host, check_kvm_item)
{
  int open_errno;
  bool expected = probe_kvm (&open_errno);
  struct avm_host_report r = { 0 };
  avm_error_t err = NULL;

  cr_assert_eq (avm_host_check_kvm (&r, false, &err), 0);
  cr_assert_null (err);
  const struct avm_check_item *it = only_item (&r);
  cr_assert_str_eq (it->name, "kvm");
  if (expected)
    {
      cr_assert_eq (it->status, AVM_CHECK_OK);
      cr_assert_str_eq (it->detail, "/dev/kvm: KVM API 12, usable");
      cr_assert_null (it->hint);
    }
  else
    {
      cr_assert_eq (it->status, AVM_CHECK_WARN);
      cr_assert_str_eq (it->hint, "guests will run with TCG (software emulation), much slower");
      cr_assert (strstr (it->detail, "/dev/kvm"), "%s", it->detail);
    }
  cr_assert (avm_host_report_ok (&r));

  cr_assert_eq (avm_host_check_kvm (&r, true, &err), 0);
  cr_assert_eq (r.n, 2);
  cr_assert_eq (r.items[1].status, expected ? AVM_CHECK_OK : AVM_CHECK_FAIL);
  cr_assert_eq (avm_host_report_ok (&r), expected);
  if (!expected)
    cr_assert_not_null (r.items[1].hint);
  avm_host_report_clear (&r);
}

Test (host, kvm_usable_at_missing_device)
{
  _cleanup_free_ char *why = NULL;
  cr_assert_not (avm_kvm_usable_at ("/dev/does-not-exist", &why));
  cr_assert_str_eq (why, "/dev/does-not-exist does not exist (no KVM support in this kernel or not exposed "
                         "to the container: add --device /dev/does-not-exist)");
}

Test (host, kvm_usable_at_not_a_kvm_device)
{
  _cleanup_free_ char *why = NULL;
  cr_assert_not (avm_kvm_usable_at ("/dev/null", &why));
  cr_assert_not_null (why);
  cr_assert (strstr (why, "/dev/null is not a KVM device"), "%s", why);
}

Test (host, kvm_usable_at_permission_denied, .fini = tmp_cleanup)
{
  _cleanup_free_ char *path = tmp_file ("kvm", 0600);
  int p[2];
  char buf[512] = "";

  cr_assert_eq (chmod (tmp_dir (), 0755), 0);
  if (geteuid () != 0)
    cr_assert_eq (chmod (path, 0), 0);
  cr_assert_eq (pipe (p), 0);
  pid_t pid = fork ();
  cr_assert_geq (pid, 0);
  if (pid == 0)
    {
      char *why = NULL;
      close (p[0]);
      if (geteuid () == 0
          && (setgroups (0, NULL) < 0 || setresgid (65534, 65534, 65534) < 0 || setresuid (65534, 65534, 65534) < 0))
        _exit (77);
      bool usable = avm_kvm_usable_at (path, &why);
      if (why && write (p[1], why, strlen (why)) < 0)
        _exit (3);
      _exit (usable ? 1 : 0);
    }
  close (p[1]);
  ssize_t n = read (p[0], buf, sizeof buf - 1);
  close (p[0]);
  buf[n > 0 ? n : 0] = '\0';
  int status;
  cr_assert_eq (waitpid (pid, &status, 0), pid);
  cr_assert (WIFEXITED (status));
  if (WEXITSTATUS (status) == 77)
    cr_skip_test ("cannot drop privileges here");
  cr_assert_eq (WEXITSTATUS (status), 0, "a file nobody may open was usable as KVM");
  cr_assert (strstr (buf, "permission denied opening ") && strstr (buf, path) && strstr (buf, "kvm group"), "%s", buf);
}

/* ---- Character devices --------------------------------------------------- */

Test (host, char_device_dev_null)
{
  struct avm_host_report r = { 0 };
  avm_error_t err = NULL;

  cr_assert_eq (avm_host_check_char_device (&r, "null", "/dev/null", true, NULL, &err), 0);
  const struct avm_check_item *it = only_item (&r);
  cr_assert_str_eq (it->name, "null");
  cr_assert_eq (it->status, AVM_CHECK_OK);
  cr_assert_str_eq (it->detail, "/dev/null: character device 1:3, opened read-write");
  cr_assert_null (it->hint);
  avm_host_report_clear (&r);
}

Test (host, char_device_missing)
{
  struct avm_host_report r = { 0 };
  avm_error_t err = NULL;

  cr_assert_eq (avm_host_check_char_device (&r, "vhost-x", "/dev/does-not-exist", true, NULL, &err), 0);
  cr_assert_eq (avm_host_check_char_device (&r, "vhost-x", "/dev/does-not-exist", false, NULL, &err), 0);
  cr_assert_eq (avm_host_check_char_device (&r, "vhost-x", "/dev/does-not-exist", false, "try harder", &err), 0);
  cr_assert_eq (r.n, 3);
  cr_assert_eq (r.items[0].status, AVM_CHECK_FAIL);
  cr_assert_eq (r.items[1].status, AVM_CHECK_WARN);
  cr_assert_eq (r.items[2].status, AVM_CHECK_WARN);
  cr_assert_str_eq (r.items[0].detail, "/dev/does-not-exist does not exist");
  cr_assert_not_null (r.items[0].hint);
  cr_assert (strstr (r.items[0].hint, "modprobe does_not_exist"), "%s", r.items[0].hint);
  cr_assert_str_eq (r.items[2].hint, "try harder");
  cr_assert_not (avm_host_report_ok (&r));
  avm_host_report_clear (&r);
}

Test (host, char_device_vhost_vsock_default_hint)
{
  struct avm_host_report r = { 0 };
  avm_error_t err = NULL;
  struct stat st;

  cr_assert_eq (avm_host_check_char_device (&r, "vhost-vsock", "/dev/vhost-vsock", true, NULL, &err), 0);
  const struct avm_check_item *it = only_item (&r);
  if (stat ("/dev/vhost-vsock", &st) < 0)
    {
      cr_assert_eq (it->status, AVM_CHECK_FAIL);
      cr_assert (strstr (it->hint, "modprobe vhost_vsock"), "%s", it->hint);
    }
  else
    {
      int fd = open ("/dev/vhost-vsock", O_RDWR | O_CLOEXEC);
      cr_assert_eq (it->status, fd >= 0 ? AVM_CHECK_OK : AVM_CHECK_FAIL, "%s", it->detail);
      if (fd >= 0)
        close (fd);
    }
  avm_host_report_clear (&r);
}

Test (host, char_device_regular_file, .fini = tmp_cleanup)
{
  _cleanup_free_ char *path = tmp_file ("plain", 0666);
  _cleanup_free_ char *expect = NULL;
  struct avm_host_report r = { 0 };
  avm_error_t err = NULL;

  cr_assert_eq (avm_host_check_char_device (&r, "dev", path, true, NULL, &err), 0);
  cr_assert_eq (avm_host_check_char_device (&r, "dev", path, false, NULL, &err), 0);
  cr_assert_eq (r.n, 2);
  cr_assert_eq (r.items[0].status, AVM_CHECK_FAIL);
  cr_assert_eq (r.items[1].status, AVM_CHECK_WARN);
  cr_assert_geq (asprintf (&expect, "%s is not a character device", path), 0);
  cr_assert_str_eq (r.items[0].detail, expect);
  cr_assert_not_null (r.items[0].hint);
  avm_host_report_clear (&r);
}

Test (host, char_device_permission_denied, .fini = tmp_cleanup)
{
  _cleanup_free_ char *path = avm_path_join (tmp_dir (), "null");
  int p[2];

  if (geteuid () != 0 || mknod (path, S_IFCHR | 0600, makedev (1, 3)) < 0)
    cr_skip_test ("cannot create a device node here");
  cr_assert_eq (chmod (tmp_dir (), 0755), 0);
  cr_assert_eq (pipe (p), 0);
  pid_t pid = fork ();
  cr_assert_geq (pid, 0);
  if (pid == 0)
    {
      struct avm_host_report r = { 0 };
      avm_error_t err = NULL;
      close (p[0]);
      if (setgroups (0, NULL) < 0 || setresgid (65534, 65534, 65534) < 0 || setresuid (65534, 65534, 65534) < 0)
        _exit (77);
      if (avm_host_check_char_device (&r, "dev", path, true, NULL, &err) < 0 || r.n != 1)
        _exit (3);
      dprintf (p[1], "%s|%s|%s", avm_check_status_name (r.items[0].status), r.items[0].detail,
               r.items[0].hint ? r.items[0].hint : "(null)");
      _exit (0);
    }
  close (p[1]);
  char buf[1024] = "";
  ssize_t n = read (p[0], buf, sizeof buf - 1);
  close (p[0]);
  buf[n > 0 ? n : 0] = '\0';
  int status;
  cr_assert_eq (waitpid (pid, &status, 0), pid);
  cr_assert (WIFEXITED (status));
  if (WEXITSTATUS (status) == 77)
    cr_skip_test ("cannot drop privileges here");
  cr_assert_eq (WEXITSTATUS (status), 0);
  cr_assert (strncmp (buf, "fail|permission denied opening ", 31) == 0, "%s", buf);
  cr_assert (strstr (buf, "(mode 0600, owner 0:0)"), "%s", buf);
  cr_assert (strstr (buf, "add the user to the group owning"), "%s", buf);
}

/* ---- Programs ------------------------------------------------------------ */

Test (host, program_sh_found)
{
  struct avm_host_report r = { 0 };
  avm_error_t err = NULL;

  cr_assert_eq (avm_host_check_program (&r, "shell", "sh", NULL, true, NULL, &err), 0);
  const struct avm_check_item *it = only_item (&r);
  cr_assert_str_eq (it->name, "shell");
  cr_assert_eq (it->status, AVM_CHECK_OK, "%s", it->detail);
  cr_assert_eq (it->detail[0], '/', "%s", it->detail);
  const char *base = strrchr (it->detail, '/');
  cr_assert_str_eq (base, "/sh");
  cr_assert_eq (access (it->detail, X_OK), 0);
  cr_assert_null (it->hint);
  avm_host_report_clear (&r);
}

Test (host, program_absolute_not_executable, .fini = tmp_cleanup)
{
  _cleanup_free_ char *path = tmp_file ("not-exec", 0644);
  struct avm_host_report r = { 0 };
  avm_error_t err = NULL;

  cr_assert_eq (avm_host_check_program (&r, "helper:x", path, NULL, true, NULL, &err), 0);
  cr_assert_eq (avm_host_check_program (&r, "helper:x", path, NULL, false, "get x", &err), 0);
  cr_assert_eq (r.n, 2);
  cr_assert_eq (r.items[0].status, AVM_CHECK_FAIL);
  cr_assert (strstr (r.items[0].detail, path), "%s", r.items[0].detail);
  cr_assert (strstr (r.items[0].detail, "not an executable file"), "%s", r.items[0].detail);
  cr_assert_str_eq (r.items[0].hint, "install it or set its path in the profile");
  cr_assert_eq (r.items[1].status, AVM_CHECK_WARN);
  cr_assert_str_eq (r.items[1].hint, "get x");
  avm_host_report_clear (&r);
}

Test (host, program_absolute_missing)
{
  struct avm_host_report r = { 0 };
  avm_error_t err = NULL;

  cr_assert_eq (avm_host_check_program (&r, "qemu", "/nonexistent/qemu-system-x86_64", NULL, true, NULL, &err), 0);
  const struct avm_check_item *it = only_item (&r);
  cr_assert_eq (it->status, AVM_CHECK_FAIL);
  cr_assert_str_eq (it->detail, "/nonexistent/qemu-system-x86_64 does not exist");
  avm_host_report_clear (&r);
}

Test (host, program_in_custom_dirs, .fini = tmp_cleanup)
{
  _cleanup_free_ char *path = tmp_file ("avm-test-host-helper", 0755);
  _cleanup_free_ char *dirs = NULL;
  _cleanup_free_ char *expect = NULL;
  struct avm_host_report r = { 0 };
  avm_error_t err = NULL;

  cr_assert_geq (asprintf (&dirs, "/nonexistent:%s", tmp_dir ()), 0);
  cr_assert_eq (avm_host_check_program (&r, "helper", "avm-test-host-helper", dirs, true, NULL, &err), 0);
  /* Not in PATH: without the directory list it is missing.  */
  cr_assert_eq (avm_host_check_program (&r, "helper", "avm-test-host-helper", NULL, true, NULL, &err), 0);
  cr_assert_eq (avm_host_check_program (&r, "helper", "avm-test-host-missing", dirs, false, NULL, &err), 0);
  cr_assert_eq (r.n, 3);
  cr_assert_eq (r.items[0].status, AVM_CHECK_OK);
  cr_assert_str_eq (r.items[0].detail, path);
  cr_assert_eq (r.items[1].status, AVM_CHECK_FAIL);
  cr_assert_str_eq (r.items[1].detail, "avm-test-host-helper not found in PATH");
  cr_assert_eq (r.items[2].status, AVM_CHECK_WARN);
  cr_assert_geq (asprintf (&expect, "avm-test-host-missing not found in %s or PATH", dirs), 0);
  cr_assert_str_eq (r.items[2].detail, expect);
  avm_host_report_clear (&r);
}

/* ---- Render nodes -------------------------------------------------------- */

static bool
in_list (char **v, size_t n, const char *s)
{
  for (size_t i = 0; i < n; i++)
    if (strcmp (v[i], s) == 0)
      return true;
  return false;
}

/* The path an item is about: its detail up to " (".  */
static char *
item_path (const struct avm_check_item *it)
{
  const char *sp = strstr (it->detail, " (");
  return strndup (it->detail, sp ? (size_t) (sp - it->detail) : strlen (it->detail));
}

static void
check_render_nodes (bool required)
{
  glob_t g = { 0 };
  char *openable[64];
  size_t n_open = 0;
  struct avm_dev_node *nodes = NULL;
  size_t n_nodes = 0;
  struct avm_host_report r = { 0 };
  avm_error_t err = NULL;

  int gr = glob ("/dev/dri/renderD*", 0, NULL, &g);
  cr_assert (gr == 0 || gr == GLOB_NOMATCH);
  for (size_t i = 0; gr == 0 && i < g.gl_pathc && n_open < ARRAY_SIZE (openable); i++)
    {
      int fd = open (g.gl_pathv[i], O_RDWR | O_CLOEXEC);
      if (fd >= 0)
        {
          openable[n_open++] = g.gl_pathv[i];
          close (fd);
        }
    }

  cr_assert_eq (avm_host_list_devices ("drm", "renderD*", &nodes, &n_nodes, &err), 0);
  cr_assert_eq (avm_host_check_render_nodes (&r, required, &err), 0, "%s", err ? err->msg : "");
  cr_assert_null (err);

  for (size_t i = 0; i < r.n; i++)
    cr_assert_str_eq (r.items[i].name, "render-node");
  if (n_nodes == 0)
    {
      /* No render node in sysfs: then none in /dev either.  */
      cr_assert (gr == GLOB_NOMATCH, "%s exists but libudev did not find it", gr ? "" : g.gl_pathv[0]);
      const struct avm_check_item *it = only_item (&r);
      cr_assert_eq (it->status, required ? AVM_CHECK_FAIL : AVM_CHECK_WARN);
      cr_assert_str_eq (it->detail, "no DRM render node (/dev/dri/renderD*)");
      cr_assert_not_null (it->hint);
      cr_assert (strstr (it->hint, "--device /dev/dri/renderD128"), "%s", it->hint);
      cr_assert (strstr (it->hint, "virgl") && strstr (it->hint, "vhost-user-gpu"), "%s", it->hint);
    }
  else
    {
      cr_assert_eq (r.n, n_nodes);
      size_t n_ok = 0;
      for (size_t i = 0; i < r.n; i++)
        {
          _cleanup_free_ char *path = item_path (&r.items[i]);
          cr_assert_str_eq (path, nodes[i].devnode ? nodes[i].devnode : path);
          cr_assert (strncmp (path, "/dev/", 5) == 0, "%s", r.items[i].detail);
          if (r.items[i].status == AVM_CHECK_OK)
            {
              n_ok++;
              cr_assert (in_list (openable, n_open, path), "%s reported usable but cannot be opened", path);
              cr_assert_null (r.items[i].hint);
            }
          else
            {
              cr_assert_not (in_list (openable, n_open, path), "%s opens but was not reported usable", path);
              cr_assert_not_null (r.items[i].hint);
              cr_assert_eq (r.items[i].status, n_open ? AVM_CHECK_INFO : required ? AVM_CHECK_FAIL : AVM_CHECK_WARN);
            }
        }
      cr_assert_eq (n_ok, n_open, "usable nodes reported: %zu, openable under /dev/dri: %zu", n_ok, n_open);
    }
  cr_assert_eq (avm_host_report_ok (&r), !required || n_open > 0);
  avm_host_report_clear (&r);
  avm_dev_nodes_free (nodes, n_nodes);
  if (gr == 0)
    globfree (&g);
}

Test (host, render_nodes_agree_with_dev_dri)
{
  check_render_nodes (false);
  check_render_nodes (true);
}

/* The judgement on nodes that this machine may not have.  */
Test (host, render_nodes_report)
{
  struct avm_dev_node nodes[] = {
    { .sysname = "renderD128", .devnode = "/dev/dri/renderD128", .driver = "virtio_gpu", .open_errno = ENOENT },
    { .sysname = "renderD129", .devnode = "/dev/dri/renderD129", .driver = NULL, .open_errno = EACCES },
    { .sysname = "renderD130", .devnode = NULL, .driver = "i915", .open_errno = ENODEV },
    { .sysname = "renderD131", .devnode = "/dev/dri/renderD131", .driver = "amdgpu", .open_errno = EIO },
  };
  struct avm_host_report r = { 0 };
  avm_error_t err = NULL;

  /* None usable: each is a problem.  */
  cr_assert_eq (avm_host_report_render_nodes (&r, nodes, 4, true, &err), 0);
  cr_assert_eq (r.n, 4);
  for (size_t i = 0; i < r.n; i++)
    {
      cr_assert_str_eq (r.items[i].name, "render-node");
      cr_assert_eq (r.items[i].status, AVM_CHECK_FAIL, "%s", r.items[i].detail);
      cr_assert_not_null (r.items[i].hint);
    }
  cr_assert_str_eq (r.items[0].detail, "/dev/dri/renderD128 (virtio_gpu): in sysfs but missing from /dev");
  cr_assert_str_eq (r.items[0].hint, "pass it to the container (podman --device /dev/dri/renderD128)");
  cr_assert_str_eq (r.items[1].detail, "/dev/dri/renderD129 (unknown driver): permission denied opening it read-write");
  cr_assert (strstr (r.items[1].hint, "render"), "%s", r.items[1].hint);
  cr_assert_str_eq (r.items[2].detail, "/dev/dri/renderD130 (i915): in sysfs but missing from /dev");
  cr_assert (strstr (r.items[3].detail, "/dev/dri/renderD131 (amdgpu): cannot open: "), "%s", r.items[3].detail);
  cr_assert_not (avm_host_report_ok (&r));
  avm_host_report_clear (&r);

  cr_assert_eq (avm_host_report_render_nodes (&r, nodes, 2, false, &err), 0);
  cr_assert_eq (r.n, 2);
  cr_assert_eq (r.items[0].status, AVM_CHECK_WARN);
  cr_assert_eq (r.items[1].status, AVM_CHECK_WARN);
  cr_assert (avm_host_report_ok (&r));
  avm_host_report_clear (&r);

  /* One usable: it is OK, the others only informative.  */
  nodes[2].open_errno = 0;
  nodes[2].devnode = "/dev/dri/renderD130";
  cr_assert_eq (avm_host_report_render_nodes (&r, nodes, 4, true, &err), 0);
  cr_assert_eq (r.n, 4);
  cr_assert_eq (r.items[0].status, AVM_CHECK_INFO);
  cr_assert_eq (r.items[1].status, AVM_CHECK_INFO);
  cr_assert_eq (r.items[2].status, AVM_CHECK_OK);
  cr_assert_str_eq (r.items[2].detail, "/dev/dri/renderD130 (i915)");
  cr_assert_null (r.items[2].hint);
  cr_assert_eq (r.items[3].status, AVM_CHECK_INFO);
  cr_assert (avm_host_report_ok (&r));
  avm_host_report_clear (&r);

  /* None at all.  */
  cr_assert_eq (avm_host_report_render_nodes (&r, NULL, 0, false, &err), 0);
  const struct avm_check_item *it = only_item (&r);
  cr_assert_eq (it->status, AVM_CHECK_WARN);
  cr_assert_str_eq (it->detail, "no DRM render node (/dev/dri/renderD*)");
  cr_assert (strstr (it->hint, "podman --device /dev/dri/renderD128"), "%s", it->hint);
  avm_host_report_clear (&r);
}

Test (host, list_devices_dev_null)
{
  struct avm_dev_node *nodes = NULL;
  size_t n = 0;
  avm_error_t err = NULL;

  if (access ("/sys/class/mem/null", F_OK) < 0)
    cr_skip_test ("no /sys/class/mem/null");
  cr_assert_eq (avm_host_list_devices ("mem", "nul?", &nodes, &n, &err), 0);
  cr_assert_eq (n, 1);
  cr_assert_str_eq (nodes[0].sysname, "null");
  cr_assert_str_eq (nodes[0].devnode, "/dev/null");
  cr_assert_eq (nodes[0].open_errno, 0);
  cr_assert_null (nodes[0].driver, "/dev/null has no driver, got %s", nodes[0].driver);
  cr_assert_eq (access (nodes[0].syspath, F_OK), 0, "%s", nodes[0].syspath);
  avm_dev_nodes_free (nodes, n);

  cr_assert_eq (avm_host_list_devices ("no-such-subsystem", NULL, &nodes, &n, &err), 0);
  cr_assert_eq (n, 0);
  cr_assert_null (nodes);
}

/* The driver is that of the nearest ancestor that has one, as sysfs says.  */
Test (host, list_devices_driver_from_parent)
{
  struct avm_dev_node *nodes = NULL;
  size_t n = 0, checked = 0;
  avm_error_t err = NULL;

  cr_assert_eq (avm_host_list_devices ("block", NULL, &nodes, &n, &err), 0);
  for (size_t i = 0; i < n; i++)
    {
      _cleanup_free_ char *link = NULL;
      char target[PATH_MAX];
      cr_assert_geq (asprintf (&link, "%s/device/driver", nodes[i].syspath), 0);
      ssize_t l = readlink (link, target, sizeof target - 1);
      if (l <= 0)
        continue;
      target[l] = '\0';
      cr_assert_not_null (nodes[i].driver, "%s: no driver, sysfs says %s", nodes[i].sysname, target);
      cr_assert_str_eq (nodes[i].driver, strrchr (target, '/') + 1);
      checked++;
    }
  avm_dev_nodes_free (nodes, n);
  if (!checked)
    cr_skip_test ("no block device with a driver here");
}

/* ---- Report ------------------------------------------------------------- */

Test (host, report_ok_semantics)
{
  struct avm_host_report r = { 0 };
  char name[] = "first";

  cr_assert (avm_host_report_ok (&r));
  cr_assert_eq (avm_host_report_add (&r, AVM_CHECK_OK, name, "fine", NULL), 0);
  name[0] = 'X'; /* the report holds copies */
  cr_assert_eq (avm_host_report_add (&r, AVM_CHECK_INFO, "b", NULL, NULL), 0);
  cr_assert_eq (avm_host_report_add (&r, AVM_CHECK_WARN, "c", "degraded", "do something"), 0);
  cr_assert (avm_host_report_ok (&r));
  cr_assert_eq (avm_host_report_add (&r, AVM_CHECK_FAIL, "d", "broken", NULL), 0);
  cr_assert_not (avm_host_report_ok (&r));
  cr_assert_eq (avm_host_report_add (&r, AVM_CHECK_OK, "e", "fine", NULL), 0);
  cr_assert_not (avm_host_report_ok (&r));

  cr_assert_eq (r.n, 5);
  cr_assert_str_eq (r.items[0].name, "first");
  cr_assert_str_eq (r.items[1].detail, "");
  cr_assert_str_eq (r.items[2].hint, "do something");
  cr_assert_str_eq (r.items[4].name, "e");
  avm_host_report_clear (&r);
  cr_assert_eq (r.n, 0);
  cr_assert_null (r.items);
  cr_assert (avm_host_report_ok (&r));
}

Test (host, status_names)
{
  cr_assert_str_eq (avm_check_status_name (AVM_CHECK_OK), "ok");
  cr_assert_str_eq (avm_check_status_name (AVM_CHECK_INFO), "info");
  cr_assert_str_eq (avm_check_status_name (AVM_CHECK_WARN), "warn");
  cr_assert_str_eq (avm_check_status_name (AVM_CHECK_FAIL), "fail");
}

Test (host, report_json_shape)
{
  struct avm_host_report r = { 0 };
  static const char *const statuses[] = { "ok", "info", "warn", "fail" };

  cr_assert_eq (avm_host_report_add (&r, AVM_CHECK_OK, "kvm", "/dev/kvm: KVM API 12, usable", NULL), 0);
  cr_assert_eq (avm_host_report_add (&r, AVM_CHECK_INFO, "render-node", "/dev/dri/renderD129 (i915)", "x"), 0);
  cr_assert_eq (avm_host_report_add (&r, AVM_CHECK_WARN, "vhost-net", "/dev/vhost-net does not exist", "y"), 0);

  json_t *j = avm_host_report_to_json (&r);
  cr_assert_not_null (j);
  cr_assert_eq (json_object_size (j), 2);
  cr_assert (json_is_true (json_object_get (j, "ok")));
  json_decref (j);

  cr_assert_eq (avm_host_report_add (&r, AVM_CHECK_FAIL, "helper:foo", "foo not found in PATH", "install it"), 0);
  j = avm_host_report_to_json (&r);
  cr_assert_not_null (j);
  cr_assert (json_is_false (json_object_get (j, "ok")));
  json_t *checks = json_object_get (j, "checks");
  cr_assert (json_is_array (checks));
  cr_assert_eq (json_array_size (checks), 4);
  for (size_t i = 0; i < 4; i++)
    {
      json_t *c = json_array_get (checks, i);
      cr_assert (json_is_object (c));
      cr_assert_eq (json_object_size (c), 4);
      cr_assert_str_eq (json_string_value (json_object_get (c, "name")), r.items[i].name);
      cr_assert_str_eq (json_string_value (json_object_get (c, "status")), statuses[i]);
      cr_assert_str_eq (json_string_value (json_object_get (c, "detail")), r.items[i].detail);
      json_t *h = json_object_get (c, "hint");
      if (r.items[i].hint)
        cr_assert_str_eq (json_string_value (h), r.items[i].hint);
      else
        cr_assert (json_is_null (h));
    }
  _cleanup_free_ char *dump = json_dumps (json_array_get (checks, 0), JSON_SORT_KEYS | JSON_COMPACT);
  cr_assert_str_eq (dump,
                    "{\"detail\":\"/dev/kvm: KVM API 12, usable\",\"hint\":null,\"name\":\"kvm\",\"status\":\"ok\"}");
  json_decref (j);

  struct avm_host_report empty = { 0 };
  j = avm_host_report_to_json (&empty);
  _cleanup_free_ char *e = json_dumps (j, JSON_SORT_KEYS | JSON_COMPACT);
  cr_assert_str_eq (e, "{\"checks\":[],\"ok\":true}");
  json_decref (j);
  avm_host_report_clear (&r);
}

static char *
print_report (const struct avm_host_report *r)
{
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream (&buf, &len);
  cr_assert_not_null (f);
  avm_host_report_print (r, f);
  cr_assert_eq (fclose (f), 0);
  return buf;
}

Test (host, report_print_table)
{
  struct avm_host_report r = { 0 };

  cr_assert_eq (avm_host_report_add (&r, AVM_CHECK_OK, "kvm", "/dev/kvm: KVM API 12, usable", NULL), 0);
  cr_assert_eq (avm_host_report_add (&r, AVM_CHECK_WARN, "render-node", "no DRM render node (/dev/dri/renderD*)",
                                     "virgl needs one"),
                0);
  cr_assert_eq (avm_host_report_add (&r, AVM_CHECK_FAIL, "helper:foo", "foo not found in PATH",
                                     "install it\nor set its path"),
                0);
  cr_assert_eq (avm_host_report_add (&r, AVM_CHECK_INFO, "qemu", NULL, NULL), 0);

  _cleanup_free_ char *out = print_report (&r);
  cr_assert_str_eq (out, "ok    kvm          /dev/kvm: KVM API 12, usable\n"
                         "warn  render-node  no DRM render node (/dev/dri/renderD*)\n"
                         "      hint: virgl needs one\n"
                         "FAIL  helper:foo   foo not found in PATH\n"
                         "      hint: install it\n"
                         "            or set its path\n"
                         "info  qemu\n");

  /* Widths follow the content.  */
  struct avm_host_report small = { 0 };
  cr_assert_eq (avm_host_report_add (&small, AVM_CHECK_OK, "a", "x", NULL), 0);
  cr_assert_eq (avm_host_report_add (&small, AVM_CHECK_OK, "bcd", "y", NULL), 0);
  _cleanup_free_ char *out2 = print_report (&small);
  cr_assert_str_eq (out2, "ok  a    x\n"
                          "ok  bcd  y\n");

  struct avm_host_report empty = { 0 };
  _cleanup_free_ char *out3 = print_report (&empty);
  cr_assert_str_eq (out3, "");
  avm_host_report_clear (&r);
  avm_host_report_clear (&small);
}

/* Issue 15: /dev/kvm may open and create VMs, yet QEMU aborts (here:
   "failed to set MSR 0x10a", SIGABRT) or hangs once a vCPU runs.
   avm_kvm_run_vcpu tells those apart from a vCPU that runs; stand-ins for
   QEMU play each outcome (a real one gives whichever this host gives).  */
static char *
fake_qemu (const char *dir, const char *name, const char *body)
{
  char *text = NULL;
  cr_assert_geq (asprintf (&text, "#!/bin/sh\n%s\n", body), 0);
  char *p = tu_write (dir, name, text);
  chmod (p, 0755);
  free (text);
  return p;
}

Test (host, kvm_vcpu_outcomes)
{
  char *dir = tu_tmpdir ();
  char *why = NULL;
  char *ok = fake_qemu (dir, "ok", "case \"$*\" in *isa-debug-exit*) exit 67;; esac; exit 1");
  cr_assert (avm_kvm_run_vcpu (ok, "x86_64", "host", &why), "%s", why);
  char *arm = fake_qemu (dir, "arm", "case \"$*\" in *virt,accel=kvm*) exit 0;; esac; exit 1");
  cr_assert (avm_kvm_run_vcpu (arm, "aarch64", "host", &why), "%s", why);
  char *abrt = fake_qemu (dir, "abrt",
                          "echo 'qemu: error: failed to set MSR 0x10a to 0x69' >&2\n"
                          "echo 'kvm.c:3183: kvm_buf_set_msrs: Assertion failed.' >&2\nkill -ABRT $$");
  cr_assert (!avm_kvm_run_vcpu (abrt, "x86_64", "host", &why));
  cr_assert (strstr (why, "QEMU was killed by SIGABRT as soon as a vCPU ran under KVM (-cpu host): qemu: error: "
                          "failed to set MSR 0x10a to 0x69"),
             "%s", why);
  free (why);
  char *hang = fake_qemu (dir, "hang", "exec sleep 30");
  cr_assert (!avm_kvm_run_vcpu (hang, "x86_64", "max", &why));
  cr_assert (strstr (why, "a vCPU under KVM (-cpu max) did not come back within 5 s: guests hang"), "%s", why);
  free (why);
  char *fail = fake_qemu (dir, "fail", "echo 'qemu: could not access KVM kernel module' >&2; exit 1");
  cr_assert (!avm_kvm_run_vcpu (fail, "x86_64", "host", &why));
  cr_assert (strstr (why, "QEMU exited with status 1 instead of running a vCPU under KVM"), "%s", why);
  free (why);
  free (ok);
  free (arm);
  free (abrt);
  free (hang);
  free (fail);
  tu_rmtree (dir);
  free (dir);
}

/* A check item that could not be recorded (out of memory) must not leave
   the report ok: text and JSON say the report is incomplete.  */
Test (host, report_lost_item_is_not_ok)
{
  struct avm_host_report r = { 0 };
  cr_assert_eq (avm_host_report_addf (&r, AVM_CHECK_OK, "qemu", NULL, "%s %d", "QEMU", 7), 0);
  cr_assert_str_eq (r.items[0].detail, "QEMU 7");
  cr_assert (avm_host_report_ok (&r));
  avm_host_report_lose (&r);
  cr_assert_not (avm_host_report_ok (&r));
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream (&text, &len);
  avm_host_report_print (&r, f);
  fclose (f);
  cr_assert (strstr (text, "report incomplete: out of memory"), "%s", text);
  json_t *j = avm_host_report_to_json (&r);
  cr_assert (json_is_false (json_object_get (j, "ok")));
  cr_assert (json_is_true (json_object_get (j, "incomplete")));
  json_decref (j);
  free (text);
  avm_host_report_clear (&r);
}
