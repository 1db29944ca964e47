/* The option parser every command uses (src/cli/args.c, compiled into this harness): the input is a command
 * line, one argument per line, against a table with an option of every kind, bounds included; then the list
 * helpers (--x0's numbers). Whatever the words, the parser returns 0, 1 (--help) or 2 (one line naming the
 * option), and no value lands outside its bounds. */
#include "fuzz.h"

#include "cli/args.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *text = fuzz_text(data, size), *argv[66] = {"nograd", "fuzz"};
  int argc = 2;
  for (char *p = text; argc < 66;) {
    argv[argc++] = p;
    char *nl = strchr(p, '\n');
    if (!nl) break;
    *nl = '\0';
    p = nl + 1;
  }
  bool flag = false;
  const char *str = NULL;
  size_t sz = 0, pos = 1, capped = 5;
  int64_t i64 = 0;
  uint64_t u64 = 0;
  double d = 0, pd = 1;
  ng_arg_list list = {0};
  ng_arg table[] = {
      {"--flag", NG_ARG_FLAG, &flag, NULL, "a flag"},
      {"--string", NG_ARG_STRING, &str, "S", "a string"},
      {"--size", NG_ARG_SIZE, &sz, "N", "a size"},
      {"--posint", NG_ARG_POSINT, &pos, "N", "a positive integer"},
      {"--capped", NG_ARG_POSINT, &capped, "N", "at most 2^31-1", false, false, INT32_MAX},
      {"--int", NG_ARG_INT64, &i64, "I", "an integer"},
      {"--uint", NG_ARG_UINT64, &u64, "U", "an unsigned integer"},
      {"--double", NG_ARG_DOUBLE, &d, "D", "a number"},
      {"--pos", NG_ARG_POSDOUBLE, &pd, "D", "a positive number"},
      {"--list", NG_ARG_LIST, &list, "V", "repeatable"},
  };
  FILE *null = fopen("/dev/null", "w");
  if (!null) abort();
  int code =
      ng_args_parse("fuzz", "[options]", table, sizeof table / sizeof table[0], argc, argv, 2, null, null);
  if (code < 0 || code > 2) abort();
  if (code == 0 && (pos < 1 || capped < 1 || capped > INT32_MAX || !(pd > 0) || list.count > 64)) abort();
  double v[8];
  size_t count = 0;
  for (int i = 2; i < argc; i++) {
    ng_args_doubles(argv[i], v, 8, &count);
    ng_args_vector(argv[i], 8, v);
  }
  char line[256], joined[64];
  ng_args_command_line(argc, argv, line, sizeof line);
  const char *names[] = {"a", "bb", argv[argc - 1], NULL};
  ng_args_join(names, joined, sizeof joined);
  fclose(null);
  free(text);
  return 0;
}
