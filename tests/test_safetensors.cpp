// core/safetensors: round trips, the on-disk layout of the spec, atomic saves, and the rejection
// of every kind of corrupt file with an error naming the source and the problem.
#include <bit>
#include <csignal>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>

#include <sys/resource.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "testing.hpp"

using namespace xgrad;
using namespace xgrad::testing;

namespace {

namespace fs = std::filesystem;

/// The raw bytes of a tensor's values.
std::string raw_bytes(const Tensor& t) {
  const char* p = static_cast<const char*>(t.impl().storage->data()) + t.impl().offset * dtype_size(t.dtype());
  return std::string(p, static_cast<std::size_t>(t.numel()) * dtype_size(t.dtype()));
}

/// Same names in the same order, same dtypes, shapes and bit patterns.
void check_identical(const NamedTensors& got, const NamedTensors& expected) {
  REQUIRE(got.size() == expected.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    INFO("entry ", i, ": ", expected[i].first);
    CHECK(got[i].first == expected[i].first);
    CHECK(got[i].second.dtype() == expected[i].second.dtype());
    CHECK(got[i].second.shape() == expected[i].second.shape());
    CHECK(raw_bytes(got[i].second) == raw_bytes(expected[i].second));
  }
}

/// Tensors covering every dtype, rank 0, zero sizes and awkward bit patterns, in non-alphabetical order.
NamedTensors sample_tensors() {
  Tensor w = tensor({{1.5, -0.0, 3.25}, {std::numeric_limits<double>::infinity(), 1e-40, -7}});  // 1e-40: f32 denormal
  w.data<float>()[1] = std::bit_cast<float>(0x7fc01234u);  // a NaN with a payload
  Tensor b = tensor({0.1, -std::numeric_limits<double>::denorm_min(), std::numeric_limits<double>::max()}, f64);
  b.data<double>()[0] = std::bit_cast<double>(0xfff8000000abcdefull);  // negative NaN with a payload
  Tensor ids = from_xarray(xt::xarray<std::int64_t>{std::numeric_limits<std::int64_t>::min(), -1, 0,
                                                    std::numeric_limits<std::int64_t>::max()});
  return {{"weight", w},
          {"empty", zeros({0, 5})},
          {"bias", b},
          {"step", scalar(42, i64)},
          {"alpha", scalar(-2.5, f64)},
          {"ids", ids},
          {"nothing", zeros({3, 0}, f64)},
          {"Zeta.last", scalar(1, f32)}};
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

/// An 8-byte little-endian length followed by `rest`.
std::string with_length(std::uint64_t n, const std::string& rest) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return out + rest;
}

/// A file whose header is `header` (its true length) followed by `data_bytes` zero bytes.
std::string file_of(const std::string& header, std::size_t data_bytes = 0) {
  return with_length(header.size(), header + std::string(data_bytes, '\0'));
}

std::string parse_error(const std::string& bytes) {
  return error_of([&] { parse_safetensors(bytes, "bad.st"); });
}

/// The error for a file made of `header` and `data_bytes` of data, matched against `pattern`.
void check_rejected(const std::string& header, std::size_t data_bytes, const std::string& pattern) {
  const std::string message = parse_error(file_of(header, data_bytes));
  INFO("header: ", header, "\nmessage: ", message);
  CHECK(matches(message, "^safetensors: bad\\.st: "));
  CHECK(matches(message, pattern));
}

}  // namespace

TEST_CASE("safetensors: serialize/parse round trip is bit-identical and keeps names and order") {
  const NamedTensors tensors = sample_tensors();
  const NamedTensors back = parse_safetensors(serialize_safetensors(tensors), "memory");
  check_identical(back, tensors);
  CHECK(back[3].second.dim() == 0);
  CHECK(back[3].second.item<std::int64_t>() == 42);
  CHECK(back[1].second.numel() == 0);
  // the loaded tensors own their data
  back[0].second.data<float>()[0] = 99;
  CHECK(tensors[0].second.data<float>()[0] == 1.5f);
  // nothing at all
  CHECK(parse_safetensors(serialize_safetensors({}), "memory").empty());
  CHECK(matches(error_of([] { serialize_safetensors({{"a", ones({1})}, {"a", ones({2})}}); }),
                "save_safetensors: the name 'a' appears twice"));
}

TEST_CASE("safetensors: adjacent zero-size tensors keep the order they were written in") {
  // Two empty tensors share the same data_offsets; only the writer's order can tell them apart.
  const NamedTensors tensors = {{"w", ones({2})}, {"z_second_name", zeros({0})}, {"a_first_name", zeros({0, 2}, f64)},
                                {"m", zeros({0}, i64)}, {"b", ones({1}, f64)}};
  check_identical(parse_safetensors(serialize_safetensors(tensors), "memory"), tensors);
}

TEST_CASE("safetensors: the on-disk layout follows the spec") {
  const NamedTensors tensors = {{"b", tensor({{1, 2, 3}, {4, 5, 6}})},
                                {"a", scalar(-3, i64)},
                                {"c", zeros({0}, f64)},
                                {"d", tensor({0.5, 0.25}, f64)}};
  const std::string bytes = serialize_safetensors(tensors);
  REQUIRE(bytes.size() >= 8);
  std::uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(bytes[i]);  // little-endian
  REQUIRE(8 + n <= bytes.size());
  CHECK((8 + n) % 8 == 0);  // the data starts 8-byte aligned
  const std::string header_text = bytes.substr(8, n);
  CHECK(header_text.front() == '{');
  CHECK(header_text.find_last_not_of(' ') == header_text.rfind('}'));  // padded with spaces only

  const auto header = nlohmann::json::parse(header_text);
  REQUIRE(header.is_object());
  CHECK(header.size() == 4);
  auto check_entry = [&](const char* name, const char* dtype, std::vector<std::int64_t> shape,
                         std::vector<std::uint64_t> offsets) {
    INFO(name);
    REQUIRE(header.contains(name));
    const auto& e = header[name];
    CHECK(e["dtype"] == dtype);
    CHECK(e["shape"].get<std::vector<std::int64_t>>() == shape);
    CHECK(e["data_offsets"].get<std::vector<std::uint64_t>>() == offsets);
  };
  check_entry("b", "F32", {2, 3}, {0, 24});
  check_entry("a", "I64", {}, {24, 32});
  check_entry("c", "F64", {0}, {32, 32});
  check_entry("d", "F64", {2}, {32, 48});
  REQUIRE(bytes.size() == 8 + n + 48);

  // the data: raw little-endian values in write order
  const char* data = bytes.data() + 8 + n;
  for (int i = 0; i < 6; ++i) {
    float v;
    std::memcpy(&v, data + 4 * i, 4);
    CHECK(v == static_cast<float>(i + 1));
  }
  std::int64_t a;
  std::memcpy(&a, data + 24, 8);
  CHECK(a == -3);
  CHECK(static_cast<unsigned char>(data[24]) == 0xfd);  // -3 little-endian: fd ff ff ...
  double d[2];
  std::memcpy(d, data + 32, 16);
  CHECK(d[0] == 0.5);
  CHECK(d[1] == 0.25);
}

TEST_CASE("safetensors: a hand-written file from another writer loads, __metadata__ ignored") {
  // The reference writer emits __metadata__ and may order the header differently from the data.
  const std::string header =
      R"({"__metadata__":{"format":"pt"},"y":{"dtype":"I64","shape":[1],"data_offsets":[8,16]},)"
      R"("x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  std::string data(16, '\0');
  const float xs[2] = {1.25f, -2.0f};
  const std::int64_t y = 7;
  std::memcpy(data.data(), xs, 8);
  std::memcpy(data.data() + 8, &y, 8);
  const NamedTensors t = parse_safetensors(with_length(header.size(), header + data), "other.st");
  REQUIRE(t.size() == 2);
  CHECK(t[0].first == "x");  // in data order
  check_values(t[0].second, {2}, {1.25, -2.0});
  CHECK(t[0].second.dtype() == f32);
  CHECK(t[1].first == "y");
  CHECK(t[1].second.to_vector<std::int64_t>() == std::vector<std::int64_t>{7});
}

TEST_CASE("safetensors: save and load files atomically") {
  TempDir dir("safetensors");
  const std::string path = (dir.path / "model.safetensors").string();
  const NamedTensors first = sample_tensors();
  auto files_in_dir = [&] { return std::distance(fs::directory_iterator(dir.path), fs::directory_iterator()); };
  save_safetensors(path, first);
  CHECK(fs::exists(path));
  CHECK(files_in_dir() == 1);  // no temporary file left behind
  CHECK(read_file(path) == serialize_safetensors(first));
  check_identical(load_safetensors(path), first);

  // saving over an existing file replaces it, leaving a single file
  const NamedTensors second = {{"only", tensor({1, 2}, f64)}};
  save_safetensors(path, second);
  check_identical(load_safetensors(path), second);
  CHECK(files_in_dir() == 1);

  // a save that cannot write all of its temporary file (here: over the file size limit) throws,
  // removes the temporary file and leaves the old file intact
  {
    rlimit old_limit{};
    REQUIRE(::getrlimit(RLIMIT_FSIZE, &old_limit) == 0);
    const auto old_handler = std::signal(SIGXFSZ, SIG_IGN);  // a failed write instead of a killed process
    rlimit small = old_limit;
    small.rlim_cur = 64;
    REQUIRE(::setrlimit(RLIMIT_FSIZE, &small) == 0);
    const std::string message = error_of([&] { save_safetensors(path, first); });
    ::setrlimit(RLIMIT_FSIZE, &old_limit);
    std::signal(SIGXFSZ, old_handler);
    CHECK(matches(message, R"(^save_safetensors: writing .*model\.safetensors\.tmp\.\d+\.\d+ failed: File too large)"));
  }
  check_identical(load_safetensors(path), second);
  CHECK(files_in_dir() == 1);

  const std::string missing_dir = (dir.path / "no_such_dir" / "m.safetensors").string();
  CHECK(matches(error_of([&] { save_safetensors(missing_dir, first); }), "save_safetensors: cannot open .*no_such_dir"));
  CHECK(matches(error_of([&] { load_safetensors(missing_dir); }), "load_safetensors: cannot open .*no_such_dir"));

  // errors from a corrupt file name the file
  std::string bytes = read_file(path);
  bytes.pop_back();
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
  CHECK(matches(error_of([&] { load_safetensors(path); }), R"(^safetensors: .*model\.safetensors: .*past the end)"));
}

TEST_CASE("safetensors: a bad header length is rejected") {
  CHECK(matches(parse_error(""), R"(^safetensors: bad\.st: 0 bytes is too short for the 8-byte header length)"));
  CHECK(matches(parse_error("abcdefg"), R"(^safetensors: bad\.st: 7 bytes is too short)"));
  CHECK(matches(parse_error(with_length(0, "{}")), R"(^safetensors: bad\.st: the header length at byte 0 is 0)"));
  CHECK(matches(parse_error(with_length(100, "{}")),
                R"(^safetensors: bad\.st: the header length at byte 0 is 100, past the end of the 10-byte file)"));
  CHECK(matches(parse_error(with_length(200'000'000, "{}")),
                R"(^safetensors: bad\.st: the header length at byte 0 is 200000000, over the 104857600-byte limit)"));
  CHECK(matches(parse_error(with_length(std::numeric_limits<std::uint64_t>::max(), "{}")),
                R"(header length at byte 0 is 18446744073709551615, over the)"));
  CHECK(matches(parse_error(with_length(3, "{}")), "past the end of the 10-byte file"));  // one short
}

TEST_CASE("safetensors: headers that are not a JSON object are rejected") {
  check_rejected(R"({"a": )", 0, R"(the header \(bytes 8 to 14\) is not valid JSON)");
  check_rejected(R"({"a":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},})", 0, "not valid JSON");
  check_rejected("{} trailing", 0, "not valid JSON");
  // bytes that are not UTF-8: a stray continuation, a bare lead byte, an overlong '/', a surrogate, 0xff
  for (std::string bad : {"\x80", "\xc3", "\xc0\xaf", "\xed\xa0\x80", "\xff"}) {
    check_rejected(R"({")" + bad + R"(":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}})", 0, "not valid JSON");
    check_rejected(R"({"a":{"dtype":"F32)" + bad + R"(","shape":[0],"data_offsets":[0,0]}})", 0, "not valid JSON");
  }
  for (std::string not_object : {"[1, 2]", "42", R"("text")", "null", "true"})
    check_rejected(not_object, 0, "the header at byte 8 is not a JSON object");
}

TEST_CASE("safetensors: duplicate tensor names are rejected") {
  check_rejected(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                 R"("a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                 8, "the header names 'a' twice");
  check_rejected(R"({"a":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},"b":{"dtype":"F32","shape":[0],)"
                 R"("data_offsets":[0,0]},"a":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}})",
                 0, "names 'a' twice");
  // a field given twice inside one tensor's entry is just as ambiguous (serde, the reference reader, refuses it)
  const std::string twice = parse_error(file_of(R"({"a":{"dtype":"F32","dtype":"I64","shape":[1],"data_offsets":[0,8]}})", 8));
  INFO(twice);
  CHECK(matches(twice, "^safetensors: bad\\.st: .*(twice|duplicate)"));
}

TEST_CASE("safetensors: bad dtypes and shapes are rejected") {
  auto entry = [](const std::string& dtype, const std::string& shape, const std::string& offsets) {
    return R"({"t":{"dtype":)" + dtype + R"(,"shape":)" + shape + R"(,"data_offsets":)" + offsets + "}}";
  };
  check_rejected(entry(R"("F16")", "[2]", "[0,4]"), 4, R"(tensor 't' .*unsupported dtype 'F16' \(xgrad reads F32, F64, I64\))");
  check_rejected(entry(R"("BF16")", "[2]", "[0,4]"), 4, "unsupported dtype 'BF16'");
  check_rejected(entry(R"("f32")", "[1]", "[0,4]"), 4, "unsupported dtype 'f32'");
  check_rejected(entry("32", "[1]", "[0,4]"), 4, "tensor 't' .*has no dtype");
  check_rejected(R"({"t":{"shape":[1],"data_offsets":[0,4]}})", 4, "tensor 't' .*has no dtype");
  check_rejected(R"({"t":[1,2]})", 0, "tensor 't' .*is not an object");

  check_rejected(entry(R"("F32")", "[2,-1]", "[0,0]"), 0, "tensor 't' .*shape entry that is not a non-negative integer: -1");
  check_rejected(entry(R"("F32")", "[2.5]", "[0,8]"), 8, "not a non-negative integer: 2.5");
  check_rejected(entry(R"("F32")", "[2.0]", "[0,8]"), 8, "not a non-negative integer: 2.0");
  check_rejected(entry(R"("F32")", R"(["2"])", "[0,8]"), 8, R"(not a non-negative integer: "2")");
  check_rejected(entry(R"("F32")", "3", "[0,12]"), 12, "tensor 't' .*has no shape");
  check_rejected(R"({"t":{"dtype":"F32","data_offsets":[0,4]}})", 4, "has no shape");

  // the shape's element count times the dtype size must be the byte length
  check_rejected(entry(R"("F32")", "[3]", "[0,8]"), 8, R"(tensor 't' .*F32 \[3\] needs 12 bytes but data_offsets \[0, 8\] hold 8)");
  check_rejected(entry(R"("F64")", "[2]", "[0,8]"), 8, R"(F64 \[2\] needs 16 bytes .* hold 8)");
  check_rejected(entry(R"("I64")", "[]", "[0,4]"), 4, R"(I64 \[\] needs 8 bytes .* hold 4)");
  check_rejected(entry(R"("F32")", "[0]", "[0,4]"), 4, R"(F32 \[0\] needs 0 bytes)");

  // element counts that overflow 64 bits, or an int64 dimension
  check_rejected(entry(R"("F32")", "[4294967296,4294967296,2]", "[0,0]"), 0, R"(shape \[4294967296,4294967296,2\] whose element count overflows)");
  check_rejected(entry(R"("F32")", "[9223372036854775808]", "[0,0]"), 0, "element count overflows");
  check_rejected(entry(R"("F32")", "[18446744073709551615,0]", "[0,0]"), 0, "overflows");
  check_rejected(entry(R"("F64")", "[2305843009213693952,2]", "[0,0]"), 0, "needs too many bytes");  // 2^62 x 8 bytes
}

TEST_CASE("safetensors: bad data_offsets are rejected") {
  auto one = [](const std::string& offsets) {
    return R"({"t":{"dtype":"F32","shape":[2],"data_offsets":)" + offsets + "}}";
  };
  check_rejected(one("[0]"), 8, "tensor 't' .*needs data_offsets \\[begin, end\\] of non-negative integers");
  check_rejected(one("[0,8,8]"), 8, "needs data_offsets");
  check_rejected(one("[-8,0]"), 8, "needs data_offsets");
  check_rejected(one(R"(["0","8"])"), 8, "needs data_offsets");
  check_rejected(R"({"t":{"dtype":"F32","shape":[2]}})", 8, "needs data_offsets");
  check_rejected(one("[8,0]"), 8, R"(tensor 't' .*data_offsets \[8, 0\] with end before begin)");
  {
    const std::string header = one("[0,8]");
    const std::size_t start = 8 + header.size();
    check_rejected(header, 4,
                   fmt::format(R"(tensor 't' .*data_offsets \[0, 8\] past the end of the data \(bytes {} to {} of a {}-byte file\))",
                               start, start + 8, start + 4));
  }
  check_rejected(one("[18446744073709551608,18446744073709551615]"), 8, "past the end of the data");

  auto two = [](const std::string& a, const std::string& b) {
    return R"({"a":{"dtype":"F32","shape":[2],"data_offsets":)" + a +
           R"(},"b":{"dtype":"F32","shape":[2],"data_offsets":)" + b + "}}";
  };
  {
    const std::string header = two("[0,8]", "[4,12]");
    const std::size_t start = 8 + header.size();
    check_rejected(header, 12, fmt::format(R"(tensor 'b' \(bytes {} to {}\) overlaps the tensor before it)", start + 4, start + 12));
  }
  check_rejected(two("[0,8]", "[0,8]"), 8, "overlaps the tensor before it");
  check_rejected(two("[4,12]", "[0,8]"), 12, "tensor 'a' .*overlaps");
  {
    const std::string header = two("[0,8]", "[12,20]");
    const std::size_t start = 8 + header.size();
    check_rejected(header, 20, fmt::format(R"(a hole of unclaimed bytes {} to {} before tensor 'b')", start + 8, start + 12));
  }
  check_rejected(two("[4,12]", "[12,20]"), 20, "a hole of unclaimed bytes .* before tensor 'a'");
  {
    const std::string header = two("[0,8]", "[8,16]");
    const std::size_t start = 8 + header.size();
    check_rejected(header, 19, fmt::format(R"(bytes {} to {} at the end belong to no tensor)", start + 16, start + 19));
    CHECK(parse_safetensors(file_of(header, 16), "good").size() == 2);
  }
  check_rejected("{}", 1, "at the end belong to no tensor");
}

TEST_CASE("safetensors: every truncation and byte corruption of a valid file fails cleanly") {
  const std::string bytes = serialize_safetensors(
      {{"w", tensor({{1, 2}, {3, 4}})}, {"n", scalar(5, i64)}, {"e", zeros({0}, f64)}, {"v", tensor({1.5}, f64)}});
  REQUIRE(parse_safetensors(bytes, "whole").size() == 4);
  int rejected = 0;
  for (std::size_t len = 0; len < bytes.size(); ++len) {
    INFO("prefix of ", len, " bytes");
    const std::string message = error_of([&] { parse_safetensors(bytes.substr(0, len), "cut.st"); });
    CHECK(matches(message, R"(^safetensors: cut\.st: )"));
    rejected += !message.empty();
  }
  CHECK(rejected == static_cast<int>(bytes.size()));

  // every header byte replaced by characters that break JSON, numbers or UTF-8: an xgrad::Error or a
  // valid parse, never another exception or a crash
  std::uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  int errors = 0, other = 0;
  for (std::size_t i = 8; i < 8 + n; ++i) {
    const char replacements[] = "09-\".,:[]{} e\xff\x80";
    for (char c : std::string(replacements, sizeof replacements)) {  // with the terminating NUL
      std::string mutated = bytes;
      mutated[i] = c;
      try {
        parse_safetensors(mutated, "fuzz");
      } catch (const Error&) {
        ++errors;
      } catch (...) {
        ++other;
      }
    }
  }
  CHECK(errors > 0);
  CHECK(other == 0);
}
