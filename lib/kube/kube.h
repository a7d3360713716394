/* SPDX-License-Identifier: Apache-2.0 */
/*
 * avm kube: a Kubernetes manifest (a Pod, or a StatefulSet) that runs the
 * avm container image with the same plan `avm start` runs: its arguments
 * are the profile, options and --set overrides given, its resources come
 * from the profile (machine.cpus, machine.memory) plus QEMU's measured
 * overhead, its grace period is avm's stop budget
 * (avm_supervise_stop_budget), its probes are `avm status --ready` and
 * `avm status --live`, its named ports the plan's adb and web display.
 * The manifest is JSON (which is YAML): kubectl apply -f and podman kube
 * play read it as it is.  See avm-kube(1).
 */
#pragma once

#include "plan/plan.h"
#include "profile/profile.h"
#include "util/error.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* Where the container image (containers/Containerfile) mounts the images,
   and its user and group (avm, kvm).  */
#define AVM_KUBE_IMAGES_DIR "/images"
#define AVM_KUBE_UID 1000
#define AVM_KUBE_GID 36

/* The env variable a StatefulSet's pods get their ordinal in (from the
   label apps.kubernetes.io/pod-index): avm's commands then default to
   instance ordinal + 1.  */
#define AVM_KUBE_ORDINAL_ENV "AVM_POD_ORDINAL"
/* The pod's container, and podman's annotation that relays its READY=1.  */
#define AVM_KUBE_CONTAINER "avm"
#define AVM_KUBE_SDNOTIFY "io.containers.sdnotify/" AVM_KUBE_CONTAINER

/* QEMU's memory beyond the guest's RAM, in MiB, as limits and requests
   add it (see kube.c for the measurements).  */
#define AVM_KUBE_QEMU_OVERHEAD_MIB 96
#define AVM_KUBE_HELPER_MIB 16
#define AVM_KUBE_TCG_CACHE_MIB 1024

enum avm_kube_kind
{
  AVM_KUBE_POD,
  AVM_KUBE_STATEFULSET,
};

struct avm_kube_request
{
  enum avm_kube_kind kind;
  const char *name;      /* metadata.name, a DNS-1123 label (avm_kube_name_check) */
  const char *profile;   /* the profile's name, as the image knows it */
  char *const *options;  /* -O NAME=CHOICE as given (NULL-terminated, or NULL) */
  char *const *sets;     /* --set PATH=VALUE as given (NULL-terminated, or NULL) */
  bool allow_unapproved; /* --allow-unapproved, passed on */
  const struct avm_profile *profile_resolved;
  struct avm_plan *const *plans; /* a Pod: its instance's; a StatefulSet: instances 1..N */
  size_t nplans;
  const char *image;        /* the container image */
  const char *kvm_resource; /* device plugin resource for /dev/kvm, or NULL: a hostPath */
  long long kvm_gid;        /* the group of /dev/kvm on the node (supplementalGroups), or -1 */
  const char *images_claim; /* PersistentVolumeClaim with the images, or NULL */
  const char *images_image; /* ... or an OCI image with them (an image volume) */
};

/* The manifest (*OUT, a new reference), or an input error naming what is
   wrong (exit code 2).  */
int avm_kube_manifest (const struct avm_kube_request *req, json_t **out, avm_error_t *err);

/* NAME as a DNS-1123 label of at most MAX characters: 0, or an input
   error saying why not (WHAT names it: "--name").  */
int avm_kube_name_check (const char *what, const char *name, size_t max, avm_error_t *err);
/* The longest name a kind may have: a StatefulSet's pods and its
   controller-revision-hash label add to it.  */
size_t avm_kube_name_max (enum avm_kube_kind kind);
/* TEXT made into a label value into BUF (64 bytes): at most 63 of
   [A-Za-z0-9._-], beginning and ending with a letter or digit (others
   become '-'; leading and trailing ones dropped); "" when nothing is
   left.  */
void avm_kube_label_value (const char *text, char buf[64]);
/* A default name from PROFILE: "avm-PROFILE" made a DNS-1123 label.  */
void avm_kube_default_name (const char *profile, enum avm_kube_kind kind, char buf[64]);
