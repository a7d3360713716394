/* SPDX-License-Identifier: Apache-2.0 */
/*
 * machine.ramoops (issue 14): the x86 pstore nvdimm of the plan, run in
 * this machine's real QEMU.  The guest kernel looks for its pstore at the
 * address its kernel arguments name (disk/props.h, from launch_cvd's
 * kernel_args.cpp), so the nvdimm must land exactly there: the plan's own
 * -machine, -m, -object and -device lines are started paused and QMP
 * query-memory-devices tells where QEMU put it.  Where the plan leaves the
 * nvdimm out (too much RAM for that address), the same lines with the
 * nvdimm forced in must be refused by QEMU: the planner's boundary is
 * QEMU's own, on both sides.
 */
#include "disk/props.h"
#include "qemu/qmp.h"
#include "testutil.h"
#include "util/cleanup.h"
#include "util/deadline.h"
#include "util/fs.h"
#include "util/json.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#define QEMU_X86 "/usr/bin/qemu-system-x86_64"

static char *tmp;
static pid_t qemu_pid = -1;

static void
setup (void)
{
  tmp = tu_tmpdir ();
}

static void
teardown (void)
{
  if (qemu_pid > 0)
    {
      kill (qemu_pid, SIGKILL);
      waitpid (qemu_pid, NULL, 0);
      qemu_pid = -1;
    }
  tu_rmtree (tmp);
  free (tmp);
}

TestSuite (pstore, .init = setup, .fini = teardown, .timeout = TU_TIMEOUT (120));

/* The plan of aaos-x86_64 on machine TYPE with MEM MiB: its QEMU argv and
   warnings (JSON arrays, owned by the returned plan).  */
static json_t *
plan_of (const char *type, int mem)
{
  char *t = NULL, *m = NULL, *out = NULL, *err = NULL;
  cr_assert_geq (asprintf (&t, "machine.type=%s", type), 0);
  cr_assert_geq (asprintf (&m, "machine.memory=%d", mem), 0);
  char *args[]
      = { "start", "-n", "--json", "-p", "aaos-x86_64", "--set", "machine.accel=tcg", "--set", "qemu.binary=" QEMU_X86,
          "--set", t,    "--set",  m,    NULL };
  int r = tu_avmv (args, &out, &err);
  cr_assert_eq (r, 0, "%s %d: exit %d: %s", type, mem, r, err);
  json_t *j = json_loads (out, 0, NULL);
  cr_assert_not_null (j, "%s", out);
  free (t);
  free (m);
  free (out);
  free (err);
  return j;
}

/* The value after the first OPTION in ARGV whose value contains NEEDLE.  */
static const char *
value_of (json_t *argv, const char *option, const char *needle)
{
  for (size_t i = 0; i + 1 < json_array_size (argv); i++)
    if (strcmp (json_string_value (json_array_get (argv, i)), option) == 0
        && strstr (json_string_value (json_array_get (argv, i + 1)), needle))
      return json_string_value (json_array_get (argv, i + 1));
  return NULL;
}

/* QEMU paused with the given -machine, -m and pstore lines (the backing
   file moved to the test's directory), QMP on a socket there.  Stderr goes
   to ERRFILE.  */
static void
start_qemu (const char *machine, const char *mem, const char *object, const char *device, const char *sock,
            const char *errfile)
{
  char *qmp = NULL;
  cr_assert_geq (asprintf (&qmp, "unix:%s,server=on,wait=off", sock), 0);
  char *argv[] = {
    QEMU_X86,  "-machine",      (char *) machine, "-accel",   "tcg",  "-m", (char *) mem, "-object", (char *) object,
    "-device", (char *) device, "-nodefaults",    "-display", "none", "-S", "-qmp",       qmp,       NULL
  };
  qemu_pid = fork ();
  cr_assert_geq (qemu_pid, 0);
  if (qemu_pid == 0)
    {
      prctl (PR_SET_PDEATHSIG, SIGKILL);
      int null = open ("/dev/null", O_RDWR), e = open (errfile, O_WRONLY | O_CREAT | O_TRUNC, 0600);
      dup2 (null, 0);
      dup2 (null, 1);
      dup2 (e, 2);
      execv (argv[0], argv);
      _exit (127);
    }
  free (qmp);
}

/* The plan's -object line with its mem-path in the test's directory.  */
static char *
local_object (const char *object, const char *file)
{
  const char *p = strstr (object, "mem-path=");
  cr_assert_not_null (p, "%s", object);
  const char *end = strchr (p, ',');
  char *o = NULL;
  cr_assert_geq (asprintf (&o, "%.*smem-path=%s%s", (int) (p - object), object, file, end ? end : ""), 0);
  return o;
}

Test (pstore, nvdimm_where_the_kernel_looks)
{
  if (access (QEMU_X86, X_OK) != 0)
    cr_skip_test ("%s not installed", QEMU_X86);
  static const struct
  {
    const char *type;
    int mem;
    bool fits;
  } cases[] = {
    { "pc", 2048, true }, { "pc", 4096, true }, { "pc", 4097, false }, { "q35", 3072, true }, { "q35", 3584, false },
  };
  char *file = avm_path_join (tmp, "pstore.img");
  char *sock = avm_path_join (tmp, "qmp.sock");
  char *errfile = avm_path_join (tmp, "qemu.err");
  char want_mem[64], want_dev[96];
  snprintf (want_dev, sizeof want_dev, "nvdimm,memdev=objpmem0,id=ramoops,addr=0x%llx",
            (unsigned long long) AVM_RAMOOPS_ADDRESS);
  /* A pstore file as avm start makes it.  */
  FILE *f = fopen (file, "w");
  cr_assert_not_null (f);
  cr_assert_eq (ftruncate (fileno (f), AVM_RAMOOPS_SIZE), 0);
  fclose (f);
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++)
    {
      const char *type = cases[k].type;
      int mem = cases[k].mem;
      json_t *plan = plan_of (type, mem);
      json_t *argv = json_object_get (json_object_get (plan, "qemu"), "argv");
      char *warnings = json_dumps (json_object_get (plan, "warnings"), 0);
      const char *machine = value_of (argv, "-machine", type);
      const char *object = value_of (argv, "-object", "id=objpmem0");
      const char *device = value_of (argv, "-device", "nvdimm");
      cr_assert_not_null (machine);
      snprintf (want_mem, sizeof want_mem, "%dM,maxmem=%dM,slots=2", mem, mem + (AVM_RAMOOPS_SIZE >> 20));
      char *lobject = NULL;
      if (cases[k].fits)
        {
          cr_assert (strstr (machine, ",nvdimm=on"), "%s %d: %s", type, mem, machine);
          cr_assert_not_null (value_of (argv, "-m", want_mem), "%s %d: no -m %s", type, mem, want_mem);
          cr_assert_not_null (object, "%s %d: no pstore backend", type, mem);
          cr_assert_str_eq (device, want_dev);
          cr_assert_null (strstr (warnings, "ramoops"), "%s", warnings);
          lobject = local_object (object, file);
        }
      else
        {
          /* Left out, with a warning naming the key; QEMU refuses it.  */
          cr_assert_null (object, "%s %d: %s", type, mem, object);
          cr_assert_null (device, "%s %d: %s", type, mem, device);
          cr_assert_null (strstr (machine, "nvdimm"), "%s", machine);
          cr_assert (strstr (warnings, "machine.ramoops: left out"), "%s %d: %s", type, mem, warnings);
          cr_assert_geq (asprintf (&lobject, "memory-backend-file,id=objpmem0,share=on,mem-path=%s,size=%d", file,
                                   AVM_RAMOOPS_SIZE),
                         0);
        }
      char *m = NULL, *mach = NULL;
      cr_assert_geq (asprintf (&m, "%dM,maxmem=%dM,slots=2", mem, mem + (AVM_RAMOOPS_SIZE >> 20)), 0);
      cr_assert_geq (asprintf (&mach, "%s,nvdimm=on", type), 0);
      unlink (sock);
      start_qemu (cases[k].fits ? machine : mach, m, lobject, want_dev, sock, errfile);
      if (cases[k].fits)
        {
          _cleanup_qmp_ struct avm_qmp *q = NULL;
          _cleanup_error_ avm_error_t err = NULL;
          _cleanup_json_ json_t *ret = NULL;
          int r = avm_qmp_connect (sock, 20000, &q, &err);
          if (r < 0)
            {
              char *e = tu_read (errfile);
              cr_assert_fail ("%s %d: %s; QEMU: %s", type, mem, err->msg, e ? e : "");
            }
          cr_assert_eq (avm_qmp_execute (q, "query-memory-devices", NULL, 10000, &ret, &err), 0, "%s",
                        err ? err->msg : "");
          json_t *d = json_object_get (json_array_get (ret, 0), "data");
          cr_assert_eq (json_array_size (ret), 1);
          cr_assert_str_eq (json_string_value (json_object_get (json_array_get (ret, 0), "type")), "nvdimm");
          cr_assert_str_eq (json_string_value (json_object_get (d, "id")), "ramoops");
          cr_assert_eq ((unsigned long long) json_integer_value (json_object_get (d, "addr")),
                        (unsigned long long) AVM_RAMOOPS_ADDRESS, "%s %d: nvdimm at 0x%llx", type, mem,
                        (unsigned long long) json_integer_value (json_object_get (d, "addr")));
          cr_assert_eq (json_integer_value (json_object_get (d, "size")), AVM_RAMOOPS_SIZE);
          kill (qemu_pid, SIGKILL);
          waitpid (qemu_pid, NULL, 0);
        }
      else
        {
          int st = 0;
          long long end = avm_now_ms () + 20000;
          pid_t w;
          while ((w = waitpid (qemu_pid, &st, WNOHANG)) == 0 && avm_now_ms () < end)
            tu_sleep_ms (20);
          cr_assert_eq (w, qemu_pid, "%s %d: QEMU accepted an nvdimm at 0x%llx", type, mem,
                        (unsigned long long) AVM_RAMOOPS_ADDRESS);
          char *e = tu_read (errfile);
          cr_assert (WIFEXITED (st) && WEXITSTATUS (st) != 0 && e && strstr (e, "usable range"), "%s %d: %s", type, mem,
                     e ? e : "");
          free (e);
        }
      qemu_pid = -1;
      free (m);
      free (mach);
      free (lobject);
      free (warnings);
      json_decref (plan);
    }
  free (file);
  free (sock);
  free (errfile);
}

/* Not on aarch64: launch_cvd has no pstore nvdimm there, and the virt
   machine's layout differs.  */
Test (pstore, refused_off_x86)
{
  char *out = NULL, *err = NULL;
  char *args[] = { "start", "-n", "-p", "aaos-arm64", "--set", "machine.ramoops=true", NULL };
  cr_assert_eq (tu_avmv (args, &out, &err), 2, "%s", err);
  cr_assert (strstr (err, "machine.ramoops: x86 machines only"), "%s", err);
  cr_assert_null (strchr (strchr (err, '\n') + 1, '\n'), "more than one line: %s", err);
  free (out);
  free (err);
}
