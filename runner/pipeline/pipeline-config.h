/* `[pipeline]`: what a pipeline runs (prompt, model, parser, tags,
 * metadata). Read with every problem reported at once. */
#pragma once

#include <glib.h>
#include <jansson.h>

#include "config/ini.h"
#include "providers/model.h"
#include "output-parser.h"
#include "config/problems.h"

typedef struct {
  char                 *name;           /* the root run's name */
  char                 *system;         /* system message template, or NULL */
  char                 *prompt;         /* human message template */
  ChimeModel           *model;
  ChimeOutputParserKind parser;
  char                **tags;
  json_t               *metadata;       /* an object */
  GPtrArray            *variables;      /* names the templates use */
} ChimePipelineConfig;

/* Reads [pipeline] and the [model NAME] it names. Returns NULL when the
 * file has no [pipeline] section (problems say so); otherwise a config,
 * usable only when @problems stayed empty. */
ChimePipelineConfig *chime_pipeline_config_read (ChimeIni      *ini,
                                                 ChimeProblems *problems);
void                 chime_pipeline_config_free (ChimePipelineConfig *config);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (ChimePipelineConfig, chime_pipeline_config_free)
