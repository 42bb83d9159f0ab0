/* `[pipeline]`: what a pipeline runs (prompt, model, parser, tags,
 * metadata). Read with every problem reported at once. */
#pragma once

#include <glib.h>
#include <jansson.h>

#include <chime/chime.h>
#include "providers/model.h"
#include "output-parser.h"
#include "agent-config.h"
#include "retriever.h"

typedef struct {
  char                 *name;           /* the root run's name */
  char                 *system;         /* system message template, or NULL */
  char                 *prompt;         /* human message template */
  ChimeModel           *model;
  ChimeOutputParserKind parser;
  char                **tags;
  json_t               *metadata;       /* an object */
  GPtrArray            *variables;      /* names the input must give */
  ChimeRetriever       *retriever;      /* fills {context}, or NULL */
  char                 *query_variable; /* the retriever's query; with retriever only */
  ChimeAgentConfig     *agent;          /* [agent], or NULL: a plain sequence */
} ChimePipelineConfig;

/* Reads [pipeline] and the [model NAME] it names. Returns NULL when the
 * file has no [pipeline] section (a problem of @ini says so); otherwise a
 * config, usable only when @ini recorded no problem. */
ChimePipelineConfig *chime_pipeline_config_read (ChimeConfig      *ini);
/* Declares [pipeline], [model NAME], [retriever NAME], [agent] and [tool NAME] as the runner's sections of @ini, so
 * the runtime does not report them as unknown. */
void                 chime_pipeline_accept_sections (ChimeConfig *ini);
void                 chime_pipeline_config_free (ChimePipelineConfig *config);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (ChimePipelineConfig, chime_pipeline_config_free)
