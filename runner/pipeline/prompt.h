/* Prompt templates: "{var}" placeholders filled from variables, as
 * LangChain's f-string templates ("{{" and "}}" are literal braces). */
#pragma once

#include <glib.h>

/* The names of the variables @template uses, in order of first use.
 * FALSE with @error when the template is malformed (an unclosed "{"). */
gboolean chime_prompt_variables (const char  *template_text,
                                 GPtrArray  **out_names,
                                 GError     **error);

/* Fills @template from @variables (name -> value). A variable the template
 * uses but @variables lacks is an error naming it. */
char    *chime_prompt_render    (const char  *template_text,
                                 GHashTable  *variables,
                                 GError     **error);
