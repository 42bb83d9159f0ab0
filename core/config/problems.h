/* A list of configuration problems, collected so that every mistake in a
 * file is reported at once instead of one per run. */
#pragma once

#include <glib.h>

typedef struct _ChimeProblems ChimeProblems;

ChimeProblems *chime_problems_new   (void);
void           chime_problems_free  (ChimeProblems *problems);
void           chime_problems_add   (ChimeProblems *problems,
                                     const char    *format,
                                     ...) G_GNUC_PRINTF (2, 3);
void           chime_problems_add_valist (ChimeProblems *problems,
                                          const char    *format,
                                          va_list        args) G_GNUC_PRINTF (2, 0);
guint          chime_problems_count (ChimeProblems *problems);
/* TRUE when there are none; else FALSE and one error in @domain/@code whose
 * message holds every problem, one per line. */
gboolean       chime_problems_to_error (ChimeProblems *problems,
                                        GQuark         domain,
                                        gint           code,
                                        GError       **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (ChimeProblems, chime_problems_free)
