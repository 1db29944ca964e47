/* `nograd train`: the options, and the report (one JSON line with --json). Rank 0 trains; every rank exits
 * with its status. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "core/json.h"
#include "nograd/error.h"
#include "nograd/train.h"

int ng_cmd_train(MPI_Comm comm, int argc, char **argv) {
  int rank;
  MPI_Comm_rank(comm, &rank);
  FILE *out = rank == 0 ? stdout : NULL, *err = rank == 0 ? stderr : fopen("/dev/null", "w");
  ng_train_config cfg;
  ng_train_config_init(&cfg); /* the library's defaults: what --help shows */
  const char *optimizer = "sgd", *loss = NULL;
  bool json = false, quiet = false;
  ng_arg table[] = {
      {"--train", NG_ARG_STRING, &cfg.train, "FILE", "training dataset (HDF5)"},
      {"--val", NG_ARG_STRING, &cfg.val, "FILE",
       "validation dataset: early stopping on its loss, best weights kept"},
      {"--spec", NG_ARG_STRING, &cfg.spec, "FILE", "model spec file; weights initialised from --seed"},
      {"--init-from", NG_ARG_STRING, &cfg.init_from, "MODEL", "model file to continue training from"},
      {"--out", NG_ARG_STRING, &cfg.out, "MODEL", "model file to write (atomically)"},
      {"--optimizer", NG_ARG_STRING, &optimizer, "NAME", "sgd (with momentum) or adam"},
      {"--lr", NG_ARG_POSDOUBLE, &cfg.lr, "LR", "learning rate"},
      {"--momentum", NG_ARG_DOUBLE, &cfg.momentum, "M", "SGD momentum in [0, 1)"},
      {"--weight-decay", NG_ARG_DOUBLE, &cfg.weight_decay, "WD", "L2 weight decay added to the gradient"},
      {"--batch", NG_ARG_POSINT, &cfg.batch, "B", "examples per step", false, false, INT32_MAX},
      {"--epochs", NG_ARG_POSINT, &cfg.epochs, "E", "at most E epochs"},
      {"--patience", NG_ARG_SIZE, &cfg.patience, "K",
       "stop after K epochs without a better val loss (0: never)"},
      {"--seed", NG_ARG_UINT64, &cfg.seed, "K", "seed of the initial weights, the shuffles and dropout"},
      {"--loss", NG_ARG_STRING, &loss, "NAME", "ce or mse (default: ce for labels, mse for float targets)"},
      {"--json", NG_ARG_FLAG, &json, NULL, "print one JSON line with the result"},
      {"--quiet", NG_ARG_FLAG, &quiet, NULL, "no progress lines"},
  };
  size_t ntable = sizeof table / sizeof table[0];
  int code = ng_args_parse(
      "train", "--train T.h5 [--val V.h5] (--spec FILE | --init-from MODEL.h5) --out MODEL.h5 [options]",
      table, ntable, argc, argv, 2, out ? out : err, err);
  if (ng_args_finished(&code)) goto done;
  code = NG_EXIT_USAGE;
  if (!cfg.train || !cfg.out) {
    fprintf(err, "nograd train: %s is required (see nograd train --help)\n",
            !cfg.train ? "--train" : "--out");
    goto done;
  }
  if (!cfg.spec == !cfg.init_from) {
    fprintf(err, "nograd train: give exactly one of --spec and --init-from\n");
    goto done;
  }
  if (strcmp(optimizer, "sgd") == 0)
    cfg.optimizer = NG_TRAIN_SGD;
  else if (strcmp(optimizer, "adam") == 0)
    cfg.optimizer = NG_TRAIN_ADAM;
  else {
    fprintf(err, "nograd train: --optimizer: expected sgd or adam, got '%s'\n", optimizer);
    goto done;
  }
  if (!loss)
    cfg.loss = NG_TRAIN_LOSS_AUTO;
  else if (strcmp(loss, "ce") == 0)
    cfg.loss = NG_TRAIN_LOSS_CE;
  else if (strcmp(loss, "mse") == 0)
    cfg.loss = NG_TRAIN_LOSS_MSE;
  else {
    fprintf(err, "nograd train: --loss: expected ce or mse, got '%s'\n", loss);
    goto done;
  }
  if (!(cfg.momentum >= 0 && cfg.momentum < 1)) {
    fprintf(err, "nograd train: --momentum: expected a number in [0, 1), got %g\n", cfg.momentum);
    goto done;
  }
  if (!(cfg.weight_decay >= 0) || !isfinite(cfg.weight_decay)) {
    fprintf(err, "nograd train: --weight-decay: expected a finite number >= 0, got %g\n", cfg.weight_decay);
    goto done;
  }
  cfg.progress = quiet || rank != 0 ? NULL : stderr;
  ng_train_result res = {0};
  int st = ng_app_train(comm, &cfg, &res);
  if (st != NG_OK) {
    fprintf(err, "nograd train: %s\n", ng_errmsg()[0] ? ng_errmsg() : ng_strerror(st));
    code = NG_EXIT_FAILURE;
    goto done;
  }
  code = NG_EXIT_OK;
  if (out && json) {
    fprintf(out, "{\"epochs\":%zu,\"best_epoch\":%zu,\"train_loss\":", res.epochs, res.best_epoch);
    ng_json_number(out, res.train_loss);
    fprintf(out, ",\"val_loss\":");
    ng_json_number(out, res.val_loss);
    fprintf(out, ",\"val_accuracy\":");
    ng_json_number(out, res.val_accuracy);
    fprintf(out, ",\"seconds\":%.6f}\n", res.seconds);
  } else if (out) {
    fprintf(out,
            "epochs: %zu\nbest_epoch: %zu\ntrain_loss: %.17g\nval_loss: %.17g\nval_accuracy: %.17g\nseconds: "
            "%.3f\n",
            res.epochs, res.best_epoch, res.train_loss, res.val_loss, res.val_accuracy, res.seconds);
  }
done:
  if (rank != 0 && err) fclose(err);
  return code;
}
