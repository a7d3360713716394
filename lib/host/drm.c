/* SPDX-License-Identifier: Apache-2.0 */
/* DRM render nodes (/dev/dri/renderD*), needed by virgl and vhost-user-gpu.  */
#include "host/hostcheck.h"
#include "util/strfmt.h"
#include "util/cleanup.h"

#include <stdarg.h>
#include <string.h>

#define NO_NODE_HINT                                                                                                   \
  "virgl and vhost-user-gpu need a render node: load the host GPU driver, or pass the node to the "                    \
  "container (podman --device /dev/dri/renderD128)"

#define fmt avm_strdupf

static int
add_node (struct avm_host_report *r, const struct avm_dev_node *node, enum avm_check_status status)
{
  _cleanup_free_ char *fallback = NULL;
  _cleanup_free_ char *detail = NULL;
  _cleanup_free_ char *hint = NULL;
  const char *path = node->devnode;
  const char *driver = node->driver ? node->driver : "unknown driver";

  if (!path)
    {
      path = fallback = fmt ("/dev/dri/%s", node->sysname);
      if (!path)
        return -ENOMEM;
    }
  switch (node->open_errno)
    {
    case 0:
      detail = fmt ("%s (%s)", path, driver);
      if (!detail)
        return -ENOMEM;
      return avm_host_report_add (r, AVM_CHECK_OK, "render-node", detail, NULL);
    case ENOENT:
    case ENODEV:
      detail = fmt ("%s (%s): in sysfs but missing from /dev", path, driver);
      hint = fmt ("pass it to the container (podman --device %s)", path);
      break;
    case EACCES:
    case EPERM:
      detail = fmt ("%s (%s): permission denied opening it read-write", path, driver);
      hint = fmt ("add the user to the group owning %s (usually render)", path);
      break;
    default:
      detail = fmt ("%s (%s): cannot open: %s", path, driver, strerror (node->open_errno));
      hint = strdup (NO_NODE_HINT);
      break;
    }
  if (!detail || !hint)
    return -ENOMEM;
  return avm_host_report_add (r, status, "render-node", detail, hint);
}

int
avm_host_report_render_nodes (struct avm_host_report *r, const struct avm_dev_node *nodes, size_t n, bool required,
                              avm_error_t *err)
{
  enum avm_check_status missing = required ? AVM_CHECK_FAIL : AVM_CHECK_WARN;
  size_t usable = 0;
  int ret = 0;

  if (n == 0)
    ret = avm_host_report_add (r, missing, "render-node", "no DRM render node (/dev/dri/renderD*)", NO_NODE_HINT);
  for (size_t i = 0; i < n; i++)
    usable += nodes[i].open_errno == 0;
  /* With one usable node the others are only informative.  */
  for (size_t i = 0; i < n && ret >= 0; i++)
    ret = add_node (r, &nodes[i], usable ? AVM_CHECK_INFO : missing);
  if (ret < 0)
    return avm_error_sys (err, -ret, "host check render-node");
  return 0;
}

int
avm_host_check_render_nodes (struct avm_host_report *r, bool required, avm_error_t *err)
{
  struct avm_dev_node *nodes = NULL;
  size_t n = 0;
  int ret;

  ret = avm_host_list_devices ("drm", "renderD*", &nodes, &n, err);
  if (ret < 0)
    return ret;
  ret = avm_host_report_render_nodes (r, nodes, n, required, err);
  avm_dev_nodes_free (nodes, n);
  return ret;
}
