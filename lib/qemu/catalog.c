/* SPDX-License-Identifier: Apache-2.0 */
#include "qemu/catalog.h"

#include <string.h>

/* Release data: QEMU changelogs and merge requests (see
   ../shared/reference/formats.md, section 9.1).  */
static const struct avm_qdev catalog[] = {
  { "AC97", 0, 12, "AC97 sound card", "--set audio.model=none" },
  { "hda-duplex", 0, 14, "HDA codec", NULL },
  { "ich9-intel-hda", 1, 0, "Intel HDA sound card", "--set audio.model=none" },
  { "nvdimm", 2, 6, "NVDIMM (the x86 pstore region)", "--set machine.ramoops=false" },
  { "qemu-xhci", 2, 12, "USB xHCI controller", "--set xhci=false" },
  { "vhost-user-fs-pci", 4, 2, "virtiofs (vhost-user-fs)", "remove the share" },
  { "vhost-user-gpu-pci", 4, 1, "vhost-user GPU", "--set display.gpu=virtio-gpu" },
  { "vhost-user-input-pci", 4, 1, "vhost-user input device", NULL },
  { "vhost-user-scmi-pci", 8, 1, "vhost-user SCMI (sensors)", NULL },
  { "vhost-user-snd-pci", 9, 0, "vhost-user sound", "--set audio.model=ac97 or a newer QEMU" },
  { "vhost-user-video-pci", 0, 0, "vhost-user video decoder", "--set video.model=none" },
  { "vhost-user-vsock-pci", 5, 1, "vhost-user vsock", "--set vsock.mode=kernel" },
  { "vhost-vsock-pci-non-transitional", 4, 0, "kernel vhost-vsock", "--set vsock.mode=vhost-user" },
  { "virtconsole", 0, 13, "virtio console port", NULL },
  { "virtio-balloon-pci-non-transitional", 4, 0, "virtio balloon", "--set balloon=false" },
  { "virtio-blk-pci-non-transitional", 4, 0, "virtio block device", NULL },
  { "virtio-gpu-gl-pci", 6, 0, "virtio GPU with virgl", "--set display.gpu=virtio-gpu" },
  { "virtio-gpu-pci", 2, 4, "virtio GPU", "--set display.gpu=none" },
  { "virtio-keyboard-pci", 2, 4, "virtio keyboard", "--set input.keyboard=false" },
  { "virtio-mouse-pci", 2, 4, "virtio mouse", "--set input.touch=none" },
  { "virtio-multitouch-pci", 8, 1, "virtio multitouch", "--set input.touch=mouse" },
  { "virtio-net-pci-non-transitional", 4, 0, "virtio network card", "--set network.mode=none" },
  { "virtio-rng-pci-non-transitional", 4, 0, "virtio RNG", "--set rng=false" },
  { "virtio-rotary-pci", 0, 0, "virtio rotary encoder (slp/qemu-android patches, not upstream)",
    "--set input.rotary=false" },
  { "virtio-serial-pci-non-transitional", 4, 0, "virtio serial bus", NULL },
  { "virtio-sound-pci", 8, 2, "virtio sound", "--set audio.model=ac97 or a newer QEMU" },
  { "virtio-tablet-pci", 2, 4, "virtio tablet", "--set input.touch=mouse" },
};

const struct avm_qdev *
avm_qdev_lookup (const char *name)
{
  for (size_t i = 0; i < sizeof catalog / sizeof catalog[0]; i++)
    if (strcmp (catalog[i].name, name) == 0)
      return &catalog[i];
  return NULL;
}
