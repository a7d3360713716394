/* SPDX-License-Identifier: Apache-2.0 */
/* avm check: can this host run a profile? */
#include "avm.h"
#include "host/hostcheck.h"
#include "supervise/peers.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/json.h"
#include "util/strfmt.h"
#include "util/strv.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

void
avm_help_check (FILE *out)
{
  fputs ("Usage: avm check [OPTIONS]\n"
         "\n"
         "Check that this host can run a profile: /dev/kvm, DRM render nodes and their\n"
         "drivers, /dev/vhost-vsock and /dev/vhost-net, the QEMU binary, its version and\n"
         "every device the profile needs, every helper program, and the image files.\n"
         "\n"
         "  -p, --profile NAME|FILE   device profile (default: $AVM_PROFILE or aaos-<host arch>)\n"
         "  -O, --option NAME=CHOICE  select a profile option (variant); repeatable\n"
         "      --set PATH=VALUE      override a profile key; repeatable\n"
         "  -i, --instance N          instance number 1..64\n"
         "      --images DIR          directory with the disk images (${images})\n"
         "      --caps FILE           check against recorded QEMU capabilities instead of the binary\n"
         "      --allow-unapproved    accept extra_qemu_args and helpers outside the approved catalog\n"
         "      --json                print the report as JSON\n"
         "  -h, --help                show this help\n"
         "\n"
         "Exit status: 0 when the profile can run here, 1 when it cannot, 2 on bad usage.\n"
         "See avm-check(1).\n",
         out);
}

/* The web display (display.web, -O display=web): websockify and noVNC,
   required when the profile shows its screen that way.  */
static void
check_web (struct avm_host_report *rep, json_t *web)
{
  bool on = json_is_true (json_object_get (web, "enabled"));
  const char *hint = "apt install websockify novnc (for the web display: -O display=web)";
  avm_error_t err = NULL;
  avm_host_check_program (rep, "websockify", "websockify", NULL, on, hint, &err);
  avm_error_freep (&err);
  const char *novnc = json_string_value (json_object_get (web, "novnc")) ?: "/usr/share/novnc";
  _cleanup_free_ char *page = avm_strdupf ("%s/vnc.html", novnc);
  if (!page)
    avm_host_report_lose (rep);
  else if (access (page, R_OK) == 0)
    avm_host_report_add (rep, AVM_CHECK_OK, "novnc", page, NULL);
  else
    avm_host_report_addf (rep, on ? AVM_CHECK_FAIL : AVM_CHECK_WARN, "novnc", hint, "%s: %s", page, strerror (errno));
}

static bool
accel_allows_tcg (json_t *p)
{
  size_t i;
  json_t *a;
  json_array_foreach (json_object_get (json_object_get (p, "machine"), "accel"), i, a)
    if (streq (json_string_value (a), "tcg"))
      return true;
  return false;
}

static const char *
get (json_t *p, const char *a, const char *b)
{
  return json_string_value (json_object_get (json_object_get (p, a), b));
}

int
avm_cmd_check (int argc, char **argv)
{
  static const struct option longopts[] = {
    AVM_PROFILE_LONGOPTS,
    { "json", no_argument, NULL, OPT_JSON },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
  };
  struct avm_profile_opts o = { .instance = 1 };
  _cleanup_error_ avm_error_t err = NULL;
  _cleanup_profile_ struct avm_profile *p = NULL;
  _cleanup_plan_ struct avm_plan *plan = NULL;
  struct avm_host_report rep = { 0 };
  bool json = false;
  int c, r, ret = AVM_EXIT_USAGE;

  optind = 1;
  opterr = 0;
  while ((c = getopt_long (argc, argv, ":p:O:i:h", longopts, NULL)) != -1)
    {
      r = avm_profile_opts_parse (&o, c, optarg, &err);
      if (r < 0)
        {
          ret = avm_error_report (&err);
          goto out;
        }
      if (r > 0)
        continue;
      if (c == OPT_JSON)
        json = true;
      else if (c == 'h')
        {
          avm_help_check (stdout);
          ret = 0;
          goto out;
        }
      else
        {
          ret = avm_bad_option ("check", c, argv);
          goto out;
        }
    }
  if (optind < argc)
    {
      ret = avm_usage_error ("check", "unexpected argument \"%s\"", argv[optind]);
      goto out;
    }
  /* A profile that does not load is bad input, not a host problem.  */
  if (avm_profile_opts_load (&o, &p, &err) < 0)
    {
      ret = avm_error_report (&err);
      goto out;
    }
  json_t *pj = p->json;
  /* So is a capabilities file that cannot be used (the plan would report
     it as the profile's failure to run here).  */
  if (o.caps_file)
    {
      struct avm_qemu_caps *caps = NULL;
      if (avm_qemu_caps_load_file (o.caps_file, &caps, &err) < 0)
        {
          ret = avm_error_report (&err);
          goto out;
        }
      avm_qemu_caps_free (caps);
    }

  /* Options told by the images (the Android release).  */
  const char *oname;
  json_t *det;
  json_object_foreach (p->detected, oname, det)
    {
      const char *warning = json_string_value (json_object_get (det, "warning"));
      const char *source = json_string_value (json_object_get (det, "source"));
      if (warning)
        avm_host_report_add (&rep, AVM_CHECK_WARN, oname, warning,
                             "use a host package of the same release as the images");
      else
        avm_host_report_addf (&rep, AVM_CHECK_OK, oname, NULL, "%s (%s%s: %s)",
                              json_string_value (json_object_get (p->options, oname)),
                              source && streq (source, "default") ? "the profile's " : "", source ? source : "?",
                              json_string_value (json_object_get (det, "evidence")) ?: "");
    }

  avm_host_check_kvm (&rep, !accel_allows_tcg (pj), &err);
  avm_error_freep (&err);
  bool gl = json_is_true (json_object_get (json_object_get (pj, "display"), "gl"));
  avm_host_check_render_nodes (&rep, gl, &err);
  avm_error_freep (&err);
  avm_host_check_char_device (&rep, "vhost-vsock", "/dev/vhost-vsock", streq (get (pj, "vsock", "mode"), "kernel"),
                              NULL, &err);
  avm_error_freep (&err);
  bool vhost_net = json_is_true (json_object_get (json_object_get (pj, "network"), "vhost"));
  avm_host_check_char_device (&rep, "vhost-net", "/dev/vhost-net", vhost_net, NULL, &err);
  avm_error_freep (&err);
  check_web (&rep, json_object_get (json_object_get (pj, "display"), "web"));

  /* QEMU, its devices, the helpers and images: through the plan (the same
     code that builds the command line), with missing files reported, not fatal.  */
  struct avm_plan_request req = {
    .profile = p,
    .instance = o.instance,
    .images = o.images,
    .caps_file = o.caps_file,
    .allow_unapproved = o.allow_unapproved,
    .dry_run = true,
  };
  if (avm_plan_build (&req, &plan, &err) < 0)
    {
      avm_host_report_add (&rep, AVM_CHECK_FAIL, "profile", err->msg, NULL);
      avm_error_freep (&err);
    }
  else
    {
      const struct avm_plan_service *q = avm_plan_qemu (plan);
      avm_host_report_addf (&rep, AVM_CHECK_OK, "qemu", NULL,
                            "%s %s (%s capabilities), accelerator %s, has every device the profile needs (%zu PCI)",
                            q->program, plan->caps->version, avm_plan_caps_source_name (plan->caps->source),
                            plan->accel, json_array_size (plan->pci));
      /* /dev/kvm may open and create VMs yet abort or hang the moment a
         vCPU runs: run one, with the CPU model the guest would get.  */
      if (streq (plan->accel ?: "", "kvm"))
        {
          const char *cpu = "host";
          for (size_t k = 0; plan->qemu_argv[k]; k++)
            if (streq (plan->qemu_argv[k], "-cpu"))
              cpu = plan->qemu_argv[k + 1];
          _cleanup_free_ char *why = NULL;
          if (avm_kvm_run_vcpu (q->program, plan->arch, cpu, &why))
            avm_host_report_add (&rep, AVM_CHECK_OK, "kvm-vcpu", "a vCPU runs under KVM with this QEMU", NULL);
          else
            avm_host_report_add (&rep, accel_allows_tcg (pj) ? AVM_CHECK_WARN : AVM_CHECK_FAIL, "kvm-vcpu",
                                 why ? why : "a vCPU does not run under KVM",
                                 "this host's KVM cannot run the guest: use --set machine.accel=tcg (slow but "
                                 "working), or fix KVM (nested virtualization, the host kernel)");
        }
      size_t i;
      for (i = 0; i + 1 < plan->nservices; i++)
        {
          const struct avm_plan_service *s = &plan->services[i];
          _cleanup_free_ char *name = avm_strdupf ("helper:%s", s->name), *arg0 = NULL;
          if (!name || (!s->program && !(arg0 = avm_plan_arg_string (&s->argv[0]))))
            avm_host_report_lose (&rep);
          else if (s->program)
            avm_host_report_add (&rep, AVM_CHECK_OK, name, s->program, NULL);
          else
            avm_host_report_addf (&rep, AVM_CHECK_FAIL, name, "install it or add its directory to paths.helpers",
                                  "%s not found", arg0);
        }
      for (i = 0; i < plan->nskipped; i++)
        {
          _cleanup_free_ char *name = avm_strdupf ("helper:%s", plan->skipped[i].name);
          if (!name)
            avm_host_report_lose (&rep);
          else
            avm_host_report_addf (&rep, AVM_CHECK_WARN, name,
                                  "not critical: the platform starts without it (install it for its feature)",
                                  "skipped: %s", plan->skipped[i].reason);
        }
      /* What a snapshot cannot save (a warning: the platform runs).  */
      size_t nb = avm_strv_length (plan->snapshot_blockers);
      if (nb == 0)
        avm_host_report_add (&rep, AVM_CHECK_OK, "snapshots", "possible (RAM, devices and disks can be saved)", NULL);
      else
        {
          _cleanup_free_ char *list = strdup ("");
          for (size_t k = 0; list && k < nb; k++)
            {
              char *n = avm_strdupf ("%s%s%s", list, k ? "; " : "", plan->snapshot_blockers[k]);
              free (list);
              list = n;
            }
          if (!list)
            avm_host_report_lose (&rep);
          else
            avm_host_report_addf (&rep, AVM_CHECK_WARN, "snapshots",
                                  "the platform runs, but avm snapshot save refuses it: leave these out (their "
                                  "profile key or option) to snapshot it",
                                  "not possible: %s", list);
        }
      /* A snapshot of writable disks needs qemu-img (the layers).  */
      bool writable = false;
      for (size_t k = 0; k < plan->ndisks; k++)
        writable |= !plan->disks[k].readonly;
      if (writable && nb == 0)
        {
          _cleanup_free_ char *img = avm_plan_qemu_tool (plan, "qemu-img");
          if (img)
            avm_host_report_add (&rep, AVM_CHECK_OK, "qemu-img", img, NULL);
          else
            avm_host_report_add (&rep, AVM_CHECK_WARN, "qemu-img",
                                 "install qemu-utils: avm snapshot save makes the disks' layers with it", "not found");
        }
      /* What the guest asks of this host (not with --caps: a plan for
         another QEMU), and what it would share with a running guest.  */
      _cleanup_json_ json_t *fit = json_array (), *peers = json_array ();
      if (!fit || !peers || (!o.caps_file && avm_plan_host_fit (pj, fit) < 0) || avm_peers_check (plan, peers) < 0)
        avm_host_report_lose (&rep);
      json_t *w;
      json_array_foreach (fit, i, w)
        avm_host_report_add (&rep, AVM_CHECK_WARN, "host-fit", json_string_value (w), NULL);
      json_array_foreach (peers, i, w)
        avm_host_report_add (&rep, AVM_CHECK_WARN, "instances", json_string_value (w), NULL);
      for (size_t k = 0; plan->unapproved[k]; k++)
        avm_host_report_add (&rep, AVM_CHECK_WARN, "unapproved", plan->unapproved[k],
                             "use the approved helpers and flags (avm-profile(5), APPROVED HELPERS) and no "
                             "extra_qemu_args");
      json_t *m;
      json_array_foreach (plan->missing, i, m)
        {
          bool set = json_object_get (m, "kind") != NULL; /* "image_set": says what to do itself */
          avm_host_report_addf (&rep, AVM_CHECK_FAIL, "images",
                                set ? NULL
                                    : "pass --images DIR (the directory holding the platform's images) or fix the "
                                      "path in the profile",
                                "%s %s: %s", json_string_value (json_object_get (m, "key")),
                                json_string_value (json_object_get (m, "path")),
                                json_string_value (json_object_get (m, "error")));
        }
    }

  if (json)
    {
      _cleanup_json_ json_t *j = avm_host_report_to_json (&rep);
      if (j && json_object_set_new (j, "profile", json_string (p->name)) < 0)
        json_decref (steal_pointer (&j));
      if (avm_json_print (j, stdout) < 0)
        {
          ret = AVM_EXIT_FAILURE;
          goto out;
        }
    }
  else
    {
      printf ("avm check: profile %s (%s)\n", p->name, p->path);
      avm_host_report_print (&rep, stdout);
      printf ("%s\n", avm_host_report_ok (&rep) ? "=> this host can run the profile"
                                                : "=> this host cannot run the profile as it is (see FAIL above)");
    }
  ret = avm_host_report_ok (&rep) ? AVM_EXIT_OK : AVM_EXIT_FAILURE;
out:
  avm_host_report_clear (&rep);
  avm_profile_opts_clear (&o);
  return ret;
}
