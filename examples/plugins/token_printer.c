/* token_printer: the seed example's sync handler. It runs on chime's
 * thread pool, like LangChain's sync handler "in a thread_pool_executor".
 *
 *   cc -shared -fPIC -o token_printer.so token_printer.c $(pkg-config --cflags --libs chime)
 */
#include <chime/plugin.h>
#include <stdio.h>

static gboolean
print_token (gpointer    instance,
             ChimeEvent *event,
             GError    **error)
{
  printf ("Sync handler being called in a `thread_pool_executor`: token: %s\n",
          chime_event_get_token (event));
  fflush (stdout);
  return TRUE;
}

CHIME_SYNC_PLUGIN_DEFINE (
  .name = "token_printer",
  .description = "prints every token (the seed example's sync handler)",
  .version = "1.0",
  .on_llm_new_token = print_token,
);
