/* SPDX-License-Identifier: Apache-2.0 */
/* Cuttlefish-shaped image sets for the tests (cfimage.c), with the host
   tools played by avm-fakecf (tests/helpers/fakecf.c).  */
#pragma once

/* Build in DIR (created when missing) the image directory that `avm start
   --images DIR` runs for RELEASE ("android14", "android14-qpr2",
   "android15", "android15-qpr2", "android16") and ARCH ("x86_64" or
   "arm64"), as the image zip and the host package unpacked together give it:
     bin/TOOL             every host tool avm starts that RELEASE's host
                          package ships (DGC build/Android.bp, r3 §7.2), each
                          a hard link to (or copy of) avm-fakecf, and
                          bin/.fakecf-release naming RELEASE for it
     etc/bootloader_{x86_64,aarch64}/bootloader.qemu
                          firmware QEMU runs: Debian's U-Boot for QEMU
                          (u-boot-qemu), else SeaBIOS for x86_64
     etc/cvd_avb_testkey.pem (android14*), etc/cvd_avb_testkey_rsa4096.pem
                          (android15 on): an RSA-4096 key, and avb_key.pem,
                          a copy of it as avm cvd2img writes it
     etc/modem_simulator/files/iccprofile_for_sim0.xml
     etc/automotive/vhalconfig/{Default,Test,VendorClusterTest}Properties.json
                          (android15-qpr2 on)
     android-info.txt     the release's shared/auto/android-info.txt
     boot.img             mkbootimg header v3, --os_version 14.0.0/15.0.0/16.0.0
     system.img           64 MiB, all hole
   The key, the boot images, the firmware and the binary are made once per
   test run (tu_run_shared_dir) and hard-linked: replace such a file, never
   write into it.  Skips the test when AVM_FAKECF is not set, or for arm64
   without u-boot-qemu.  Returns DIR (malloc'd).  */
char *tu_cf_imageset (const char *dir, const char *release, const char *arch);
