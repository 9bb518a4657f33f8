// Hostile checkpoint files through the path users take: Module::load(path). A corpus of corrupt
// safetensors files is generated from a valid checkpoint (every truncation, seeded bit flips,
// broken header lengths, JSON, offsets, shapes, dtypes, names). Each must be rejected with an
// xgrad::Error naming the file and the problem, and leave the model bit-identical. The parse
// rules themselves are tested in test_safetensors.cpp; this is the file + model contract.
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "testing.hpp"

using namespace xgrad;
using namespace xgrad::nn;
using namespace xgrad::testing;

namespace {

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

/// The model the files are loaded into: an LSTM and a head (f32 parameters) and an i64 buffer.
/// state_dict: step [], lstm.weight_ih_l0 [16, 3], lstm.weight_hh_l0 [16, 4], lstm.bias_ih_l0 [16],
/// lstm.bias_hh_l0 [16], head.weight [2, 4], head.bias [2] (head.bias last in the data).
struct Model : Module {
  std::shared_ptr<LSTM> lstm;
  std::shared_ptr<Linear> head;
  Tensor step;
  explicit Model(std::uint64_t seed) {
    manual_seed(seed);
    lstm = register_module("lstm", std::make_shared<LSTM>(3, 4));
    head = register_module("head", std::make_shared<Linear>(4, 2));
    step = register_buffer("step", scalar(static_cast<double>(seed), i64));
  }
  std::string type_name() const override { return "Model"; }
};

/// Every entry of the state_dict as name, dtype, shape and raw bytes: equal means bit-identical.
std::vector<std::string> snapshot(const Module& m) {
  std::vector<std::string> out;
  for (const auto& [name, t] : m.state_dict()) {
    const char* p = static_cast<const char*>(t.impl().storage->data()) + t.impl().offset * dtype_size(t.dtype());
    out.push_back(fmt::format("{} {} {} ", name, dtype_name(t.dtype()), t.shape()) +
                  std::string(p, static_cast<std::size_t>(t.numel()) * dtype_size(t.dtype())));
  }
  return out;
}

std::string le64(std::uint64_t n) {
  std::string out(8, '\0');
  std::memcpy(out.data(), &n, 8);
  return out;
}

/// Where the data of a file starts: after the 8-byte length and the header.
std::uint64_t data_start_of(const std::string& file) {
  std::uint64_t n = 0;
  std::memcpy(&n, file.data(), 8);
  return 8 + n;
}

/// A valid checkpoint split into its header text and its data bytes, to build variants from.
struct Parts {
  std::string header, data;
  explicit Parts(const std::string& file) {
    std::uint64_t n = 0;
    std::memcpy(&n, file.data(), 8);
    header = file.substr(8, n);
    data = file.substr(8 + n);
  }
  std::string file() const { return le64(header.size()) + header + data; }
  /// The file with `from` replaced by `to` in the header text (which must contain it).
  std::string replaced(const std::string& from, const std::string& to) const {
    const auto at = header.find(from);
    REQUIRE_MESSAGE(at != std::string::npos, from);
    return le64(header.size() - from.size() + to.size()) + std::string(header).replace(at, from.size(), to) + data;
  }
  /// The file with its header edited as JSON (and `extra` bytes of data appended).
  template <class F>
  std::string edited(F&& edit, std::size_t extra = 0) const {
    json h = json::parse(header);
    edit(h);
    const std::string text = h.dump();
    return le64(text.size()) + text + data + std::string(extra, '\0');
  }
};

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  REQUIRE(out.good());
}

/// Writes `bytes` to `path` and loads them into `model`. Returns the error message, "" when the
/// file loaded. A rejection must name the file and leave the model exactly as it was.
std::string try_load(Model& model, const std::string& path, const std::string& bytes) {
  write_file(path, bytes);
  const auto before = snapshot(model);
  std::string message;
  try {
    model.load(path);
  } catch (const Error& e) {
    message = e.what();
    if (message.empty()) message = "(empty message)";
    CHECK_MESSAGE(message.find(path) != std::string::npos, message);
    CHECK_MESSAGE(snapshot(model) == before, message);
  }
  return message;
}

}  // namespace

TEST_CASE("hostile files: a corpus of corrupt checkpoints is rejected, naming the file, the model untouched") {
  TempDir dir("hostile");
  const std::string path = (dir.path / "hostile.safetensors").string();
  const Model source(11);  // the checkpoint's values differ from the target's, so a load would show
  Model model(22);
  const auto original = snapshot(model);
  const std::string valid = serialize_safetensors(source.state_dict());
  const Parts parts(valid);
  const std::uint64_t n = parts.header.size();
  REQUIRE(parts.data.size() == 4 * (48 + 64 + 16 + 16 + 8 + 2) + 8);

  struct Case {
    std::string what, bytes, pattern;  // pattern: a regex the message must match
  };
  const auto kMax = kMaxSafetensorsHeader;
  const std::string rest = valid.substr(8);
  auto entry = [](const std::string& dtype, const std::string& shape, const std::string& offsets) {
    return json::parse(R"({"dtype":)" + dtype + R"(,"shape":)" + shape + R"(,"data_offsets":)" + offsets + "}");
  };
  auto set = [](const std::string& name, json value) { return [=](json& h) { h[name] = value; }; };
  // where head.bias, the last tensor in the data, lies: "[616,624]"
  const json original_header = json::parse(parts.header);
  const std::uint64_t bias_begin = original_header["head.bias"]["data_offsets"][0];
  const std::uint64_t bias_end = original_header["head.bias"]["data_offsets"][1];
  REQUIRE(bias_end == parts.data.size());
  const std::string bias_at = fmt::format("[{},{}]", bias_begin, bias_end);
  auto head_bias = [&](const std::string& dtype, const std::string& shape, const std::string& offsets) {
    return set("head.bias", entry(dtype, shape, offsets));
  };
  auto saved = [](NamedTensors tensors) { return serialize_safetensors(tensors); };
  auto state_with = [&](const std::string& name, Tensor t) {  // the source's state with one entry replaced
    NamedTensors s = source.state_dict();
    for (auto& [k, v] : s)
      if (k == name) v = t;
    return s;
  };
  NamedTensors missing = source.state_dict(), extra = source.state_dict();
  std::erase_if(missing, [](const auto& entry) { return entry.first == "head.bias"; });
  extra.emplace_back("head.extra", ones({2}));
  // head.bias moved 4 bytes on, past 4 bytes that no tensor claims
  const std::string holed =
      parts.edited(head_bias("\"F32\"", "[2]", fmt::format("[{},{}]", bias_begin + 4, bias_end + 4)), 4);
  const std::string deep = std::string(100'000, '[') + std::string(100'000, ']');

  const std::vector<Case> corpus = {
      // the 8-byte header length
      {"header length 0", le64(0) + rest, "header length at byte 0 is 0 "},
      {"header length 7", le64(7) + rest, R"(the header \(bytes 8 to 15\) is not valid JSON)"},
      {"header length 2^64-1", le64(std::numeric_limits<std::uint64_t>::max()) + rest,
       "header length at byte 0 is 18446744073709551615, over the 104857600-byte limit"},
      {"header length past the end", le64(valid.size() - 7) + rest,
       fmt::format("header length at byte 0 is {}, past the end of the {}-byte file", valid.size() - 7, valid.size())},
      {"header over 100 MB declared", le64(kMax + 1) + rest, fmt::format("is {}, over the {}-byte limit", kMax + 1, kMax)},
      {"header one byte longer", le64(n + 1) + rest, "is not valid JSON"},
      {"header cut before its closing brace", le64(parts.header.rfind('}')) + rest, "is not valid JSON"},
      // JSON that is not JSON, or not UTF-8
      {"a name with byte 0xff", parts.replaced("head.bias", "head.\xff"), "is not valid JSON.*UTF-8"},
      {"a name with a bare lead byte", parts.replaced("head.bias", "head.\xc3"), "is not valid JSON.*UTF-8"},
      {"a name with an overlong '/'", parts.replaced("head.bias", "head\xc0\xaf"), "is not valid JSON.*UTF-8"},
      {"a name with a UTF-16 surrogate", parts.replaced("head.bias", "head\xed\xa0\x80"), "is not valid JSON.*UTF-8"},
      {"a dtype with a stray continuation byte", parts.replaced("\"F32\"", "\"F3\x80\""), "is not valid JSON.*UTF-8"},
      {"a byte 0x80 between tokens", parts.replaced("{", "{\x80"), "is not valid JSON"},
      {"a NUL byte between tokens", parts.replaced("{", std::string("{\0", 2)), "is not valid JSON"},
      {"an escaped lone surrogate", parts.replaced("head.bias", "head\\ud800"), "is not valid JSON.*surrogate"},
      {"a trailing comma", parts.replaced("}}", "},}"), "is not valid JSON"},
      {"NaN as a dimension", parts.replaced("[2]", "[NaN]"), "is not valid JSON"},
      {"an unterminated string", parts.replaced("\"head.bias\"", "\"head.bias"), "is not valid JSON"},
      {"a header of spaces", le64(n) + std::string(n, ' ') + parts.data, "is not valid JSON"},
      {"a JSON array", le64(n) + "[" + std::string(n - 2, ' ') + "]" + parts.data, "the header at byte 8 is not a JSON object"},
      {"a JSON string", le64(n) + "\"" + std::string(n - 2, ' ') + "\"" + parts.data, "is not a JSON object"},
      {"shape nested 100 000 deep", parts.replaced("[2]", deep), R"(the header \(bytes 8 to \d+\) nests arrays and objects more than 16 deep)"},
      {"data_offsets nested 100 000 deep", parts.replaced(bias_at, deep), "nests arrays and objects more than 16 deep"},
      {"shape nested 16 deep", parts.replaced("[2]", std::string(14, '[') + "2" + std::string(14, ']')),
       "tensor 'head.bias' .*shape entry that is not a non-negative integer: an array"},
      // names given twice
      {"a tensor named twice", parts.replaced("{", R"({"step":{"dtype":"I64","shape":[],"data_offsets":[0,8]},)"),
       "the header names 'step' twice"},
      {"a field given twice", parts.replaced("\"dtype\":\"F32\"", R"("dtype":"F32","dtype":"F32")"), "twice"},
      // data_offsets
      {"a hole before the last tensor", holed,
       fmt::format(R"(a hole of unclaimed bytes {} to {} before tensor 'head\.bias')", data_start_of(holed) + bias_begin,
                   data_start_of(holed) + bias_begin + 4)},
      {"two tensors overlapping", parts.edited(head_bias("\"F32\"", "[2]", fmt::format("[{},{}]", bias_begin - 4, bias_end - 4))),
       R"(tensor 'head.bias' \(bytes \d+ to \d+\) overlaps the tensor before it)"},
      {"two tensors on the same bytes",
       parts.edited(set("lstm.bias_hh_l0", entry("\"F32\"", "[16]", original_header["lstm.bias_ih_l0"]["data_offsets"].dump()))),
       "overlaps the tensor before it"},
      {"end before begin", parts.edited(head_bias("\"F32\"", "[2]", fmt::format("[{},{}]", bias_end, bias_begin))),
       fmt::format(R"(tensor 'head.bias' .*data_offsets \[{}, {}\] with end before begin)", bias_end, bias_begin)},
      {"offsets past the end", parts.edited(head_bias("\"F32\"", "[2]", "[18446744073709551608,18446744073709551615]")),
       "past the end of the data"},
      {"negative offsets", parts.edited(head_bias("\"F32\"", "[2]", "[-8,0]")), "needs data_offsets"},
      {"no data_offsets", parts.edited([](json& h) { h["head.bias"].erase("data_offsets"); }), "needs data_offsets"},
      {"bytes after the last tensor", valid + std::string(8, '\0'), "at the end belong to no tensor"},
      // shapes and dtypes
      {"shape product overflows 64 bits", parts.edited(head_bias("\"F32\"", "[4294967296,4294967296,2]", bias_at)),
       "tensor 'head.bias' .*element count overflows"},
      {"a dimension of 2^63", parts.edited(head_bias("\"F32\"", "[9223372036854775808]", bias_at)), "overflows"},
      {"bytes overflow 64 bits", parts.edited(head_bias("\"F64\"", "[2305843009213693952,2]", bias_at)),
       "needs too many bytes"},
      {"a dimension of 2^64", parts.replaced("[2]", "[18446744073709551616]"),
       "not a non-negative integer"},
      {"a dimension of 1e400", parts.replaced("[2]", "[1e400]"), "is not valid JSON: .*number overflow"},
      {"a negative dimension", parts.edited(head_bias("\"F32\"", "[-2]", bias_at)), "not a non-negative integer: -2"},
      {"shape disagrees with the bytes", parts.edited(head_bias("\"F32\"", "[3]", bias_at)),
       fmt::format(R"(F32 \[3\] needs 12 bytes but data_offsets \[{}, {}\] hold 8)", bias_begin, bias_end)},
      {"unknown dtype F16", parts.edited(head_bias("\"F16\"", "[4]", bias_at)), "unsupported dtype 'F16'"},
      {"unknown dtype BF16", parts.edited(head_bias("\"BF16\"", "[4]", bias_at)), "unsupported dtype 'BF16'"},
      {"empty dtype", parts.edited(head_bias("\"\"", "[2]", bias_at)), "unsupported dtype ''"},
      {"dtype not a string", parts.edited(head_bias("4", "[2]", bias_at)), "has no dtype"},
      // valid files that do not fit the model: the loader's strict contract
      {"a missing name", saved(missing), R"(^load_state_dict into Model: missing 'head\.bias' \[2\] \(from .*\)$)"},
      {"an extra name", saved(extra), R"(unexpected 'head\.extra' \[2\])"},
      {"a renamed tensor", parts.replaced("\"head.bias\"", "\"head.Bias\""),
       R"(missing 'head\.bias' \[2\]; unexpected 'head\.Bias' \[2\])"},
      {"a transposed weight", saved(state_with("head.weight", zeros({4, 2}))),
       R"('head\.weight' has shape \[4, 2\], the module expects \[2, 4\])"},
      {"a scalar for a vector", saved(state_with("head.bias", scalar(1))), R"('head\.bias' has shape \[\], the module expects \[2\])"},
      {"integers for a float parameter", saved(state_with("head.bias", zeros({2}, i64))),
       "'head.bias' is i64, the module expects f32"},
      {"floats for an integer buffer", saved(state_with("step", scalar(3, f64))), "'step' is f64, the module expects i64"},
      {"an empty checkpoint", saved({}), R"(missing 'step' \[\]; missing 'lstm\.weight_ih_l0' \[16, 3\]; .*missing 'head\.bias' \[2\])"},
      {"another model's checkpoint", saved(Linear(3, 2).state_dict()), "unexpected 'weight' \\[2, 3\\]"},
  };

  int rejected = 0;
  for (const Case& c : corpus) {
    const std::string message = try_load(model, path, c.bytes);
    INFO(c.what, "\nmessage: ", message);
    CHECK(!message.empty());
    CHECK(matches(message, c.pattern));
    rejected += !message.empty();
  }
  CHECK(rejected == static_cast<int>(corpus.size()));
  MESSAGE(rejected, " of ", corpus.size(), " crafted files rejected, the model untouched");

  // files that are not files
  CHECK(matches(error_of([&] { model.load(dir.path.string()); }), "load_safetensors: .*xgrad_test_hostile_.* is not a regular file"));
  CHECK(matches(error_of([&] { model.load(path + ".missing"); }), R"(load_safetensors: cannot open .*hostile\.safetensors\.missing)"));
  CHECK(snapshot(model) == original);

  // what the contract accepts: metadata, header order unlike data order, f64 values for f32 parameters
  CHECK(try_load(model, path, parts.edited([](json& h) { h["__metadata__"] = {{"format", "pt"}}; })) == "");
  CHECK(snapshot(model) == snapshot(source));
  Model f64_source(33);
  f64_source.to(f64);
  CHECK(try_load(model, path, saved(f64_source.state_dict())) == "");
  check_close(model.head->weight.to(f64), f64_source.head->weight, 1e-7);
  CHECK(model.head->weight.dtype() == f32);
  CHECK(try_load(model, path, parts.edited([](json& h) {
          std::vector<std::string> keys;
          for (const auto& [k, v] : h.items()) keys.insert(keys.begin(), k);
          json reversed = json::object();
          for (const auto& k : keys) reversed[k] = h[k];
          h = reversed;
        })) == "");
  CHECK(snapshot(model) == snapshot(source));
}

TEST_CASE("hostile files: every truncation of a checkpoint is rejected; the model untouched") {
  TempDir dir("hostile");
  const std::string path = (dir.path / "cut.safetensors").string();
  Model model(22);
  const auto original = snapshot(model);
  const std::string valid = serialize_safetensors(Model(11).state_dict());
  int rejected = 0;
  for (std::size_t len = 0; len < valid.size(); ++len) {
    INFO("prefix of ", len, " bytes");
    const std::string message = try_load(model, path, valid.substr(0, len));
    CHECK(matches(message, "^safetensors: .*cut\\.safetensors: "));
    rejected += !message.empty();
  }
  CHECK(rejected == static_cast<int>(valid.size()));
  MESSAGE("truncations: all ", rejected, " prefixes of the ", valid.size(), "-byte file rejected");
  CHECK(snapshot(model) == original);
  CHECK(try_load(model, path, valid) == "");  // and the whole file loads
  CHECK(snapshot(model) == snapshot(Model(11)));
}

TEST_CASE("hostile files: 1 000 random bit flips are rejected in the header and loaded in the data") {
  TempDir dir("hostile");
  const std::string path = (dir.path / "flipped.safetensors").string();
  const Model source(11);
  Model model(22);
  const auto original = snapshot(model);
  const std::string valid = serialize_safetensors(source.state_dict());
  std::uint64_t n = 0;
  std::memcpy(&n, valid.data(), 8);
  const std::size_t data_start = 8 + n;

  // A flip in the length or the header must be caught (every byte there is structure: names,
  // digits, brackets, padding); a flip in the data is a different but valid file.
  std::mt19937_64 rng(7);
  int rejected = 0, loaded = 0, header_flips = 0;
  for (int trial = 0; trial < 1000; ++trial) {
    const std::size_t bit = rng() % (valid.size() * 8);
    std::string bytes = valid;
    bytes[bit / 8] = static_cast<char>(bytes[bit / 8] ^ (1 << (bit % 8)));
    const bool in_header = bit / 8 < data_start;
    header_flips += in_header;
    INFO("trial ", trial, ": bit ", bit % 8, " of byte ", bit / 8, " (data starts at ", data_start, ")");
    const std::string message = try_load(model, path, bytes);
    if (!message.empty()) {
      ++rejected;
      CHECK(in_header);
      CHECK(snapshot(model) == original);
      continue;
    }
    ++loaded;
    CHECK_FALSE(in_header);
    // the model now holds exactly the flipped file's values
    Model expected(11);
    expected.load_state_dict(parse_safetensors(bytes, "flipped"));
    CHECK(snapshot(model) == snapshot(expected));
    CHECK(snapshot(model) != snapshot(source));
    model.load_state_dict(Model(22).state_dict());  // back to the original values for the next trial
    REQUIRE(snapshot(model) == original);
  }
  MESSAGE("bit flips: ", rejected, " rejected (", header_flips, " in the length or header), ", loaded, " loaded (in the data)");
  CHECK(rejected + loaded == 1000);
  CHECK(rejected == header_flips);
  CHECK(rejected > 100);  // the header is a good share of this small file
}
