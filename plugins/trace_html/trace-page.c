/* The trace page; see trace-page.h. */
#include "trace-page.h"

#include "trace-page-html.h"

#include <string.h>

/* Where the trace's JSON goes in trace-page.html: the text of a
 * <script type="application/json"> element. */
#define DATA_MARK "@CHIME_TRACE_DATA@"

/* Appends @json to @page so that nothing in it can end the <script>
 * element it sits in: every '<' is written as \u003c (still the same JSON
 * string), so a payload holding "</script>" or "<!--" stays data. */
static void
append_script_json (GString *page,
                    json_t  *json)
{
  g_autofree char *text = json_dumps (json, JSON_COMPACT | JSON_REAL_PRECISION (12));

  for (const char *c = text; *c != '\0'; c++)
    {
      if (*c == '<')
        g_string_append (page, "\\u003c");
      else
        g_string_append_c (page, *c);
    }
}

GString *
trace_page_render (json_t *trace)
{
  const char *mark = strstr (trace_page_html, DATA_MARK);
  GString *page = g_string_sized_new (sizeof trace_page_html + 4096);

  g_assert (mark != NULL);
  g_string_append_len (page, trace_page_html, mark - trace_page_html);
  append_script_json (page, trace);
  g_string_append (page, mark + strlen (DATA_MARK));
  return page;
}
