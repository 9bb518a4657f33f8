// Writes the fuzzer's seed corpus into the directory given: small valid safetensors files with
// every dtype, rank 0, zero-size tensors, metadata and a header order unlike the data order.
#include <cstdio>
#include <fstream>
#include <string>

#include "core/safetensors.hpp"

using namespace xgrad;

namespace {

void write(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

std::string le64(std::uint64_t n) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: fuzz_seeds DIR\n");
    return 2;
  }
  const std::string dir = argv[1];
  write(dir + "/empty.safetensors", serialize_safetensors({}));
  write(dir + "/one.safetensors", serialize_safetensors({{"w", tensor({{1, 2}, {3, 4}})}}));
  write(dir + "/mixed.safetensors",
        serialize_safetensors({{"weight", tensor({0.5, -1.5, 2.0})},
                               {"empty", zeros({0, 3})},
                               {"bias", tensor({1.0, 2.0}, f64)},
                               {"step", scalar(7, i64)},
                               {"ids", tensor({3, 1, 4, 1}, i64)},
                               {"nothing", zeros({2, 0}, f64)}}));
  write(dir + "/lstm_like.safetensors",
        serialize_safetensors({{"rnn.weight_ih_l0", ones({8, 3})},
                               {"rnn.weight_hh_l0", ones({8, 2})},
                               {"rnn.bias_ih_l0", zeros({8})},
                               {"rnn.bias_hh_l0", zeros({8})}}));
  // as another writer might: __metadata__ first, header order unlike data order
  const std::string header = R"({"__metadata__":{"format":"pt"},"y":{"dtype":"I64","shape":[1],"data_offsets":[8,16]},)"
                             R"("x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  write(dir + "/other_writer.safetensors", le64(header.size()) + header + std::string(16, '\x01'));
  return 0;
}
