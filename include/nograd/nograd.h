/* nograd's whole API in one include: `#include <nograd/nograd.h>`. Each header below is one module's API and
 * may be included alone; this one is for programs that use several (the `nograd` command, bindings, tests).
 *
 *   the ask/tell optimizers      opt.h, functions.h, state.h, rng.h
 *   the engine and its policy    objective.h, engine.h, run.h, ckpt.h, inspect.h, verify.h
 *   models and data              nn.h, loss.h, metrics.h, nn_objective.h, knobs.h, data.h, domains.h, synth.h
 *   the commands as functions    app.h (minimize), train.h (train, eval), glue.h, retrofit.h, demo.h,
 *                                evaluator.h and plugin.h (external evaluators)
 *   errors, time, symbols        error.h, timer.h, export.h */
#ifndef NOGRAD_NOGRAD_H
#define NOGRAD_NOGRAD_H

#include "nograd/app.h"
#include "nograd/ckpt.h"
#include "nograd/data.h"
#include "nograd/demo.h"
#include "nograd/domains.h"
#include "nograd/engine.h"
#include "nograd/error.h"
#include "nograd/evaluator.h"
#include "nograd/export.h"
#include "nograd/functions.h"
#include "nograd/glue.h"
#include "nograd/inspect.h"
#include "nograd/knobs.h"
#include "nograd/loss.h"
#include "nograd/metrics.h"
#include "nograd/nn.h"
#include "nograd/nn_objective.h"
#include "nograd/objective.h"
#include "nograd/opt.h"
#include "nograd/plugin.h"
#include "nograd/retrofit.h"
#include "nograd/rng.h"
#include "nograd/run.h"
#include "nograd/state.h"
#include "nograd/synth.h"
#include "nograd/timer.h"
#include "nograd/train.h"
#include "nograd/verify.h"

#endif
