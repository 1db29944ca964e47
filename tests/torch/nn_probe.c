/* nn_probe: runs nograd's model code on files for tests/torch/test_parity.py, which compares it with PyTorch.
 *
 *   nn_probe forward MODEL DATA OUT    logits of DATA's /x -> OUT: /logits
 *   nn_probe backward MODEL DATA OUT   the same in training mode, then the summed cross-entropy against /y
 *                                      and one backward pass -> OUT: /logits, /loss, /dlogits, /grad
 *   nn_probe init SPEC SEED OUT_MODEL  ng_model_from_spec(text of the file SPEC), ng_model_init(SEED),
 *                                      ng_model_write(OUT_MODEL)
 *   nn_probe data DATA                 opens DATA with ng_dataset_open and prints what nograd sees:
 *                                      "n N d D xrank R xdims A B C t T classes K", "name NAME",
 *                                      "domain DOMAIN", "y0 Y x0 X" (row 0, read with ng_dataset_read_rows)
 *
 * forward and backward first print the model as nograd read it, one line each: "nparams N", "input N",
 * "output N", then "tensor NAME OFFSET NDIM S0 S1 S2 S3" per tensor in index order.
 *
 * /loss is the SUM over the batch (double) and /grad the gradient of that sum, flat in spec order (float32).
 * The loss and dlogits come from ng_loss_cross_entropy. Exit status 0 on success, 1 with a message on stderr
 * otherwise. */
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nograd/data.h"
#include "nograd/error.h"
#include "nograd/nn.h"
#include "nograd/loss.h"

static int fail(const char *what, int st) {
  fprintf(stderr, "nn_probe: %s: %s%s%s\n", what, ng_strerror(st), *ng_errmsg() ? ": " : "", ng_errmsg());
  return 1;
}

/* Reads a whole dataset as the given memory type into a malloc'ed buffer; returns rank and dims. */
static void *read_all(hid_t file, const char *name, hid_t mtype, size_t esize, int *rank, hsize_t dims[8]) {
  hid_t d = H5Dopen2(file, name, H5P_DEFAULT);
  if (d < 0) return NULL;
  hid_t s = H5Dget_space(d);
  *rank = H5Sget_simple_extent_ndims(s);
  void *buf = NULL;
  if (*rank >= 1 && *rank <= 8) {
    H5Sget_simple_extent_dims(s, dims, NULL);
    size_t n = 1;
    for (int i = 0; i < *rank; i++)
      n *= (size_t)dims[i];
    buf = malloc(n ? n * esize : 1);
    if (buf && H5Dread(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0) {
      free(buf);
      buf = NULL;
    }
  }
  H5Sclose(s);
  H5Dclose(d);
  return buf;
}

static int write_f32(hid_t file, const char *name, const float *v, int rank, const hsize_t *dims) {
  hid_t s = H5Screate_simple(rank, dims, NULL);
  hid_t d = H5Dcreate2(file, name, H5T_IEEE_F32LE, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  int bad = d < 0 || H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) < 0;
  if (d >= 0) H5Dclose(d);
  H5Sclose(s);
  return bad;
}

static void print_model(const ng_model *m) {
  printf("nparams %zu\ninput %zu\noutput %zu\n", ng_model_nparams(m), ng_model_input_size(m),
         ng_model_output_size(m));
  for (size_t i = 0; i < ng_model_ntensors(m); i++) {
    const char *name = NULL;
    size_t off = 0, ndim = 0, shape[4] = {0, 0, 0, 0};
    if (ng_model_tensor(m, i, &name, &off, &ndim, shape) != 0) {
      printf("tensor ? error\n");
      continue;
    }
    printf("tensor %s %zu %zu %zu %zu %zu %zu\n", name, off, ndim, shape[0], shape[1], shape[2], shape[3]);
  }
  fflush(stdout);
}

/* The summed cross-entropy and dlogits = softmax - onehot, in double, when loss.h is not there yet. */
static int run(const char *mode, const char *model_path, const char *data_path, const char *out_path) {
  int backward = strcmp(mode, "backward") == 0;
  ng_model *m = NULL;
  int st = ng_model_read(model_path, &m);
  if (st) return fail(model_path, st);
  print_model(m);

  int rc = 1, rank = 0, yrank = 0;
  hsize_t dims[8], ydims[8];
  float *x = NULL, *dlogits = NULL, *grad = NULL;
  int32_t *y = NULL;
  ng_nn_work *w = NULL;
  hid_t in = H5Fopen(data_path, H5F_ACC_RDONLY, H5P_DEFAULT), out = -1;
  if (in < 0) {
    fprintf(stderr, "nn_probe: cannot open %s\n", data_path);
    goto done;
  }
  x = read_all(in, "x", H5T_NATIVE_FLOAT, sizeof(float), &rank, dims);
  if (!x) {
    fprintf(stderr, "nn_probe: %s: cannot read /x\n", data_path);
    goto done;
  }
  size_t batch = (size_t)dims[0], per = 1;
  for (int i = 1; i < rank; i++)
    per *= (size_t)dims[i];
  if (per != ng_model_input_size(m)) {
    fprintf(stderr, "nn_probe: %s: /x has %zu floats an example, the model takes %zu\n", data_path, per,
            ng_model_input_size(m));
    goto done;
  }
  size_t classes = ng_model_output_size(m);
  if (backward) {
    y = read_all(in, "y", H5T_NATIVE_INT32, sizeof(int32_t), &yrank, ydims);
    if (!y || yrank != 1 || ydims[0] != batch) {
      fprintf(stderr, "nn_probe: %s: cannot read /y as %zu int32 labels\n", data_path, batch);
      goto done;
    }
    for (size_t b = 0; b < batch; b++)
      if (y[b] < 0 || (size_t)y[b] >= classes) {
        fprintf(stderr, "nn_probe: %s: label %d of row %zu is not below %zu\n", data_path, y[b], b, classes);
        goto done;
      }
  }

  st = ng_nn_work_create(m, batch, backward, &w);
  if (st) {
    rc = fail("ng_nn_work_create", st);
    goto done;
  }
  const float *logits = NULL;
  st = ng_nn_forward(m, ng_model_params(m), w, x, batch, &logits);
  if (st) {
    rc = fail("ng_nn_forward", st);
    goto done;
  }
  out = H5Fcreate(out_path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  hsize_t ldims[2] = {batch, classes};
  if (out < 0 || write_f32(out, "logits", logits, 2, ldims)) {
    fprintf(stderr, "nn_probe: cannot write %s\n", out_path);
    goto done;
  }
  if (backward) {
    size_t n = ng_model_nparams(m);
    dlogits = malloc(batch * classes * sizeof(float) + 1);
    grad = calloc(n + 1, sizeof(float));
    if (!dlogits || !grad) goto done;
    double loss = ng_loss_cross_entropy(logits, y, batch, classes, dlogits);
    st = ng_nn_backward(m, ng_model_params(m), w, dlogits, grad);
    if (st) {
      rc = fail("ng_nn_backward", st);
      goto done;
    }
    hsize_t gdims[1] = {n};
    hid_t s = H5Screate(H5S_SCALAR);
    hid_t d = H5Dcreate2(out, "loss", H5T_IEEE_F64LE, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    int bad = d < 0 || H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, &loss) < 0;
    if (d >= 0) H5Dclose(d);
    H5Sclose(s);
    if (bad || write_f32(out, "dlogits", dlogits, 2, ldims) || write_f32(out, "grad", grad, 1, gdims)) {
      fprintf(stderr, "nn_probe: cannot write %s\n", out_path);
      goto done;
    }
  }
  rc = 0;
done:
  if (out >= 0) H5Fclose(out);
  if (in >= 0) H5Fclose(in);
  free(x);
  free(y);
  free(dlogits);
  free(grad);
  ng_nn_work_destroy(&w);
  ng_model_destroy(&m);
  return rc;
}

static int init(const char *spec_path, const char *seed, const char *out_path) {
  FILE *f = fopen(spec_path, "rb");
  if (!f) {
    fprintf(stderr, "nn_probe: cannot open %s\n", spec_path);
    return 1;
  }
  char text[1 << 16];
  size_t len = fread(text, 1, sizeof text - 1, f);
  fclose(f);
  text[len] = '\0';
  ng_model *m = NULL;
  int st = ng_model_from_spec(text, &m);
  if (st) return fail(spec_path, st);
  ng_model_init(m, strtoull(seed, NULL, 10));
  st = ng_model_write(m, out_path);
  ng_model_destroy(&m);
  return st ? fail(out_path, st) : 0;
}

static int data(const char *path) {
  ng_dataset *ds = NULL;
  int st = ng_dataset_open(path, &ds);
  if (st) return fail(path, st);
  const ng_data_info *in = ng_dataset_info(ds);
  printf("n %zu d %zu xrank %d xdims %zu %zu %zu t %zu classes %lld\nname %s\ndomain %s\n", in->n, in->d,
         in->xrank, in->xdims[0], in->xrank > 1 ? in->xdims[1] : 0, in->xrank > 1 ? in->xdims[2] : 0, in->t,
         (long long)in->classes, in->name, in->domain);
  float *x = malloc(in->d * sizeof(float) + 4), *yt = malloc((in->t + 1) * sizeof(float));
  int32_t label = 0;
  st = x && yt ? ng_dataset_read_rows(ds, 0, 1, x, in->t ? (void *)yt : (void *)&label) : NG_ENOMEM;
  if (!st) printf("y0 %.9g x0 %.9g\n", in->t ? (double)yt[0] : (double)label, (double)x[0]);
  free(x);
  free(yt);
  ng_dataset_close(&ds);
  return st ? fail(path, st) : 0;
}

int main(int argc, char **argv) {
  if (argc == 5 && (strcmp(argv[1], "forward") == 0 || strcmp(argv[1], "backward") == 0))
    return run(argv[1], argv[2], argv[3], argv[4]);
  if (argc == 5 && strcmp(argv[1], "init") == 0) return init(argv[2], argv[3], argv[4]);
  if (argc == 3 && strcmp(argv[1], "data") == 0) return data(argv[2]);
  fprintf(stderr, "usage: nn_probe forward|backward MODEL DATA OUT | init SPEC SEED OUT_MODEL | data DATA\n");
  return 2;
}
