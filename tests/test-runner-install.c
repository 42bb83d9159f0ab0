/* The installed tree as a plugin author uses it: chime.pc hands out the
 * installed headers and library, and every C example of the docs
 * compiles against them without a warning and is loaded by the
 * installed `chime check`.
 * They run the installed chime (see runner-helpers.h) and assert what a
 * user sees. */
#include "runner-helpers.h"

#include <string.h>

/* ------------------------------------------------------------------
 * The C examples of the docs compile against the installed tree.
 *
 * Convention: a fenced ```c block whose FIRST line is the comment
 * `/\* file: NAME.c *\/` is a complete plugin. It is compiled as the docs
 * tell users, with
 *   cc -shared -fPIC -o NAME.so NAME.c $(pkg-config --cflags --libs chime)
 * (against the installed headers, library and chime.pc), must compile
 * without a warning, and is then loaded by `chime check`, with every
 * symbol bound at load time. The configuration is the ```ini block of the
 * same Markdown file whose first line is `# file: NAME.ini`, if any, with
 * `plugin = NAME` pointed at the compiled NAME.so; else one handler
 * section `[handler NAME]` with `plugin = /abs/path/NAME.so`. Block names
 * must be unique across the docs.
 *
 * A block whose first line is `/\* program: NAME.c *\/` is a complete
 * program (an embedder): it is compiled with
 *   cc -o NAME NAME.c $(pkg-config --cflags --libs chime)
 * without a warning, and when the same file has a ```text block whose
 * first line is `$ ./NAME ARGS`, that command is run in a folder holding
 * every `# file: X.ini` block of the file, against the installed library
 * and plugins, and must print exactly the rest of the block.
 *
 * A plugin's ```text block whose first line is `$ chime run NAME.ini ...`
 * is run the same way once the plugin loaded (the installed chime first
 * on PATH, stderr with stdout), and must print the rest of the block; an
 * ellipsis `…` there stands for any text (a run id, a result elided).
 * ---------------------------------------------------------------- */

typedef struct {
  char *doc;     /* the Markdown file */
  char *name;    /* NAME of NAME.c */
  char *code;
  char *ini;     /* the matching `# file: NAME.ini` block, or NULL */
  gboolean   program;
  GPtrArray *inis;      /* programs: every `# file: X.ini` block of the doc */
  char      *command;   /* `./NAME ARGS` (programs) or `chime run NAME.ini ...`
                         * (plugins) of the matching ```text block */
  char      *expected;  /* the rest of that block */
} DocExample;

static void
doc_example_free (gpointer data)
{
  DocExample *example = data;

  g_free (example->doc);
  g_free (example->name);
  g_free (example->code);
  g_free (example->ini);
  g_clear_pointer (&example->inis, g_ptr_array_unref);
  g_free (example->command);
  g_free (example->expected);
  g_free (example);
}

/* Fenced blocks with info string @language, at the start of a line. */
static GPtrArray *
fenced_blocks (const char *text,
               const char *language)
{
  g_autofree char *pattern = g_strdup_printf ("^```%s[ \\t]*\\n(.*?)^```[ \\t]*$", language);
  g_autoptr (GRegex) regex = g_regex_new (pattern, G_REGEX_MULTILINE | G_REGEX_DOTALL, 0, NULL);
  g_autoptr (GMatchInfo) match = NULL;
  GPtrArray *blocks = g_ptr_array_new_with_free_func (g_free);

  g_assert (regex != NULL);
  g_regex_match (regex, text, 0, &match);
  while (g_match_info_matches (match))
    {
      g_ptr_array_add (blocks, g_match_info_fetch (match, 1));
      g_match_info_next (match, NULL);
    }
  return blocks;
}

/* NAME from a first line `<open> file: NAME.<ext> <close>`, or NULL. */
static char *
block_file_name (const char *block,
                 const char *pattern)
{
  g_autoptr (GRegex) regex = g_regex_new (pattern, 0, 0, NULL);
  g_autoptr (GMatchInfo) match = NULL;
  g_autofree char *first = g_strndup (block, strcspn (block, "\n"));

  g_assert (regex != NULL);
  if (!g_regex_match (regex, first, 0, &match))
    return NULL;
  return g_match_info_fetch (match, 1);
}

#define C_FILE_PATTERN "^/\\*\\s*file:\\s*([A-Za-z0-9_.-]+)\\.c\\s*\\*/\\s*$"
#define INI_FILE_PATTERN "^[#;]\\s*file:\\s*([A-Za-z0-9_.-]+)\\.ini\\s*$"
#define PROGRAM_PATTERN "^/\\*\\s*program:\\s*([A-Za-z0-9_.-]+)\\.c\\s*\\*/\\s*$"

/* A program's run (the ```text block of @text_blocks starting with
 * "$ ./NAME") or a plugin's ("$ chime run NAME.ini"), split into the
 * command and what it prints. */
static void
find_program_run (DocExample *example,
                  GPtrArray  *text_blocks)
{
  g_autofree char *prompt = example->program ? g_strdup_printf ("$ ./%s", example->name)
                                             : g_strdup_printf ("$ chime run %s.ini", example->name);

  for (guint i = 0; i < text_blocks->len; i++)
    {
      const char *block = text_blocks->pdata[i];
      const char *end = strchr (block, '\n');

      if (!g_str_has_prefix (block, prompt) || end == NULL)
        continue;
      example->command = g_strndup (block + 2, end - block - 2);
      example->expected = g_strdup (end + 1);
      return;
    }
}

/* Adds the examples of the Markdown file @doc to @examples. */
static void
collect_doc_examples (const char *doc,
                      GPtrArray  *examples,
                      GString    *failures)
{
  g_autofree char *text = read_text (doc);
  g_autoptr (GPtrArray) c_blocks = NULL;
  g_autoptr (GPtrArray) ini_blocks = NULL;

  if (text == NULL)
    return;
  c_blocks = fenced_blocks (text, "c");
  ini_blocks = fenced_blocks (text, "ini");
  for (guint i = 0; i < c_blocks->len; i++)
    {
      g_autofree char *name = block_file_name (c_blocks->pdata[i], C_FILE_PATTERN);
      gboolean program = FALSE;
      DocExample *example;

      if (name == NULL)
        program = (name = block_file_name (c_blocks->pdata[i], PROGRAM_PATTERN)) != NULL;
      if (name == NULL)
        continue;   /* a fragment, not a complete example */
      for (guint j = 0; j < examples->len; j++)
        if (g_str_equal (((DocExample *) examples->pdata[j])->name, name))
          g_string_append_printf (failures, "%s: a second example named %s.c (the first is in %s)\n",
                                  doc, name, ((DocExample *) examples->pdata[j])->doc);
      example = g_new0 (DocExample, 1);
      example->doc = g_strdup (doc);
      example->name = g_steal_pointer (&name);
      example->code = g_strdup (c_blocks->pdata[i]);
      example->program = program;
      {
        g_autoptr (GPtrArray) text_blocks = fenced_blocks (text, "text");

        if (program)
          example->inis = g_ptr_array_ref (ini_blocks);
        find_program_run (example, text_blocks);
      }
      for (guint j = 0; j < ini_blocks->len; j++)
        {
          g_autofree char *ini_name = block_file_name (ini_blocks->pdata[j], INI_FILE_PATTERN);

          if (ini_name != NULL && g_str_equal (ini_name, example->name))
            example->ini = g_strdup (ini_blocks->pdata[j]);
        }
      g_ptr_array_add (examples, example);
    }
}

/* The Markdown files the docs are made of: README.md and docs/ (all
 * levels), in a stable order. */
static void
collect_markdown (const char *dir_path,
                  GPtrArray  *files)
{
  g_autoptr (GDir) dir = g_dir_open (dir_path, 0, NULL);
  g_autoptr (GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  const char *name;

  if (dir == NULL)
    return;
  while ((name = g_dir_read_name (dir)) != NULL)
    g_ptr_array_add (names, g_strdup (name));
  g_ptr_array_sort (names, compare_strings);
  for (guint i = 0; i < names->len; i++)
    {
      g_autofree char *path = g_build_filename (dir_path, names->pdata[i], NULL);

      if (g_file_test (path, G_FILE_TEST_IS_DIR))
        collect_markdown (path, files);
      else if (g_str_has_suffix (path, ".md"))
        g_ptr_array_add (files, g_steal_pointer (&path));
    }
}

/* The docs' INI with `plugin = NAME` pointed at ./NAME.so. */
static char *
point_ini_at_plugin (const char *ini,
                     const char *name)
{
  g_autofree char *escaped = g_regex_escape_string (name, -1);
  g_autofree char *pattern = g_strdup_printf ("^(\\s*plugin\\s*=\\s*)(%s|%s\\.so|\\./%s\\.so)\\s*$",
                                              escaped, escaped, escaped);
  g_autofree char *replacement = g_strdup_printf ("\\1./%s.so", name);
  g_autoptr (GRegex) regex = g_regex_new (pattern, G_REGEX_MULTILINE, 0, NULL);

  g_assert (regex != NULL);
  return g_regex_replace (regex, ini, -1, 0, replacement, 0, NULL);
}

/* A folder with the installed chime.pc relocated into the install tree:
 * every variable that starts with the configured prefix starts with
 * INSTALL_ROOT + prefix instead. (pkg-config's --define-variable=prefix
 * cannot do this: it redefines the prefix of glib-2.0 and jansson too.) */
static const char *
relocated_pkgconfig_dir (void)
{
  static char *dir;
  g_autofree char *pc = NULL;
  g_autofree char *text = NULL;
  g_autofree char *root_prefix = NULL;
  g_autoptr (GString) relocated = NULL;
  g_auto (GStrv) lines = NULL;

  if (dir != NULL)
    return dir;
  pc = installed (PKGCONFIGDIR, "chime.pc");
  text = read_text (pc);
  if (text == NULL)
    fail_msg ("%s was not installed", pc);
  root_prefix = installed (PREFIX, NULL);
  relocated = g_string_new (NULL);
  lines = split_lines (text);
  for (guint i = 0; lines[i] != NULL; i++)
    {
      const char *equals = strchr (lines[i], '=');
      const char *colon = strchr (lines[i], ':');

      /* "name=value" variables, not "Name: value" fields. */
      if (equals != NULL && (colon == NULL || equals < colon) &&
          g_str_has_prefix (equals + 1, PREFIX) &&
          (equals[1 + strlen (PREFIX)] == '\0' || equals[1 + strlen (PREFIX)] == '/'))
        g_string_append_printf (relocated, "%.*s%s%s\n", (int) (equals + 1 - lines[i]), lines[i],
                                root_prefix, equals + 1 + strlen (PREFIX));
      else
        g_string_append_printf (relocated, "%s\n", lines[i]);
    }
  dir = fresh_dir ("pkgconfig");
  g_free (write_in (dir, "chime.pc", relocated->str));
  return dir;
}

/* Runs a program example's command in @dir with the doc's INI files; its
 * output must be the doc's. */
static void
run_doc_program (DocExample *example,
                 const char *dir,
                 GString    *failures)
{
  const char *args[] = { "sh", "-c", example->command, NULL };
  RunOptions options = { .cwd = dir };
  g_autoptr (RunResult) ran = NULL;

  for (guint i = 0; i < example->inis->len; i++)
    {
      g_autofree char *name = block_file_name (example->inis->pdata[i], INI_FILE_PATTERN);
      g_autofree char *file = name != NULL ? g_strdup_printf ("%s.ini", name) : NULL;

      if (file != NULL)
        g_free (write_in (dir, file, example->inis->pdata[i]));
    }
  ran = run_argv (&options, args);
  if (ran->status != 0 || g_strcmp0 (ran->out, example->expected) != 0)
    g_string_append_printf (failures, "%s: `%s` (exit %d) printed\n%s%s\ninstead of\n%s\n",
                            example->doc, example->command, ran->status, ran->out, ran->err,
                            example->expected);
}

/* Whether @text is @pattern, where each "…" of @pattern stands for any
 * text. */
static gboolean
matches_elided (const char *text,
                const char *pattern)
{
  g_auto (GStrv) pieces = g_strsplit (pattern, "…", -1);
  guint n = g_strv_length (pieces);
  const char *at = text;

  if (!g_str_has_prefix (text, pieces[0]))
    return FALSE;
  if (n == 1)
    return g_str_equal (text, pattern);
  at += strlen (pieces[0]);
  for (guint i = 1; i + 1 < n; i++)
    {
      const char *found = strstr (at, pieces[i]);

      if (found == NULL)
        return FALSE;
      at = found + strlen (pieces[i]);
    }
  return strlen (at) >= strlen (pieces[n - 1]) && g_str_has_suffix (at, pieces[n - 1]);
}

/* Runs a plugin example's `chime run NAME.ini` in @dir (its INI already
 * there): what it prints, stderr included, must be the doc's. */
static void
run_doc_plugin (DocExample *example,
                const char *dir,
                GString    *failures)
{
  g_autofree char *bin = installed (PREFIX, "bin");
  g_autofree char *path = g_strdup_printf ("PATH=%s:%s", bin, g_getenv ("PATH"));
  g_autofree char *merged = g_strdup_printf ("{ %s ; } 2>&1", example->command);
  const char *env[] = { path, NULL };
  const char *args[] = { "sh", "-c", merged, NULL };
  RunOptions options = { .cwd = dir, .env = env };
  g_autoptr (RunResult) ran = run_argv (&options, args);

  if (!matches_elided (ran->out, example->expected))
    g_string_append_printf (failures, "%s: `%s` printed\n%s\ninstead of\n%s\n", example->doc,
                            example->command, ran->out, example->expected);
}

/* Whether the compiler warned about a source file or header. What the
 * linker says of the libraries (a sanitizer build's libasan warns about
 * tmpnam) is not the example's doing. */
static gboolean
has_compiler_warning (const char *output)
{
  g_autoptr (GRegex) regex = g_regex_new ("^[^\\s:]+\\.[ch]:[0-9]+:([0-9]+:)? warning:", G_REGEX_MULTILINE, 0, NULL);

  g_assert (regex != NULL);
  return g_regex_match (regex, output, 0, NULL);
}

/* Compiles one example in @dir and loads it with `chime check` (a plugin)
 * or runs it as the doc shows (a program); appends what went wrong to
 * @failures. */
static void
check_doc_example (DocExample *example,
                   const char *dir,
                   GString    *failures)
{
  g_autofree char *source_name = g_strdup_printf ("%s.c", example->name);
  g_autofree char *source = write_in (dir, source_name, example->code);
  const char *pkgconfig_dir = relocated_pkgconfig_dir ();
  g_autofree char *pkg_config_path = NULL;
  g_autofree char *env_pkg_config_path = NULL;
  g_autofree char *shell_command = NULL;
  g_autofree char *so_path = NULL;
  g_autofree char *ini_text = NULL;
  g_autofree char *ini_name = g_strdup_printf ("%s.ini", example->name);
  g_autofree char *ini_path = NULL;
  const char *env[] = { NULL, "LD_BIND_NOW=1", NULL };
  RunOptions options = { .cwd = dir, .env = env };
  g_autoptr (RunResult) compiled = NULL;
  g_autoptr (RunResult) checked = NULL;

  /* `cc -shared -fPIC -o NAME.so NAME.c $(pkg-config --cflags --libs chime)`,
   * word for word (plus -Wall -Wextra), with pkg-config reading the installed chime.pc,
   * relocated into the test's install tree. */
  pkg_config_path = g_getenv ("PKG_CONFIG_PATH") != NULL
                      ? g_strconcat (pkgconfig_dir, ":", g_getenv ("PKG_CONFIG_PATH"), NULL)
                      : g_strdup (pkgconfig_dir);
  env_pkg_config_path = g_strconcat ("PKG_CONFIG_PATH=", pkg_config_path, NULL);
  env[0] = env_pkg_config_path;
  /* A sanitizer build's examples get its sanitizers too (SANITIZER_FLAGS
   * is empty otherwise): a program linked to a sanitized libchime aborts
   * unless the sanitizer runtime comes first. */
  /* With -Wall -Wextra on top: the guide promises examples that compile
   * cleanly under them (the `(void)` casts). */
  shell_command = example->program
                    ? g_strdup_printf ("cc -Wall -Wextra%s%s -o %s %s.c $(pkg-config --cflags --libs chime)",
                                       *SANITIZER_FLAGS ? " " : "", SANITIZER_FLAGS,
                                       example->name, example->name)
                    : g_strdup_printf ("cc -Wall -Wextra%s%s -shared -fPIC -o %s.so %s.c "
                                       "$(pkg-config --cflags --libs chime)",
                                       *SANITIZER_FLAGS ? " " : "", SANITIZER_FLAGS,
                                       example->name, example->name);
  {
    const char *compile_args[] = { "sh", "-c", shell_command, NULL };
    RunOptions compile_options = { .cwd = dir, .env = env };

    compiled = run_argv (&compile_options, compile_args);
  }
  if (compiled->status != 0 || has_compiler_warning (compiled->err) || has_compiler_warning (compiled->out))
    {
      g_string_append_printf (failures, "%s: %s.c does not compile cleanly with\n  %s\n%s%s\n",
                              example->doc, example->name, shell_command, compiled->out, compiled->err);
      return;
    }
  if (example->program)
    {
      if (example->command != NULL)
        run_doc_program (example, dir, failures);
      return;
    }
  so_path = g_strdup_printf ("%s/%s.so", dir, example->name);
  assert_true (g_file_test (so_path, G_FILE_TEST_EXISTS));

  if (example->ini != NULL)
    ini_text = point_ini_at_plugin (example->ini, example->name);
  else
    ini_text = g_strdup_printf ("[handler %s]\nplugin = %s\n", example->name, so_path);
  ini_path = write_in (dir, ini_name, ini_text);
  {
    const char *args[] = { "check", ini_path, NULL };

    checked = run_chime_argv (&options, args);
  }
  if (checked->status != 0)
    g_string_append_printf (failures, "%s: %s.so does not load (chime check exit %d):\n%s%s\n",
                            example->doc, example->name, checked->status, checked->out, checked->err);
  else if (example->command != NULL)
    run_doc_plugin (example, dir, failures);
}

/* Checks every example of @docs; returns how many there were. */
static guint
check_docs (GPtrArray  *docs,
            GString    *failures)
{
  g_autoptr (GPtrArray) examples = g_ptr_array_new_with_free_func (doc_example_free);

  for (guint i = 0; i < docs->len; i++)
    collect_doc_examples (docs->pdata[i], examples, failures);
  for (guint i = 0; i < examples->len; i++)
    {
      DocExample *example = examples->pdata[i];
      g_autofree char *dir_name = g_strdup_printf ("doc-%s", example->name);
      g_autofree char *dir = fresh_dir (dir_name);

      check_doc_example (example, dir, failures);
    }
  return examples->len;
}

/* The extractor itself, on a made-up page: a plugin that compiles, one
 * with its own INI (and a required key) and its run shown with elisions,
 * one whose shown run is wrong, a fragment that is not an example, one
 * that does not compile and one that warns, which must be reported, and
 * two programs, one whose page says what it prints and one whose page is
 * wrong. */
static void
test_docs_extractor_self_check (void **state)
{
  g_autofree char *dir = fresh_dir ("docs-self-check");
  g_autofree char *doc = write_in (dir, "page.md",
    "# A page\n\n"
    "```c\n"
    "/* file: hello_doc.c */\n"
    "#include <chime/plugin.h>\n"
    "#include <stdio.h>\n\n"
    "static gboolean\n"
    "on_token (gpointer instance, ChimeEvent *event, GError **error)\n"
    "{\n"
    "  (void) instance;\n"
    "  (void) error;\n"
    "  printf (\"%s\", chime_event_get_token (event));\n"
    "  return TRUE;\n"
    "}\n\n"
    "CHIME_SYNC_PLUGIN_DEFINE (\n"
    "  .name = \"hello_doc\",\n"
    "  .on_llm_new_token = on_token,\n"
    ");\n"
    "```\n\n"
    "A fragment, not checked:\n\n"
    "```c\n"
    "printf (\"%s\", chime_event_get_token (event));\n"
    "```\n\n"
    "```c\n"
    "/* file: keyed_doc.c */\n"
    "#include <chime/plugin.h>\n\n"
    "static const ChimeConfigKey keys[] = {\n"
    "  { \"greeting\", CHIME_CONFIG_STRING, NULL, \"what to say\", CHIME_CONFIG_KEY_REQUIRED, NULL },\n"
    "  { NULL }\n"
    "};\n\n"
    "static gpointer\n"
    "greeter_new (ChimeHandlerContext *context, GError **error)\n"
    "{\n"
    "  (void) error;\n"
    "  return g_strdup (chime_handler_context_get_string (context, \"greeting\"));\n"
    "}\n\n"
    "static gboolean\n"
    "greet (gpointer instance, ChimeEvent *event, GError **error)\n"
    "{\n"
    "  (void) event;\n"
    "  (void) error;\n"
    "  g_print (\"%s\\n\", (const char *) instance);\n"
    "  return TRUE;\n"
    "}\n\n"
    "CHIME_SYNC_PLUGIN_DEFINE (\n"
    "  .name = \"keyed_doc\",\n"
    "  .config_keys = keys,\n"
    "  .instance_new = greeter_new,\n"
    "  .instance_free = g_free,\n"
    "  .on_chain_start = greet,\n"
    ");\n"
    "```\n\n"
    "```ini\n"
    "# file: keyed_doc.ini\n"
    "[pipeline]\n"
    "prompt = Hi\n"
    "model = m\n\n"
    "[model m]\n"
    "provider = fake\n\n"
    "[handler greeter]\n"
    "plugin = keyed_doc\n"
    "greeting = hello\n"
    "```\n\n"
    "A plugin's run, shown with what is elided:\n\n"
    "```text\n"
    "$ chime run keyed_doc.ini\n"
    "hello\n"
    "hello\n"
    "hello\n"
    "{\"run_id\":\"…\",\"output\":\"…\",\"llm_result\":{…}}\n"
    "```\n\n"
    "A plugin whose page shows the wrong run:\n\n"
    "```c\n"
    "/* file: loud_doc.c */\n"
    "#include <chime/plugin.h>\n"
    "#include <stdio.h>\n\n"
    "static gboolean\n"
    "on_end (gpointer instance, ChimeEvent *event, GError **error)\n"
    "{\n"
    "  (void) instance;\n"
    "  (void) event;\n"
    "  (void) error;\n"
    "  fprintf (stderr, \"really\\n\");\n"
    "  return TRUE;\n"
    "}\n\n"
    "CHIME_SYNC_PLUGIN_DEFINE (.name = \"loud_doc\", .on_llm_end = on_end);\n"
    "```\n\n"
    "```ini\n"
    "# file: loud_doc.ini\n"
    "[pipeline]\n"
    "prompt = Hi\n"
    "model = m\n\n"
    "[model m]\n"
    "provider = fake\n\n"
    "[handler loud]\n"
    "plugin = loud_doc\n"
    "```\n\n"
    "```text\n"
    "$ chime run loud_doc.ini >/dev/null\n"
    "claimed\n"
    "```\n\n"
    "```c\n"
    "/* file: broken_doc.c */\n"
    "#include <chime/plugin.h>\n"
    "this is not C;\n"
    "```\n\n"
    "One that compiles with a warning, which counts as not clean:\n\n"
    "```c\n"
    "/* file: warns_doc.c */\n"
    "#include <chime/plugin.h>\n"
    "#warning this example is not clean\n"
    "CHIME_SYNC_PLUGIN_DEFINE (.name = \"warns_doc\");\n"
    "```\n\n"
    "A program, run as shown, with an INI of the page:\n\n"
    "```c\n"
    "/* program: count_doc.c */\n"
    "#include <chime/chime.h>\n"
    "#include <stdio.h>\n\n"
    "int\n"
    "main (int argc, char **argv)\n"
    "{\n"
    "  g_autoptr (GError) error = NULL;\n"
    "  g_autoptr (ChimeRuntime) runtime = argc == 2 ? chime_runtime_new_from_file (argv[1], &error) : NULL;\n\n"
    "  if (runtime == NULL)\n"
    "    return 3;\n"
    "  printf (\"%u handlers\\n\", chime_runtime_get_n_handlers (runtime));\n"
    "  return 0;\n"
    "}\n"
    "```\n\n"
    "```ini\n"
    "# file: counted.ini\n"
    "[handler printer]\n"
    "plugin = streaming_stdout\n"
    "```\n\n"
    "```text\n"
    "$ ./count_doc counted.ini\n"
    "1 handlers\n"
    "```\n\n"
    "And one whose page says the wrong thing:\n\n"
    "```c\n"
    "/* program: wrong_doc.c */\n"
    "#include <stdio.h>\n\n"
    "int\n"
    "main (void)\n"
    "{\n"
    "  printf (\"what it really prints\\n\");\n"
    "  return 0;\n"
    "}\n"
    "```\n\n"
    "```text\n"
    "$ ./wrong_doc\n"
    "what the page claims\n"
    "```\n");
  g_autoptr (GPtrArray) docs = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GString) failures = g_string_new (NULL);
  guint n;

  /* pkg-config hands out the installed tree's flags, and glib's own. */
  {
    g_autofree char *setting = g_strconcat ("PKG_CONFIG_PATH=", relocated_pkgconfig_dir (), NULL);
    const char *env[] = { setting, NULL };
    const char *args[] = { "pkg-config", "--cflags", "--libs", "chime", NULL };
    RunOptions options = { .cwd = dir, .env = env };
    g_autoptr (RunResult) flags = run_argv (&options, args);
    g_autofree char *include_dir = installed (INCLUDEDIR, NULL);
    g_autofree char *lib_dir = installed (LIBDIR, NULL);
    g_autofree char *include_flag = g_strconcat ("-I", include_dir, " ", NULL);
    g_autofree char *lib_flag = g_strconcat ("-L", lib_dir, " ", NULL);

    assert_status (flags, 0);
    assert_string_contains (flags->out, include_flag);
    assert_string_contains (flags->out, lib_flag);
    assert_string_contains (flags->out, "glib-2.0");
  }

  g_ptr_array_add (docs, g_strdup (doc));
  n = check_docs (docs, failures);
  if (n != 7 || strstr (failures->str, "hello_doc") != NULL || strstr (failures->str, "keyed_doc") != NULL ||
      strstr (failures->str, "count_doc") != NULL)
    fail_msg ("%u examples; failures:\n%s", n, failures->str);
  assert_string_contains (failures->str, "`chime run loud_doc.ini >/dev/null` printed\nreally\n");
  assert_string_contains (failures->str, "broken_doc.c does not compile");
  assert_string_contains (failures->str, "warns_doc.c does not compile cleanly");
  assert_string_contains (failures->str, "`./wrong_doc` (exit 0) printed\nwhat it really prints\n");
}

static void
test_docs_examples_compile (void **state)
{
  g_autoptr (GPtrArray) docs = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GString) failures = g_string_new (NULL);
  g_autofree char *docs_dir = g_build_filename (SRCDIR, "docs", NULL);
  guint n;

  g_ptr_array_add (docs, g_build_filename (SRCDIR, "README.md", NULL));
  collect_markdown (docs_dir, docs);
  n = check_docs (docs, failures);
  if (failures->len > 0)
    fail_msg ("%s", failures->str);
  if (n == 0)
    {
      print_message ("no C examples in the docs yet: a ```c block whose first line is "
                     "/* file: NAME.c */ is compiled and loaded by this test\n");
      skip ();
    }
  print_message ("%u C examples of the docs compiled and loaded\n", n);
}

/* ------------------------------------------------------------------ */

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_docs_extractor_self_check),
    cmocka_unit_test (test_docs_examples_compile),
  };

  return runner_run_tests (tests, G_N_ELEMENTS (tests));
}
