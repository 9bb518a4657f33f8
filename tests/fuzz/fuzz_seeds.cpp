// Writes the fuzzers' seed corpora into DIR/<target>/:
//   safetensors: small valid files with every dtype, rank 0, zero-size tensors, metadata and a
//                header order unlike the data order;
//   state_dict:  the fuzzed model's and optimizer's own state, and near misses of it;
//   graph:       byte programs for fuzz_graph that build a few graphs of every op kind.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "xgrad/core/safetensors.hpp"
#include "fuzz_model.hpp"

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
  const std::string root = argv[1];
  for (const char* target : {"safetensors", "state_dict", "graph"}) std::filesystem::create_directories(root + "/" + target);
  std::string dir = root + "/safetensors";
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

  dir = root + "/state_dict";
  manual_seed(0);
  fuzz::Model model;
  const NamedTensors model_state = model.state_dict();
  write(dir + "/model.safetensors", serialize_safetensors(model_state));
  write(dir + "/optimizer.safetensors", serialize_safetensors(fuzz::stepped_adam(model).state_dict()));
  NamedTensors missing(model_state.begin() + 1, model_state.end());
  write(dir + "/model_missing_key.safetensors", serialize_safetensors(missing));
  NamedTensors as_f64;
  for (const auto& [name, t] : model_state) as_f64.emplace_back(name, t.to(f64));
  write(dir + "/model_f64.safetensors", serialize_safetensors(as_f64));

  // fuzz_graph programs: [leaf count, (rank, sizes, values)...] then (unary/binary choice, op, args)...
  dir = root + "/graph";
  const std::vector<std::string> programs = {
      std::string("\x00\x02\x02\x03\x50\x60\x70\x80\x90\xa0\x00\x03\x00\x0a", 14),
      std::string("\x01\x01\x03\x60\x70\x80\x01\x02\x70\x60\x01\x00\x00\x01\x02\x00\x10", 17),
      std::string("\x02\x02\x02\x02\x50\x60\x70\x80\x02\x02\x02\x90\xa0\xb0\xc0\x00\x01\x01\x06\x00\x00\x00", 22),
      std::string("\x00\x03\x01\x02\x03\x08\x02\x0a\x04\x01\x05\x00\x06\x00\x00\x10\x01", 17)};
  for (std::size_t i = 0; i < programs.size(); ++i) write(dir + "/program" + std::to_string(i), programs[i]);
  return 0;
}
