/* chime — configuration files as chime reads them.
 *
 * A ChimeConfig is an INI file with what GKeyFile forgets: the line of
 * every section and key (so a message says "in [model joker] of
 * pipeline.ini (line 7)"), duplicate sections and keys, and a list of the
 * problems found in it so far. The runtime reads [runtime] and every
 * [handler NAME] from it; a program that keeps its own sections in the same
 * file (the runner's [pipeline] and [model NAME]) reads them with the typed
 * readers below, which report a bad value as a problem instead of failing
 * at once, so that every mistake in a file is reported together:
 *
 *   g_autoptr (ChimeConfig) config = chime_config_new_from_file (path, &error);
 *   chime_config_accept_section (config, "pipeline", FALSE);
 *   chime_config_check_keys (config, "pipeline", my_keys);
 *   chime_config_read_int (config, "pipeline", "retries", 2, 0, 10, &retries);
 *   runtime = chime_runtime_new (config, &error);   (all problems, or a runtime)
 */
#pragma once

#include <gio/gio.h>
#include <glib.h>
#include <chime/macros.h>

G_BEGIN_DECLS

/**
 * CHIME_CONFIG_ERROR:
 *
 * The error domain of configurations, runtimes built from them and plugins
 * that will not load (#ChimeConfigError).
 */
#define CHIME_CONFIG_ERROR (chime_config_error_quark ())
/* The quark of CHIME_CONFIG_ERROR. */
CHIME_API GQuark chime_config_error_quark (void);

/**
 * ChimeConfigError:
 * @CHIME_CONFIG_ERROR_INVALID: the configuration has problems; the message
 *   lists every one of them, one per line.
 * @CHIME_CONFIG_ERROR_PLUGIN: a plugin could not be loaded or refused to
 *   start; the message names the file and the reason.
 * @CHIME_CONFIG_ERROR_IO: the file could not be read.
 */
typedef enum {
  CHIME_CONFIG_ERROR_INVALID,
  CHIME_CONFIG_ERROR_PLUGIN,
  CHIME_CONFIG_ERROR_IO,
} ChimeConfigError;

typedef struct _ChimeConfig ChimeConfig;

/**
 * CHIME_CONFIG_MAX_FILE_SIZE:
 *
 * The largest configuration file chime_config_new_from_file() reads: 1 MiB.
 */
#define CHIME_CONFIG_MAX_FILE_SIZE (1024 * 1024)

/* Reads the regular file @path whole, at most @max_size bytes, for a file
 * a configuration names (a prompt, an API key). A directory, FIFO, device
 * or socket is refused without being opened, and the message says which
 * it is: so a read never blocks on a FIFO without a writer, nor runs on
 * from /dev/zero. @contents gets the bytes and a NUL after them, @length
 * (may be NULL) their number. Errors are G_FILE_ERROR (ISDIR for a
 * directory, INVAL for another kind of file or one larger than
 * @max_size), with a message that starts with @path or says what failed
 * on it. */
CHIME_API gboolean     chime_file_get_contents        (const char *path,
                                                       gsize       max_size,
                                                       char      **contents,
                                                       gsize      *length,
                                                       GError    **error);

/* Opens @path for writing what a program produces (a result, a report)
 * into the named file, as a shell's `> PATH` would: symlinks are
 * followed; a regular file, or a new one, is written beside and renamed
 * onto it when the stream is closed (a reader never sees half of it); a
 * FIFO, a device or a socket is written to as it is (a FIFO waits for its
 * reader). A directory, or a folder that does not exist, is a G_FILE_ERROR
 * whose message names @path (and the missing folder), so a program can
 * check its output before doing the work. Close the stream to commit, or
 * chime_file_output_abandon() it. */
CHIME_API GOutputStream *chime_file_open_output    (const char    *path,
                                                    GError       **error);
/* Closes @stream (from chime_file_open_output()) without committing: a
 * regular file stays as it was. What was written to a FIFO or a device
 * stays written. */
CHIME_API void           chime_file_output_abandon (GOutputStream *stream);
/* Writes @length bytes of @contents (-1: up to the NUL) to @path through
 * chime_file_open_output(). Errors are G_FILE_ERROR, naming @path. */
CHIME_API gboolean       chime_file_set_contents   (const char    *path,
                                                    const char    *contents,
                                                    gssize         length,
                                                    GError       **error);

/* Reads @path (as chime_file_get_contents(), at most
 * CHIME_CONFIG_MAX_FILE_SIZE). A file that cannot be read is a
 * G_FILE_ERROR, one that is not INI a G_KEY_FILE_ERROR (text that is not
 * UTF-8 in a section name or key, or a NUL byte, is not INI); duplicate
 * sections and keys become problems of the config. A UTF-8 byte order
 * mark at the start is skipped. Messages name the file by its base name;
 * relative paths in it resolve against its folder. */
CHIME_API ChimeConfig *chime_config_new_from_file     (const char *path,
                                                       GError    **error);
/* Parses INI @text; @source_name names it in messages, relative paths
 * resolve against @base_dir (NULL: the current folder). */
CHIME_API ChimeConfig *chime_config_new_from_data     (const char *text,
                                                       const char *source_name,
                                                       const char *base_dir,
                                                       GError    **error);
/* Wraps @key_file (a reference is taken); messages then give no lines. */
CHIME_API ChimeConfig *chime_config_new_from_key_file (GKeyFile   *key_file,
                                                       const char *source_name,
                                                       const char *base_dir);
/* Takes a reference. */
CHIME_API ChimeConfig *chime_config_ref   (ChimeConfig *config);
/* Drops a reference; the last frees the config. */
CHIME_API void         chime_config_unref (ChimeConfig *config);

/* Adds every key of every group of @extra, replacing values already set:
 * sections a program adds to the file's (the runner's --events handler). */
CHIME_API void        chime_config_merge           (ChimeConfig *config,
                                                    GKeyFile    *extra);
/* The values, for reading what the typed readers do not cover. */
CHIME_API GKeyFile   *chime_config_get_key_file    (ChimeConfig *config);
/* The name used in messages: the file's base name, or the source name. */
CHIME_API const char *chime_config_get_source_name (ChimeConfig *config);
/* The absolute path of the file read, or NULL when not read from a file. */
CHIME_API const char *chime_config_get_path        (ChimeConfig *config);
/* The folder relative paths resolve against. */
CHIME_API const char *chime_config_get_base_dir    (ChimeConfig *config);
/* @path made absolute against the base folder ("~/" is the home folder).
 * Newly allocated. */
CHIME_API char       *chime_config_resolve_path    (ChimeConfig *config,
                                                    const char  *path);
/* " in [SECTION] of FILE (line N)" for a message: the line of @key, or of
 * the section when @key is NULL or not set. Newly allocated. */
CHIME_API char       *chime_config_describe_location (ChimeConfig *config,
                                                      const char  *section,
                                                      const char  *key);

/* Declares that sections of @kind are the program's own, so the runtime
 * does not report them as unknown: [KIND] itself, or [KIND NAME] when
 * @named. [runtime] and [handler NAME] are always known. A misspelt kind
 * gets a "did you mean" among the declared ones. */
CHIME_API void     chime_config_accept_section  (ChimeConfig *config,
                                                 const char  *kind,
                                                 gboolean     named);
/* Records a problem (a whole sentence, with its location). */
CHIME_API void     chime_config_add_problem     (ChimeConfig *config,
                                                 const char  *format,
                                                 ...) G_GNUC_PRINTF (2, 3);
/* How many problems are recorded. */
CHIME_API guint    chime_config_get_n_problems  (ChimeConfig *config);
/* TRUE when no problem is recorded; else FALSE with one
 * CHIME_CONFIG_ERROR_INVALID error listing them all, one per line. */
CHIME_API gboolean chime_config_check           (ChimeConfig *config,
                                                 GError     **error);

/* "; did you mean 'WORD'?" when one of @candidates (NULL-terminated) is
 * close enough to @word to be a likely typo, else "; valid NOUN: a, b, c",
 * for the end of a problem. Newly allocated. */
CHIME_API char    *chime_config_suggestion      (const char         *word,
                                                 const char * const *candidates,
                                                 const char         *noun);
/* Records a problem for every key of @section that is not in @valid_keys
 * (NULL-terminated), suggesting the closest valid one. */
CHIME_API void     chime_config_check_keys      (ChimeConfig        *config,
                                                 const char         *section,
                                                 const char * const *valid_keys);

/* Typed readers. When the key is absent *@out is @default_value and TRUE
 * is returned; when its value is invalid a problem naming the file, the
 * section, the key and what was expected is recorded, *@out is
 * @default_value and FALSE is returned. A value that is not UTF-8 is
 * invalid for every reader (one problem, however often it is read).
 * Booleans are true/false, yes/no, on/off or 1/0 (any case); numbers are
 * decimal (no "0x10", "inf" or "nan"). */
CHIME_API gboolean chime_config_read_bool   (ChimeConfig *config,
                                             const char  *section,
                                             const char  *key,
                                             gboolean     default_value,
                                             gboolean    *out);
/* A whole number from @min to @max. */
CHIME_API gboolean chime_config_read_int    (ChimeConfig *config,
                                             const char  *section,
                                             const char  *key,
                                             gint64       default_value,
                                             gint64       min,
                                             gint64       max,
                                             gint64      *out);
/* A number from @min to @max. */
CHIME_API gboolean chime_config_read_double (ChimeConfig *config,
                                             const char  *section,
                                             const char  *key,
                                             gdouble      default_value,
                                             gdouble      min,
                                             gdouble      max,
                                             gdouble     *out);
/* One of @choices (NULL-terminated); *@out is its index. */
CHIME_API gboolean chime_config_read_choice (ChimeConfig        *config,
                                             const char         *section,
                                             const char         *key,
                                             const char * const *choices,
                                             guint               default_value,
                                             guint              *out);
/* The value with GKeyFile's escapes ("\n") applied and surrounding blanks
 * removed, or a copy of @default_value when absent. A value that is not
 * UTF-8 or has another escape ("\q") is a problem; it is then returned as
 * written (bad bytes replaced by U+FFFD), not @default_value, so that the
 * caller does not also report the key missing. Newly allocated. */
CHIME_API char    *chime_config_read_string (ChimeConfig *config,
                                             const char  *section,
                                             const char  *key,
                                             const char  *default_value);
/* The value exactly as written, for JSON values whose own escapes must
 * reach the JSON parser; NULL when absent. Not UTF-8: as
 * chime_config_read_string(). Newly allocated. */
CHIME_API char    *chime_config_read_raw    (ChimeConfig *config,
                                             const char  *section,
                                             const char  *key);
/* A list separated by commas, semicolons or blanks; never NULL. Newly
 * allocated. */
CHIME_API char   **chime_config_read_list   (ChimeConfig *config,
                                             const char  *section,
                                             const char  *key,
                                             const char  *default_value);
/* A JSON array of strings written raw (`chunks = ["Why", " not"]`), for
 * items that may hold separators or escapes. NULL when absent, or after
 * recording a problem that quotes @example. Newly allocated. */
CHIME_API char   **chime_config_read_json_strings (ChimeConfig *config,
                                                   const char  *section,
                                                   const char  *key,
                                                   const char  *example);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (ChimeConfig, chime_config_unref)

G_END_DECLS
