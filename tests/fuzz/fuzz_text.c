/* The delimited-text importer (ng_import_text, src/data/import.c): the first bytes choose the options
 * (delimiter, header, label column, missing-value token and policy, targets, label map), the rest is the
 * file. Any file either becomes a dataset whose sizes hold, or is refused with a message. */
#include "fuzz.h"

#include "nograd/data.h"
#include "nograd/error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_bytes b = {data, size};
  static const char delims[] = {',', ';', ' ', '\t', '|', ':'};
  static const char *const labels[] = {NULL,
                                       "1",
                                       "-1",
                                       "2",
                                       "-2",
                                       "0",
                                       "-9223372036854775808",
                                       "9223372036854775807",
                                       "y",
                                       "quality",
                                       "",
                                       "18446744073709551616"};
  static const char *const missing[] = {NULL, "?", "NA", "", "nan"};
  static const char *const maps[] = {NULL,      "gt:0",      "ge:6",    "add:-1",
                                     "1=0,2=1", "add:1e308", "0=1e300", "lt:nan"};
  unsigned o = fuzz_byte(&b), l = fuzz_byte(&b), mp = fuzz_byte(&b);
  ng_text_options opt = {.delim = delims[o % sizeof delims],
                         .header = (o >> 3) & 1,
                         .label = labels[l % (sizeof labels / sizeof labels[0])],
                         .missing = missing[(l >> 4) % (sizeof missing / sizeof missing[0])],
                         .policy = (ng_missing_policy)((o >> 4) % 4),
                         .targets = (o >> 6) & 1};
  ng_label_map *map = NULL;
  const char *m = maps[mp % (sizeof maps / sizeof maps[0])];
  if (m && ng_label_map_parse(m, &map) != NG_OK) map = NULL;
  const char *path = fuzz_file("text.csv", b.p, b.left);
  ng_data D;
  if (ng_import_text(path, &opt, map, &D) == NG_OK) {
    if (D.n == 0 || D.d == 0 || !D.x) abort(); /* a dataset has rows and features */
    ng_data_free(&D);
  }
  ng_label_map_destroy(&map);
  return 0;
}
