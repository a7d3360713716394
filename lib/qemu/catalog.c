/* SPDX-License-Identifier: Apache-2.0 */
#include "qemu/catalog.h"

#include <string.h>

/* Release data: QEMU changelogs and merge requests (see
   ../shared/reference/formats.md, section 9.1).

   Migration (no_migrate), read in QEMU's hw/ sources for the devices
   avm targets (QEMU 7.2); a device QEMU does not migrate blocks
   `avm snapshot save` (query-migrate's blocked-reasons):
   - vhost-user-fs: hw/virtio/vhost-user-fs.c, vuf_vmstate .unmigratable = 1
     in 7.2 (the file system's state is virtiofsd's).  QEMU 8.2 migrates it
     through the back-end ("vhost-user-fs-backend" subsection,
     vhost_save_backend_state) when virtiofsd supports device state.
   - vhost-user-gpu: hw/display/vhost-user-gpu.c, vmstate "vhost-user-gpu"
     .unmigratable = 1 (all releases).
   - vhost-user-input, -scmi, -snd, -vsock: hw/virtio/vhost-user-input.c,
     vhost-user-scmi.c, vhost-user-snd.c, vhost-user-vsock.c, each
     .unmigratable = 1 (since each was added; vhost-user-vsock since 5.1,
     unlike the kernel's vhost-vsock, hw/virtio/vhost-vsock.c, which
     migrates and resets the guest's connections on load).
   - virtio-gpu-gl: hw/display/virtio-gpu-base.c,
     virtio_gpu_base_device_realize: migrate_add_blocker "virgl is not yet
     migratable" whenever virgl is on (still so in 10.0).
   - virtio-sound: hw/audio/virtio-snd.c, vmstate_virtio_snd .unmigratable
     = 1 (8.2 on; not in 7.2).
   - vhost-user-video (out-of-tree patches): a vhost-user device whose
     decoder state is the back-end's, like vhost-user-gpu.
   The others have a vmstate with fields (ac97.c, hda-codec.c,
   intel-hda.c, nvdimm via the memory device, hcd-xhci.c, virtio-*.c);
   virtio-rotary-pci (slp/qemu-android patches) is a virtio-input device
   like virtio-keyboard, migrated with it.  vfio-pci, which avm never
   emits, is the other usual blocker (hw/vfio/migration.c).  */
static const struct avm_qdev catalog[] = {
  { "AC97", 0, 12, "AC97 sound card", "--set audio.model=none", NULL },
  { "hda-duplex", 0, 14, "HDA codec", NULL, NULL },
  { "ich9-intel-hda", 1, 0, "Intel HDA sound card", "--set audio.model=none", NULL },
  { "nvdimm", 2, 6, "NVDIMM (the x86 pstore region)", "--set machine.ramoops=false", NULL },
  { "qemu-xhci", 2, 12, "USB xHCI controller", "--set xhci=false", NULL },
  { "vhost-user-fs-pci", 4, 2, "virtiofs (vhost-user-fs)", "remove the share",
    "QEMU does not migrate its state (it lives in virtiofsd)" },
  { "vhost-user-gpu-pci", 4, 1, "vhost-user GPU", "--set display.gpu=virtio-gpu",
    "QEMU does not migrate its state (it lives in the GPU back-end)" },
  { "vhost-user-input-pci", 4, 1, "vhost-user input device", NULL,
    "QEMU does not migrate its state (it lives in the input back-end)" },
  { "vhost-user-scmi-pci", 8, 1, "vhost-user SCMI (sensors)", NULL,
    "QEMU does not migrate its state (it lives in the SCMI back-end)" },
  { "vhost-user-snd-pci", 9, 0, "vhost-user sound", "--set audio.model=ac97 or a newer QEMU",
    "QEMU does not migrate its state (it lives in the sound back-end)" },
  { "vhost-user-video-pci", 0, 0, "vhost-user video decoder", "--set video.model=none",
    "its state lives in the video back-end (not upstream: no migration)" },
  { "vhost-user-vsock-pci", 5, 1, "vhost-user vsock", "--set vsock.mode=kernel",
    "QEMU does not migrate its state (it lives in the vsock back-end)" },
  { "vhost-vsock-pci-non-transitional", 4, 0, "kernel vhost-vsock", "--set vsock.mode=vhost-user", NULL },
  { "virtconsole", 0, 13, "virtio console port", NULL, NULL },
  { "virtio-balloon-pci-non-transitional", 4, 0, "virtio balloon", "--set balloon=false", NULL },
  { "virtio-blk-pci-non-transitional", 4, 0, "virtio block device", NULL, NULL },
  { "virtio-gpu-gl-pci", 6, 0, "virtio GPU with virgl", "--set display.gpu=virtio-gpu",
    "virgl is not yet migratable (the GPU state is the host driver's)" },
  { "virtio-gpu-pci", 2, 4, "virtio GPU", "--set display.gpu=none", NULL },
  { "virtio-keyboard-pci", 2, 4, "virtio keyboard", "--set input.keyboard=false", NULL },
  { "virtio-mouse-pci", 2, 4, "virtio mouse", "--set input.touch=none", NULL },
  { "virtio-multitouch-pci", 8, 1, "virtio multitouch", "--set input.touch=mouse", NULL },
  { "virtio-net-pci-non-transitional", 4, 0, "virtio network card", "--set network.mode=none", NULL },
  { "virtio-rng-pci-non-transitional", 4, 0, "virtio RNG", "--set rng=false", NULL },
  { "virtio-rotary-pci", 0, 0, "virtio rotary encoder (slp/qemu-android patches, not upstream)",
    "--set input.rotary=false", NULL },
  { "virtio-serial-pci-non-transitional", 4, 0, "virtio serial bus", NULL, NULL },
  { "virtio-sound-pci", 8, 2, "virtio sound", "--set audio.model=ac97 or a newer QEMU",
    "QEMU marks virtio-sound unmigratable" },
  { "virtio-tablet-pci", 2, 4, "virtio tablet", "--set input.touch=mouse", NULL },
  { "virtserialport", 0, 13, "virtio serial port (the guest agent's)", NULL, NULL },
};

const struct avm_qdev *
avm_qdev_lookup (const char *name)
{
  for (size_t i = 0; i < sizeof catalog / sizeof catalog[0]; i++)
    if (strcmp (catalog[i].name, name) == 0)
      return &catalog[i];
  return NULL;
}
