/* chime — the marks on the public API.
 *
 * libchime is built with -fvisibility=hidden: only what is declared with
 * CHIME_API in these headers is exported, so everything a program can link
 * against is declared and documented here, and nothing else is. */
#pragma once

#include <glib.h>

/**
 * CHIME_API:
 *
 * Marks a declaration of the public API: exported from libchime (default
 * visibility) and extern for everyone else.
 */
#if defined(__GNUC__) || defined(__clang__)
# define CHIME_API __attribute__ ((visibility ("default"))) extern
#else
# define CHIME_API extern
#endif
