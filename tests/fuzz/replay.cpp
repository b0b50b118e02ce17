// replay.cpp -- main() of a fuzz target built without libFuzzer (any compiler): runs the target on
// every file given (or every file in a directory given), so the committed corpora and the issue-11
// reproducers run as ordinary ctests; `--write-seeds DIR` writes the target's named seeds.
#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <fstream>
#include <iterator>
#include <string>

#include "fuzz_common.hpp"

namespace {

void collect(const std::string &path, std::vector<std::string> &files) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) {
    std::fprintf(stderr, "replay: cannot read %s\n", path.c_str());
    std::exit(2);
  }
  if (!S_ISDIR(st.st_mode)) {
    files.push_back(path);
    return;
  }
  DIR *d = opendir(path.c_str());
  std::vector<std::string> names;
  while (dirent *e = d ? readdir(d) : nullptr)
    if (e->d_name[0] != '.') names.push_back(e->d_name);
  if (d) closedir(d);
  std::sort(names.begin(), names.end());
  for (const std::string &n : names) collect(path + "/" + n, files);
}

}  // namespace

int main(int argc, char **argv) {
  if (argc == 4 && std::string(argv[1]) == "--write-seeds") {
    for (const pa_fuzz::Seed &s : pa_fuzz::seeds()) {
      const bool finding = std::string(s.name).rfind("issue11-", 0) == 0;
      const std::string path = std::string(argv[finding ? 3 : 2]) + "/" + s.name;
      std::ofstream f(path, std::ios::binary);
      f.write(reinterpret_cast<const char *>(s.bytes.data()), std::streamsize(s.bytes.size()));
      if (!f) {
        std::fprintf(stderr, "replay: cannot write %s\n", path.c_str());
        return 2;
      }
    }
    return 0;
  }
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s FILE|DIR...   or   %s --write-seeds CORPUS_DIR REGRESSIONS_DIR\n", argv[0], argv[0]);
    return 2;
  }
  std::vector<std::string> files;
  for (int i = 1; i < argc; ++i) collect(argv[i], files);
  if (files.empty()) {
    std::fprintf(stderr, "replay: no input files\n");
    return 2;
  }
  for (const std::string &path : files) {
    std::ifstream f(path, std::ios::binary);
    const std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(f)),
                                     std::istreambuf_iterator<char>());
    std::printf("%s (%zu bytes)\n", path.c_str(), bytes.size());
    std::fflush(stdout);
    LLVMFuzzerTestOneInput(bytes.data(), bytes.size());
  }
  std::printf("%zu inputs passed\n", files.size());
  return 0;
}
