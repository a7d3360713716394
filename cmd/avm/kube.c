/* SPDX-License-Identifier: Apache-2.0 */
/* avm kube: print a Kubernetes manifest for a profile (lib/kube). */
#include "avm.h"
#include "kube/kube.h"
#include "util/cleanup.h"
#include "util/json.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define DEFAULT_IMAGE "localhost/avm:latest"
#define DEFAULT_KVM_RESOURCE "devices.kubevirt.io/kvm"

void
avm_help_kube (FILE *out)
{
  fputs ("Usage: avm kube [OPTIONS]\n"
         "\n"
         "Print a Kubernetes manifest (JSON, which is YAML) that runs the avm container\n"
         "image with the plan `avm start` would run: a StatefulSet or a Pod with the\n"
         "profile's CPUs and memory plus QEMU's overhead, /dev/kvm, the images as a\n"
         "read-only volume, avm's stop budget as grace period and avm status probes.\n"
         "\n"
         "  -p, --profile NAME        device profile installed in the image (default: $AVM_PROFILE\n"
         "                            or aaos-<host arch>)\n"
         "  -O, --option NAME=CHOICE  select a profile option; repeatable\n"
         "      --set PATH=VALUE      override a profile key; repeatable\n"
         "      --images DIR          the images here, to plan with (in the pod: /images)\n"
         "      --caps FILE           plan against recorded QEMU capabilities\n"
         "      --allow-unapproved    accept unapproved profile parts (passed on)\n"
         "      --kind KIND           statefulset (default) or pod\n"
         "      --replicas N          StatefulSet replicas 1..64 (default 1); pod N runs instance N+1\n"
         "  -i, --instance N          a Pod's instance number 1..64 (default 1)\n"
         "      --name NAME           metadata.name (default avm-PROFILE)\n"
         "      --image IMAGE         the avm container image (default " DEFAULT_IMAGE ")\n"
         "      --kvm-resource NAME   device plugin resource for /dev/kvm (default\n"
         "                            " DEFAULT_KVM_RESOURCE ")\n"
         "      --kvm-hostpath        /dev/kvm as a hostPath volume instead (podman kube play)\n"
         "      --kvm-group GID       the group of /dev/kvm on the node (default with --kvm-hostpath:\n"
         "                            this host's)\n"
         "      --images-claim NAME   PersistentVolumeClaim with the images (default avm-images)\n"
         "      --images-image REF    an OCI image with the images instead (an image volume)\n"
         "  -h, --help                show this help\n"
         "\n"
         "Exit status: 0 printed, 1 runtime failure, 2 bad usage or bad profile.\n"
         "See avm-kube(1).\n",
         out);
}

enum
{
  OPT_KIND = 0x200,
  OPT_REPLICAS,
  OPT_NAME,
  OPT_IMAGE,
  OPT_KVM_RESOURCE,
  OPT_KVM_HOSTPATH,
  OPT_KVM_GROUP,
  OPT_IMAGES_CLAIM,
  OPT_IMAGES_IMAGE,
};

struct kube_opts
{
  enum avm_kube_kind kind;
  int replicas;
  bool instance_given;
  long long kvm_gid; /* -1: none given */
  const char *name, *image, *kvm_resource, *images_claim, *images_image;
};

static int
parse (struct kube_opts *k, int c, const char *arg)
{
  char *end;
  long v;
  switch (c)
    {
    case OPT_KIND:
      if (streq (arg, "pod"))
        k->kind = AVM_KUBE_POD;
      else if (streq (arg, "statefulset"))
        k->kind = AVM_KUBE_STATEFULSET;
      else
        return avm_usage_error ("kube", "--kind %s: expected pod or statefulset", arg);
      return 0;
    case OPT_REPLICAS:
      errno = 0;
      v = strtol (arg, &end, 10);
      if (errno || *end || end == arg || v < 1 || v > 64)
        return avm_usage_error ("kube", "--replicas %s: expected an integer 1..64", arg);
      k->replicas = (int) v;
      return 0;
    case OPT_NAME:
      k->name = arg;
      return 0;
    case OPT_IMAGE:
      if (!*arg)
        return avm_usage_error ("kube", "--image: empty");
      k->image = arg;
      return 0;
    case OPT_KVM_RESOURCE:
      if (!*arg || strchr (arg, ' '))
        return avm_usage_error ("kube", "--kvm-resource %s: expected a resource name (%s)", arg, DEFAULT_KVM_RESOURCE);
      k->kvm_resource = arg;
      return 0;
    case OPT_KVM_HOSTPATH:
      k->kvm_resource = NULL;
      return 0;
    case OPT_KVM_GROUP:
      errno = 0;
      v = strtol (arg, &end, 10);
      if (errno || *end || end == arg || v < 1 || v > 2147483647L)
        return avm_usage_error ("kube", "--kvm-group %s: expected a group id (getent group kvm)", arg);
      k->kvm_gid = v;
      return 0;
    case OPT_IMAGES_CLAIM:
      k->images_claim = arg;
      k->images_image = NULL;
      return 0;
    case OPT_IMAGES_IMAGE:
      if (!*arg)
        return avm_usage_error ("kube", "--images-image: empty");
      k->images_image = arg;
      k->images_claim = NULL;
      return 0;
    }
  return -1;
}

static int
run (struct avm_profile_opts *o, struct kube_opts *k)
{
  _cleanup_error_ avm_error_t err = NULL;
  _cleanup_profile_ struct avm_profile *profile = NULL;
  const char *pname = o->profile ? o->profile : avm_default_profile ();
  if (strchr (pname, '/') || strstr (pname, ".json"))
    return avm_usage_error ("kube", "--profile %s: the pod runs a profile installed in the image; name one", pname);
  if (k->kind == AVM_KUBE_POD && k->replicas > 1)
    return avm_usage_error ("kube", "--replicas goes with --kind statefulset");
  if (k->kind == AVM_KUBE_STATEFULSET && k->instance_given)
    return avm_usage_error ("kube", "--instance goes with --kind pod (a StatefulSet's pod N runs instance N+1)");
  char defname[64];
  avm_kube_default_name (pname, k->kind, defname);
  const char *name = k->name ? k->name : defname;
  if (avm_kube_name_check ("--name", name, avm_kube_name_max (k->kind), &err) < 0)
    return avm_error_report (&err);
  if (k->images_claim && avm_kube_name_check ("--images-claim", k->images_claim, 253, &err) < 0)
    return avm_error_report (&err);

  /* A hostPath /dev/kvm is this host's (podman kube play): its group.  */
  struct stat st;
  if (k->kvm_gid < 0 && !k->kvm_resource && stat ("/dev/kvm", &st) == 0)
    k->kvm_gid = st.st_gid;

  o->profile = pname;
  if (avm_profile_opts_load (o, &profile, &err) < 0)
    return avm_error_report (&err);
  size_t n = k->kind == AVM_KUBE_POD ? 1 : (size_t) k->replicas;
  struct avm_plan *plans[64] = { 0 };
  int ret = AVM_EXIT_OK;
  for (size_t i = 0; i < n && ret == AVM_EXIT_OK; i++)
    {
      struct avm_plan_request req = {
        .profile = profile,
        .instance = k->kind == AVM_KUBE_POD ? o->instance : (int) i + 1,
        .images = o->images,
        .caps_file = o->caps_file,
        .allow_unapproved = o->allow_unapproved,
        .dry_run = true,
        /* The pod's plan, not this host's: every helper counts (the
           images' host package brings them), QEMU is the image's.  */
        .layout_only = true,
      };
      if (avm_plan_build (&req, &plans[i], &err) < 0)
        ret = avm_error_report (&err);
    }
  _cleanup_json_ json_t *m = NULL;
  if (ret == AVM_EXIT_OK)
    {
      struct avm_kube_request kr = {
        .kind = k->kind,
        .name = name,
        .profile = pname,
        .options = o->options.v,
        .sets = o->sets.v,
        .allow_unapproved = o->allow_unapproved,
        .profile_resolved = profile,
        .plans = plans,
        .nplans = n,
        .image = k->image,
        .kvm_resource = k->kvm_resource,
        .kvm_gid = k->kvm_gid,
        .images_claim = k->images_claim,
        .images_image = k->images_image,
      };
      if (avm_kube_manifest (&kr, &m, &err) < 0)
        ret = avm_error_report (&err);
      else if (avm_json_print (m, stdout) < 0 || fflush (stdout) != 0)
        ret = AVM_EXIT_FAILURE;
    }
  for (size_t i = 0; i < n; i++)
    avm_plan_free (plans[i]);
  return ret;
}

int
avm_cmd_kube (int argc, char **argv)
{
  static const struct option longopts[] = {
    AVM_PROFILE_LONGOPTS,
    { "kind", required_argument, NULL, OPT_KIND },
    { "replicas", required_argument, NULL, OPT_REPLICAS },
    { "name", required_argument, NULL, OPT_NAME },
    { "image", required_argument, NULL, OPT_IMAGE },
    { "kvm-resource", required_argument, NULL, OPT_KVM_RESOURCE },
    { "kvm-hostpath", no_argument, NULL, OPT_KVM_HOSTPATH },
    { "kvm-group", required_argument, NULL, OPT_KVM_GROUP },
    { "images-claim", required_argument, NULL, OPT_IMAGES_CLAIM },
    { "images-image", required_argument, NULL, OPT_IMAGES_IMAGE },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
  };
  struct avm_profile_opts o = { .instance = 1 };
  struct kube_opts k = {
    .kind = AVM_KUBE_STATEFULSET,
    .replicas = 1,
    .image = DEFAULT_IMAGE,
    .kvm_resource = DEFAULT_KVM_RESOURCE,
    .kvm_gid = -1,
  };
  _cleanup_error_ avm_error_t err = NULL;
  int c, r, ret = AVM_EXIT_USAGE;

  optind = 1;
  opterr = 0;
  while ((c = getopt_long (argc, argv, "+:p:O:i:h", longopts, NULL)) != -1)
    {
      r = avm_profile_opts_parse (&o, c, optarg, &err);
      if (r < 0)
        {
          ret = avm_error_report (&err);
          goto out;
        }
      if (r > 0)
        {
          k.instance_given |= c == 'i';
          continue;
        }
      if (c == 'h')
        {
          avm_help_kube (stdout);
          ret = 0;
          goto out;
        }
      r = parse (&k, c, optarg);
      if (r > 0)
        {
          ret = r;
          goto out;
        }
      if (r < 0)
        {
          ret = avm_bad_option ("kube", c, argv);
          goto out;
        }
    }
  if (optind < argc)
    {
      ret = avm_usage_error ("kube", "unexpected argument \"%s\"", argv[optind]);
      goto out;
    }
  ret = run (&o, &k);
out:
  avm_profile_opts_clear (&o);
  return ret;
}
