/* SPDX-License-Identifier: Apache-2.0 */
/* Profile parsing, validation, inheritance, options, --set, variables, lookup. */
#include "profile/profile.h"
#include "profile/schema.h"
#include "profile/vars.h"
#include "testutil.h"
#include "util/strbuf.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char *dir;

static void
setup (void)
{
  dir = tu_tmpdir ();
  /* Keep lookups away from the installed and user profiles.  */
  setenv ("AVM_DATA_DIR", dir, 1);
  setenv ("XDG_CONFIG_HOME", dir, 1);
}

static void
teardown (void)
{
  tu_rmtree (dir);
  free (dir);
}

TestSuite (profile, .init = setup, .fini = teardown);

/* Load PATH with options and sets; returns 0 or the error (message in *msg).  */
static int
load (const char *path, char *const *options, char *const *sets, struct avm_profile **out, char **msg)
{
  avm_error_t err = NULL;
  struct avm_profile_request req = { .name = path, .options = options, .sets = sets };
  struct avm_profile *p = NULL;
  int r = avm_profile_load (&req, &p, &err);
  if (msg)
    *msg = err ? strdup (err->msg) : NULL;
  if (r < 0)
    cr_assert_not_null (err, "failure without a message");
  if (err && r < 0)
    cr_assert_eq (err->exit_code, 2, "bad input must exit with 2, got %d for: %s", err->exit_code, err->msg);
  avm_error_free (err);
  if (out)
    *out = p;
  else
    avm_profile_free (p);
  return r;
}

static char *
load_error (const char *json)
{
  char *path = tu_write (dir, "p.json", json);
  char *msg = NULL;
  int r = load (path, NULL, NULL, NULL, &msg);
  cr_assert_lt (r, 0, "profile unexpectedly valid: %s", json);
  free (path);
  return msg;
}

#define assert_contains(hay, needle) cr_assert (strstr ((hay), (needle)), "expected \"%s\" in:\n%s", (needle), (hay))

static const char *minimal = "{ \"machine\": { \"arch\": \"x86_64\" } }";

Test (profile, minimal_profile_gets_defaults)
{
  char *path = tu_write (dir, "m.json", minimal);
  struct avm_profile *p = NULL;
  cr_assert_eq (load (path, NULL, NULL, &p, NULL), 0);
  cr_assert_eq (json_integer_value (avm_json_path (p->json, "machine.cpus")), 2);
  cr_assert_eq (json_integer_value (avm_json_path (p->json, "machine.memory")), 4096);
  cr_assert_str_eq (json_string_value (avm_json_path (p->json, "machine.accel[0]")), "kvm");
  cr_assert_str_eq (json_string_value (avm_json_path (p->json, "machine.accel[1]")), "tcg");
  cr_assert_str_eq (json_string_value (avm_json_path (p->json, "display.backend")), "none");
  cr_assert_str_eq (json_string_value (avm_json_path (p->json, "vnc.listen")) ?: "absent", "absent");
  cr_assert_str_eq (json_string_value (avm_json_path (p->json, "display.vnc.listen")), "127.0.0.1");
  cr_assert_str_eq (p->name, "m");
  avm_profile_free (p);
  free (path);
}

/* Every default in the schema table, made directly for the common kinds
   (schema_validate.c, avm_schema_default), is what parsing its JSON text gives.  */
static size_t
check_defaults (const struct avm_skey *s, int depth)
{
  size_t n = 0;
  cr_assert_lt (depth, 16);
  for (const struct avm_skey *k = s; k && k->name; k++)
    {
      if (k->def)
        {
          json_t *want = json_loads (k->def, JSON_DECODE_ANY, NULL), *got = avm_schema_default (k);
          cr_assert (want, "%s: default %s is not JSON", k->name, k->def);
          cr_assert (got && json_equal (want, got) && json_typeof (want) == json_typeof (got),
                     "%s: default %s made wrong", k->name, k->def);
          json_decref (want);
          json_decref (got);
          n++;
        }
      if (k->sub && (k->type == AVM_ST_OBJECT))
        n += check_defaults (k->sub, depth + 1);
      else if (k->sub && k->sub->sub && k->sub->type == AVM_ST_OBJECT)
        n += check_defaults (k->sub->sub, depth + 1);
    }
  return n;
}

Test (profile, schema_defaults_are_their_json_text)
{
  cr_assert_gt (check_defaults (avm_profile_schema ()->sub, 0), 20);
  struct avm_skey odd[] = {
    { .name = "escaped", .def = "\"a\\\"b\"" }, { .name = "list", .def = "[1, \"x\"]" },
    { .name = "negative", .def = "-3" },        { .name = "real", .def = "1.5" },
    { .name = "null", .def = "null" },          { 0 },
  };
  cr_assert_eq (check_defaults (odd, 0), 5);
  struct avm_skey bad = { .name = "bad", .def = "007" };
  json_t *b = avm_schema_default (&bad);
  cr_assert_null (b, "\"007\" is not JSON");
  json_decref (b);
}

Test (profile, out_of_range_names_file_path_and_value)
{
  static const struct
  {
    const char *json, *expect;
  } cases[] = {
    { "{\"display\": {\"outputs\": [{\"xres\": 1024, \"yres\": 768},"
      " {\"xres\": \"2560px\", \"yres\": 1440}]}}",
      "p.json: display.outputs[1].xres: expected integer 64..8192, got \"2560px\"" },
    { "{\"machine\": {\"cpus\": 0}}", "machine.cpus: expected integer 1..256, got 0" },
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    {
      char *msg = load_error (cases[i].json);
      assert_contains (msg, cases[i].expect);
      free (msg);
    }
}

Test (profile, unknown_key_suggests_the_closest)
{
  static const struct
  {
    const char *json, *expect;
  } cases[] = {
    { "{\"display\": {\"outptus\": []}}", "display.outptus: unknown key; did you mean \"outputs\"?" },
    { "{\"zzzzzzzz\": 1}", "zzzzzzzz: unknown key (see avm-profile(5)" },
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    {
      char *msg = load_error (cases[i].json);
      assert_contains (msg, cases[i].expect);
      free (msg);
    }
}

Test (profile, wrong_types_and_enums)
{
  static const struct
  {
    const char *json, *expect;
  } cases[] = {
    { "{\"rng\": \"yes\"}", "rng: expected boolean, got \"yes\"" },
    { "{\"display\": {\"backend\": \"dbsu\"}}",
      "display.backend: expected one of none, dbus, egl-headless, vnc, gtk, got \"dbsu\"; "
      "did you mean \"dbus\"?" },
    { "{\"machine\": {\"accel\": [\"kvm\", \"hvf\"]}}",
      "machine.accel: expected one or more of kvm, tcg, got \"hvf\"" },
    { "[1, 2]", "expected a JSON object at the top level" },
    { "{\"services\": {\"bad name\": {\"exec\": [\"x\"]}}}", "services[\"bad name\"]: invalid key name" },
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    {
      char *msg = load_error (cases[i].json);
      assert_contains (msg, cases[i].expect);
      free (msg);
    }
}

Test (profile, every_problem_is_reported_one_per_line)
{
  char *msg = load_error ("{\"rng\": 1, \"balloon\": 2, \"xhci\": 3}");
  size_t lines = 1;
  for (char *p = msg; *p; p++)
    lines += *p == '\n';
  cr_assert_eq (lines, 3, "expected 3 lines:\n%s", msg);
  free (msg);
}

Test (profile, malformed_json_reports_line_and_column)
{
  char *msg = load_error ("{\n  \"machine\": {\n    \"cpus\": 2,,\n  }\n}\n");
  assert_contains (msg, "p.json:3:");
  assert_contains (msg, "malformed JSON");
  free (msg);
  msg = load_error ("{\"rng\": true, \"rng\": false}");
  assert_contains (msg, "duplicate object key");
  free (msg);
}

Test (profile, sizes_are_normalised)
{
  char *path = tu_write (dir, "s.json", "{\"machine\": {\"memory\": \"2G\"}}");
  struct avm_profile *p = NULL;
  cr_assert_eq (load (path, NULL, NULL, &p, NULL), 0);
  cr_assert_eq (json_integer_value (avm_json_path (p->json, "machine.memory")), 2048);
  avm_profile_free (p);
  char *msg = load_error ("{\"machine\": {\"memory\": \"4X\"}}");
  assert_contains (msg, "machine.memory: expected a size of 128M..1048576M");
  free (msg);
  msg = load_error ("{\"machine\": {\"memory\": 64}}");
  assert_contains (msg, "got 64");
  free (msg);
  free (path);
}

Test (profile, required_keys)
{
  char *msg = load_error ("{\"disks\": [{\"name\": \"a\"}]}");
  assert_contains (msg, "disks[0].path: required key is missing");
  free (msg);
  msg = load_error ("{\"services\": {\"x\": {\"exec\": []}}}");
  assert_contains (msg, "services.x.exec: must not be empty");
  free (msg);
}

Test (profile, extends_merges_deletes_and_replaces_arrays)
{
  free (tu_write (dir, "base.json",
                  "{\"description\": \"base\", \"machine\": {\"cpus\": 4, \"memory\": 1024},"
                  " \"disks\": [{\"name\": \"a\", \"path\": \"/a\"}, {\"name\": \"b\", \"path\": \"/b\"}],"
                  " \"boot_properties\": {\"androidboot.x\": \"1\", \"androidboot.y\": \"2\"}}"));
  char *child = tu_write (dir, "child.json",
                          "{\"extends\": \"base.json\", \"machine\": {\"cpus\": 8},"
                          " \"disks\": [{\"name\": \"c\", \"path\": \"/c\"}],"
                          " \"boot_properties\": {\"androidboot.x\": null}}");
  struct avm_profile *p = NULL;
  cr_assert_eq (load (child, NULL, NULL, &p, NULL), 0);
  cr_assert_eq (json_integer_value (avm_json_path (p->json, "machine.cpus")), 8);
  cr_assert_eq (json_integer_value (avm_json_path (p->json, "machine.memory")), 1024);
  cr_assert_eq (json_array_size (avm_json_path (p->json, "disks")), 1);
  cr_assert_null (json_object_get (avm_json_path (p->json, "boot_properties"), "androidboot.x"));
  cr_assert_str_eq (json_string_value (json_object_get (avm_json_path (p->json, "boot_properties"), "androidboot.y")),
                    "2");
  cr_assert_null (json_object_get (p->json, "extends"));
  cr_assert_str_eq (p->chain[1] + strlen (p->chain[1]) - 9, "base.json");
  avm_profile_free (p);
  free (child);
}

Test (profile, extends_by_name_uses_the_search_path)
{
  char *pdir = NULL;
  cr_assert (asprintf (&pdir, "%s/profiles", dir) > 0);
  free (tu_write (pdir, "parent.json", "{\"machine\": {\"cpus\": 3}}"));
  char *child = tu_write (dir, "kid.json", "{\"extends\": \"parent\"}");
  struct avm_profile *p = NULL;
  cr_assert_eq (load (child, NULL, NULL, &p, NULL), 0);
  cr_assert_eq (json_integer_value (avm_json_path (p->json, "machine.cpus")), 3);
  avm_profile_free (p);
  free (child);
  free (pdir);
}

Test (profile, extends_errors)
{
  free (tu_write (dir, "a.json", "{\"extends\": \"b.json\"}"));
  free (tu_write (dir, "b.json", "{\"extends\": \"a.json\"}"));
  char *a = NULL, *msg = NULL;
  cr_assert (asprintf (&a, "%s/a.json", dir) > 0);
  cr_assert_lt (load (a, NULL, NULL, NULL, &msg), 0);
  assert_contains (msg, "inheritance cycle");
  free (msg);
  msg = load_error ("{\"extends\": \"no-such-profile\"}");
  assert_contains (msg, "extends: profile \"no-such-profile\" not found");
  free (msg);
  /* A problem in the parent names the parent file.  */
  free (tu_write (dir, "badparent.json", "{\"machine\": {\"cpus\": \"many\"}}"));
  msg = load_error ("{\"extends\": \"badparent.json\"}");
  assert_contains (msg, "badparent.json: machine.cpus: expected integer");
  free (msg);
  free (a);
}

/* A cycle is named as one, with the chain, even when the file comes back
   under another name (issue 15: "./c.json" was not "c.json", and the
   chain ran to "more than 16 levels of inheritance").  */
Test (profile, inheritance_cycle_is_named_with_its_chain)
{
  free (tu_write (dir, "a.json", "{\"extends\": \"b.json\"}"));
  free (tu_write (dir, "b.json", "{\"extends\": \"./c.json\"}"));
  free (tu_write (dir, "c.json", "{\"extends\": \"./a.json\"}"));
  char *a = NULL, *msg = NULL;
  cr_assert (asprintf (&a, "%s/a.json", dir) > 0);
  cr_assert_lt (load (a, NULL, NULL, NULL, &msg), 0);
  char *want = NULL;
  cr_assert (asprintf (&want, "%s: extends: inheritance cycle: %s -> %s/b.json -> %s/c.json -> %s", a, a, dir, dir, a)
             > 0);
  cr_assert_str_eq (msg, want);
  free (msg);
  free (want);
  /* The same file under another name: a symbolic link.  */
  char *link = tu_replace (strdup (a), "a.json", "link.json");
  cr_assert_eq (symlink ("a.json", link) == 0 ? 0 : errno, 0);
  free (link);
  free (tu_write (dir, "c.json", "{\"extends\": \"link.json\"}"));
  cr_assert_lt (load (a, NULL, NULL, NULL, &msg), 0);
  assert_contains (msg, "inheritance cycle: ");
  assert_contains (msg, "/link.json (the same file as ");
  cr_assert_null (strstr (msg, "levels of inheritance"), "%s", msg);
  free (msg);
  free (a);
}

/* A byte order mark is named as such, not as a JSON syntax error at 1:1
   that shows three invisible bytes (issue 15).  */
Test (profile, utf8_bom_is_named)
{
  char *msg = load_error ("\xef\xbb\xbf{ \"machine\": { \"arch\": \"x86_64\" } }");
  assert_contains (msg, "p.json starts with a UTF-8 byte order mark (EF BB BF); save it without one");
  cr_assert_null (strstr (msg, "malformed JSON"), "%s", msg);
  free (msg);
}

/* Only regular files of at most 1 MiB are profiles: a device, a FIFO, a
   directory or a disk image given by mistake is refused before it is read
   (issue 15: `-p /dev/zero` grew to gigabytes, a FIFO hung for ever).  */
static void
assert_not_a_profile (const char *path, const char *needle)
{
  char *msg = NULL;
  cr_assert_lt (load (path, NULL, NULL, NULL, &msg), 0, "%s accepted as a profile", path);
  assert_contains (msg, path);
  assert_contains (msg, needle);
  cr_assert_null (strchr (msg, '\n'), "not one line: %s", msg);
  free (msg);
}

Test (profile, dev_zero_is_not_a_profile, .timeout = TU_TIMEOUT (10))
{
  assert_not_a_profile ("/dev/zero", "is a character device, not a profile");
}

Test (profile, extends_dev_zero, .timeout = TU_TIMEOUT (10))
{
  char *msg = load_error ("{\"extends\": \"/dev/zero\"}");
  assert_contains (msg, "p.json: extends: /dev/zero is a character device, not a profile");
  free (msg);
}

Test (profile, big_sparse_file_is_not_a_profile, .timeout = TU_TIMEOUT (10))
{
  /* A disk image given for --images: 3.2 GiB, all hole.  */
  char *path = NULL;
  cr_assert (asprintf (&path, "%s/system.img", dir) > 0);
  FILE *f = fopen (path, "w");
  cr_assert_not_null (f);
  fclose (f);
  cr_assert_eq (truncate (path, 3435973837LL), 0);
  assert_not_a_profile (path, "is 3.2 GiB, not a profile (at most 1.0 MiB); did you mean --images?");
  /* Just over the limit, as a parent: no --images hint there.  */
  cr_assert_eq (truncate (path, (1 << 20) + 1), 0);
  char *ext = NULL, *msg = NULL;
  cr_assert (asprintf (&ext, "{\"extends\": \"%s\"}", path) > 0);
  msg = load_error (ext);
  assert_contains (msg, "extends: ");
  assert_contains (msg, "system.img is 1.0 MiB, not a profile (at most 1.0 MiB)");
  cr_assert_null (strstr (msg, "--images"), "%s", msg);
  free (msg);
  free (ext);
  free (path);
}

Test (profile, fifo_is_not_a_profile, .timeout = TU_TIMEOUT (10))
{
  char *path = NULL;
  cr_assert (asprintf (&path, "%s/fifo.json", dir) > 0);
  cr_assert_eq (mkfifo (path, 0600), 0);
  assert_not_a_profile (path, "is a FIFO, not a profile");
  /* Found by name in a profile directory, it is refused too.  */
  char *pdir = NULL, *named = NULL;
  cr_assert (asprintf (&pdir, "%s/profiles", dir) > 0 && asprintf (&named, "%s/hang.json", pdir) > 0);
  cr_assert_eq (mkdir (pdir, 0700), 0); /* $AVM_DATA_DIR/profiles */
  free (path);
  path = tu_write (pdir, "ok.json", minimal);
  cr_assert_eq (mkfifo (named, 0600), 0);
  char *msg = NULL;
  cr_assert_lt (load ("hang", NULL, NULL, NULL, &msg), 0);
  assert_contains (msg, "hang.json is a FIFO, not a profile");
  free (msg);
  /* and `avm profiles list` names it instead of waiting for a writer */
  json_t *list = NULL;
  avm_error_t err = NULL;
  cr_assert_eq (avm_profile_list (&list, &err), 0);
  size_t i;
  json_t *e;
  bool seen = false;
  json_array_foreach (list, i, e)
    if (strcmp (json_string_value (json_object_get (e, "name")), "hang") == 0)
      {
        seen = true;
        assert_contains (json_string_value (json_object_get (e, "error")), "is a FIFO, not a profile");
      }
  cr_assert (seen);
  json_decref (list);
  free (path);
  free (named);
  free (pdir);
}

Test (profile, directory_is_not_a_profile, .timeout = TU_TIMEOUT (10))
{
  char *sub = NULL;
  cr_assert (asprintf (&sub, "%s/images.json", dir) > 0);
  cr_assert_eq (mkdir (sub, 0700), 0);
  assert_not_a_profile (sub, "is a directory, not a profile");
  free (sub);
}

static const char *with_options
    = "{\"display\": {\"outputs\": [{\"xres\": 800, \"yres\": 600}]},"
      " \"options\": {\"mode\": {\"default\": \"small\", \"choices\": {"
      "   \"small\": {},"
      "   \"big\": {\"description\": \"big\", \"set\": {\"display\": {\"outputs\": [{\"xres\": 1920, \"yres\": "
      "1080}]}}},"
      "   \"broken\": {\"set\": {\"display\": {\"outputs\": [{\"xres\": \"wide\", \"yres\": 1}]}}}}},"
      "  \"cpu\": {\"default\": \"many\", \"choices\": {\"few\": {\"set\": {\"machine\": {\"cpus\": 1}}},"
      "   \"many\": {\"set\": {\"machine\": {\"cpus\": 8}}}}}}}";

Test (profile, options_defaults_and_selection)
{
  char *path = tu_write (dir, "o.json", with_options);
  struct avm_profile *p = NULL;
  cr_assert_eq (load (path, NULL, NULL, &p, NULL), 0);
  cr_assert_eq (json_integer_value (avm_json_path (p->json, "display.outputs[0].xres")), 800);
  cr_assert_eq (json_integer_value (avm_json_path (p->json, "machine.cpus")), 8);
  cr_assert_str_eq (json_string_value (json_object_get (p->options, "mode")), "small");
  avm_profile_free (p);

  char *opts[] = { "mode=big", "cpu=few", NULL };
  cr_assert_eq (load (path, opts, NULL, &p, NULL), 0);
  cr_assert_eq (json_integer_value (avm_json_path (p->json, "display.outputs[0].xres")), 1920);
  cr_assert_eq (json_integer_value (avm_json_path (p->json, "machine.cpus")), 1);
  cr_assert_str_eq (json_string_value (json_object_get (p->options, "mode")), "big");
  avm_profile_free (p);
  free (path);
}

Test (profile, options_errors)
{
  char *path = tu_write (dir, "o.json", with_options);
  char *msg = NULL;
  char *o1[] = { "colour=red", NULL };
  cr_assert_lt (load (path, o1, NULL, NULL, &msg), 0);
  assert_contains (msg, "--option colour=red:");
  assert_contains (msg, "has no option \"colour\"; options: mode, cpu");
  free (msg);
  char *o2[] = { "mode=huge", NULL };
  cr_assert_lt (load (path, o2, NULL, NULL, &msg), 0);
  assert_contains (msg, "option mode has no choice \"huge\"; choices: small, big, broken");
  free (msg);
  char *o3[] = { "mode=broken", NULL };
  cr_assert_lt (load (path, o3, NULL, NULL, &msg), 0);
  assert_contains (msg, "(option mode=broken): display.outputs[0].xres: expected integer 64..8192, got \"wide\"");
  free (msg);
  char *o4[] = { "mode", NULL };
  cr_assert_lt (load (path, o4, NULL, NULL, &msg), 0);
  assert_contains (msg, "expected NAME=CHOICE");
  free (msg);
  free (path);
}

Test (profile, set_overrides)
{
  char *path = tu_write (dir, "s.json",
                         "{\"disks\": [{\"name\": \"a\", \"path\": \"/a\"}],"
                         " \"boot_properties\": {\"androidboot.serialno\": \"X\"}}");
  char *sets[] = { "machine.accel=tcg",
                   "machine.cpus=6",
                   "machine.memory=1G",
                   "disks[0].path=/b",
                   "boot_properties.androidboot.serialno=Y",
                   "boot_properties.androidboot.new.key=320",
                   "display.outputs=[{\"xres\": 640, \"yres\": 480}]",
                   "services.svc.exec=[\"/bin/true\"]",
                   NULL };
  struct avm_profile *p = NULL;
  char *msg = NULL;
  cr_assert_eq (load (path, NULL, sets, &p, &msg), 0, "%s", msg ?: "");
  cr_assert_eq (json_array_size (avm_json_path (p->json, "machine.accel")), 1);
  cr_assert_str_eq (json_string_value (avm_json_path (p->json, "machine.accel[0]")), "tcg");
  cr_assert_eq (json_integer_value (avm_json_path (p->json, "machine.cpus")), 6);
  cr_assert_eq (json_integer_value (avm_json_path (p->json, "machine.memory")), 1024);
  cr_assert_str_eq (json_string_value (avm_json_path (p->json, "disks[0].path")), "/b");
  json_t *bp = avm_json_path (p->json, "boot_properties");
  cr_assert_str_eq (json_string_value (json_object_get (bp, "androidboot.serialno")), "Y");
  cr_assert_str_eq (json_string_value (json_object_get (bp, "androidboot.new.key")), "320");
  cr_assert_eq (json_integer_value (avm_json_path (p->json, "display.outputs[0].yres")), 480);
  cr_assert_str_eq (json_string_value (avm_json_path (p->json, "services.svc.exec[0]")), "/bin/true");
  avm_profile_free (p);

  char *del[] = { "boot_properties[\"androidboot.serialno\"]=null", NULL };
  cr_assert_eq (load (path, NULL, del, &p, NULL), 0);
  cr_assert_null (json_object_get (avm_json_path (p->json, "boot_properties"), "androidboot.serialno"));
  avm_profile_free (p);
  free (path);
}

Test (profile, set_errors_name_the_assignment)
{
  char *path = tu_write (dir, "s.json", "{\"disks\": [{\"name\": \"a\", \"path\": \"/a\"}]}");
  static const struct
  {
    const char *set, *expect;
  } cases[] = {
    { "machine.cpuss=2", "--set machine.cpuss=2: machine.cpuss: unknown key; did you mean \"cpus\"?" },
    { "machine.cpus=abc", "--set machine.cpus=abc: machine.cpus: expected integer 1..256, got \"abc\"" },
    { "machine.accel=hvf", "expected one or more of kvm, tcg, got \"hvf\"" },
    { "disks[3].path=/x", "disks has no element [3] (it has 1)" },
    { "machine", "expected PATH=VALUE" },
    { "machine.cpus.x=1", "machine.cpus is not an object" },
    { "disks.x=1", "disks is not an object" },
    { "machine[0]=1", "machine is not an array" },
    { "display.backend=dbsu", "did you mean \"dbus\"?" },
    { "=3", "expected PATH=VALUE" },
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    {
      char *sets[] = { (char *) cases[i].set, NULL };
      char *msg = NULL;
      cr_assert_lt (load (path, NULL, sets, NULL, &msg), 0, "--set %s accepted", cases[i].set);
      assert_contains (msg, cases[i].expect);
      free (msg);
    }
  free (path);
}

/* extends and options are resolved before the overrides: setting them is
   refused instead of silently changing nothing (issue 15).  */
Test (profile, set_refuses_extends_and_options)
{
  char *path = tu_write (dir, "s.json", minimal);
  static const struct
  {
    const char *set, *expect;
  } cases[] = {
    { "extends=aaos-x86_64", "--set extends=aaos-x86_64: extends cannot be set on the command line" },
    { "extends=null", "--set extends=null: extends cannot be set" },
    { "options.gpu.default=virgl", "--set options.gpu.default=virgl: options cannot be changed on the command line" },
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    {
      char *sets[] = { (char *) cases[i].set, NULL };
      char *msg = NULL;
      cr_assert_lt (load (path, NULL, sets, NULL, &msg), 0, "--set %s accepted", cases[i].set);
      assert_contains (msg, cases[i].expect);
      free (msg);
    }
  free (path);
}

/* What the whole-profile validation finds after an override names the
   override, not the file (issue 15).  */
Test (profile, set_problems_name_the_set_not_the_file)
{
  char *path = tu_write (dir, "s.json", minimal);
  char *sets[] = { "machine.cpus=2", "display.outputs[0]={}", NULL };
  char *bad[] = { "display.outputs=[{\"xres\": 640, \"yres\": 480}]", "display.outputs[0]={}", NULL };
  char *msg = NULL;
  /* display.outputs[0] does not exist in the profile.  */
  cr_assert_lt (load (path, NULL, sets, NULL, &msg), 0);
  free (msg);
  cr_assert_lt (load (path, NULL, bad, NULL, &msg), 0);
  assert_contains (msg, "--set display.outputs[0]={}: display.outputs[0].xres: required key is missing");
  assert_contains (msg, "--set display.outputs[0]={}: display.outputs[0].yres: required key is missing");
  cr_assert_null (strstr (msg, "s.json"), "the file is blamed:\n%s", msg);
  free (msg);
  /* A problem away from every override: the file, as changed by them.  */
  char *req[] = { "machine.cpus=2", NULL };
  char *p2 = tu_write (dir, "nopath.json", "{\"disks\": [{\"name\": \"a\"}]}");
  cr_assert_lt (load (p2, NULL, req, NULL, &msg), 0);
  assert_contains (msg, "nopath.json (with --set machine.cpus=2): disks[0].path: required key is missing");
  free (msg);
  free (p2);
  free (path);
}

static char *
expand (const char *in, int *ret)
{
  static const struct avm_var v[] = { { "images", "/img" }, { "instance", "2" } };
  struct avm_vars vars = { .vars = v, .n = 2 };
  avm_error_t err = NULL;
  char *out = NULL;
  *ret = avm_vars_expand (&vars, in, "f.json: k", &out, &err);
  if (*ret < 0)
    {
      out = strdup (err->msg);
      avm_error_free (err);
    }
  return out;
}

Test (profile, variables)
{
  int r;
  char *s = expand ("${images}/system-${instance}.img", &r);
  cr_assert_eq (r, 0);
  cr_assert_str_eq (s, "/img/system-2.img");
  free (s);
  s = expand ("cost $$5 and $x", &r);
  cr_assert_eq (r, 0);
  cr_assert_str_eq (s, "cost $5 and $x");
  free (s);
  s = expand ("${image}", &r);
  cr_assert_lt (r, 0);
  assert_contains (s, "f.json: k: unknown variable ${image} (known: images, instance)");
  free (s);
  s = expand ("${images", &r);
  cr_assert_lt (r, 0);
  assert_contains (s, "unterminated variable reference");
  free (s);
  s = expand ("${fd:x}", &r);
  cr_assert_lt (r, 0);
  assert_contains (s, "${fd:...} is not allowed here");
  free (s);
}

Test (profile, lookup_order_and_not_found)
{
  char *inst = NULL, *user = NULL;
  cr_assert (asprintf (&inst, "%s/profiles", dir) > 0);
  cr_assert (asprintf (&user, "%s/avm/profiles", dir) > 0);
  free (tu_write (inst, "both.json", "{\"description\": \"installed\"}"));
  char *up = NULL;
  cr_assert (asprintf (&up, "%s/avm", dir) > 0);
  mkdir (up, 0755);
  free (tu_write (user, "both.json", "{\"description\": \"user\"}"));
  free (tu_write (user, "mine.json", "{\"description\": \"user only\"}"));
  avm_error_t err = NULL;
  char *path = NULL;
  cr_assert_eq (avm_profile_find ("both", &path, &err), 0);
  cr_assert (strstr (path, "/profiles/both.json") && !strstr (path, "/avm/profiles"), "%s", path);
  free (path);
  cr_assert_eq (avm_profile_find ("mine", &path, &err), 0);
  cr_assert (strstr (path, "/avm/profiles/mine.json"), "%s", path);
  free (path);
  cr_assert_lt (avm_profile_find ("nope", &path, &err), 0);
  assert_contains (err->msg, "profile \"nope\" not found (searched ");
  assert_contains (err->msg, "/etc/avm/profiles");
  cr_assert_eq (err->exit_code, 2);
  avm_error_freep (&err);
  cr_assert_lt (avm_profile_find ("../etc/passwd", &path, &err), 0);
  avm_error_freep (&err);

  json_t *list = NULL;
  cr_assert_eq (avm_profile_list (&list, &err), 0);
  size_t i;
  json_t *e;
  int shadowed = 0, seen_mine = 0;
  json_array_foreach (list, i, e)
    {
      if (json_object_get (e, "shadowed_by"))
        shadowed++;
      if (!strcmp (json_string_value (json_object_get (e, "name")), "mine"))
        seen_mine++;
    }
  cr_assert_eq (shadowed, 1);
  cr_assert_eq (seen_mine, 1);
  json_decref (list);
  free (inst);
  free (user);
  free (up);
}

Test (profile, merge_patch_rfc7386)
{
  json_t *t = json_loads ("{\"a\": \"b\", \"c\": {\"d\": \"e\", \"f\": \"g\"}}", 0, NULL);
  json_t *p = json_loads ("{\"a\": \"z\", \"c\": {\"f\": null}}", 0, NULL);
  t = avm_json_merge_patch (t, p);
  json_t *want = json_loads ("{\"a\": \"z\", \"c\": {\"d\": \"e\"}}", 0, NULL);
  cr_assert (json_equal (t, want));
  json_decref (t);
  json_decref (p);
  json_decref (want);
}

Test (profile, shipped_profiles_all_validate)
{
  setenv ("AVM_DATA_DIR", tu_srcdir (), 1);
  static const char *names[] = { "aaos-base", "aaos-x86_64", "aaos-arm64", "phone-x86_64", "demo", "demo-arm64" };
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    {
      char *path = NULL, *msg = NULL;
      cr_assert (asprintf (&path, "%s/profiles/%s.json", tu_srcdir (), names[i]) > 0);
      cr_assert_eq (load (path, NULL, NULL, NULL, &msg), 0, "%s: %s", names[i], msg ?: "");
      free (path);
    }
}

/* Issue 15: lists of names in messages were joined into 512-byte buffers,
   pointing past them when truncated; now they are whole.  */
Test (profile, long_lists_of_names_in_messages_are_whole)
{
  struct avm_strbuf b = { 0 };
  avm_strbuf_adds (&b, "{ \"options\": {");
  for (int i = 0; i < 80; i++)
    avm_strbuf_addf (&b, "%s\"option_with_a_long_name_%02d\": { \"default\": \"a\", \"choices\": { \"a\": {} } }",
                     i ? ", " : "", i);
  avm_strbuf_adds (&b, "} }");
  char *text = avm_strbuf_steal (&b);
  char *path = tu_write (dir, "many.json", text);
  char *opts[] = { "nosuch=a", NULL }, *msg = NULL;
  cr_assert_lt (load (path, opts, NULL, NULL, &msg), 0);
  assert_contains (msg, "option_with_a_long_name_00, option_with_a_long_name_01,");
  assert_contains (msg, "option_with_a_long_name_79");
  cr_assert_gt (strlen (msg), 2000);
  free (msg);
  free (path);
  free (text);
}
