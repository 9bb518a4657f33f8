// Attacks (attacks.hpp) on: files. safetensors loading from paths that are not files (missing,
// directories, FIFOs, devices), huge sparse files, truncated and corrupt headers, hostile shapes,
// dtypes and offsets; saving into missing directories, over directories, through symlinks, with
// names the format cannot hold; Module and Optimizer checkpoints (round trips, failed loads that
// must leave the model unchanged, another architecture's checkpoint). Every row works in its own
// mkdtemp directory under /tmp, removed at the end of the row.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "attacks.hpp"

namespace xgrad::attacks {
namespace {

namespace fs = std::filesystem;

/// A fresh directory under /tmp (mkdtemp), removed with everything in it when the row ends.
struct TempDir {
  std::string path;
  TempDir() {
    char name[] = "/tmp/xgrad_attacks_files_XXXXXX";
    if (!::mkdtemp(name)) throw Wrong{fmt::format("mkdtemp failed: {}", std::strerror(errno))};
    path = name;
  }
  ~TempDir() {
    std::error_code ignored;
    fs::remove_all(path, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string file(const std::string& name) const { return path + "/" + name; }
  /// Names in the directory (recursively) that look like a save's leftover temporary file.
  bool has_temporaries() const {
    for (const auto& entry : fs::recursive_directory_iterator(path))
      if (entry.path().filename().string().find(".tmp.") != std::string::npos) return true;
    return false;
  }
};

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out.good()) throw Wrong{"could not write the test file " + path};
}

std::string le64(std::uint64_t n) {
  std::string out(8, '\0');
  std::memcpy(out.data(), &n, 8);
  return out;
}

/// A safetensors file: the header's length, the header, the data.
std::string file_of(const std::string& header, const std::string& data = "") { return le64(header.size()) + header + data; }

/// The error of loading `bytes` written to `dir`/name; the pattern must match and name the file.
void expect_load_error(const TempDir& dir, const std::string& bytes, const std::string& pattern,
                       const std::string& name = "bad.safetensors") {
  const std::string path = dir.file(name);
  write_bytes(path, bytes);
  expect_error([&] { load_safetensors(path); }, pattern);
  expect_error([&] { load_safetensors(path); }, "bad\\.safetensors");  // the message names the file
  expect_error([&] { parse_safetensors(bytes, "in-memory"); }, pattern);
}

double seconds_of(const std::function<void()>& f) {
  const auto start = std::chrono::steady_clock::now();
  f();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

/// A header entry.
std::string entry(const std::string& name, const std::string& dtype, const std::string& shape, std::uint64_t begin,
                  std::uint64_t end) {
  return fmt::format("\"{}\":{{\"dtype\":\"{}\",\"shape\":{},\"data_offsets\":[{},{}]}}", name, dtype, shape, begin, end);
}

/// Every state_dict entry's name, dtype, shape and raw bytes: equal means bit-identical.
std::vector<std::string> snapshot(const NamedTensors& state) {
  std::vector<std::string> out;
  for (const auto& [name, t] : state) {
    const char* p = static_cast<const char*>(t.impl().storage->data()) + t.impl().offset * dtype_size(t.dtype());
    out.push_back(fmt::format("{} {} {} ", name, dtype_name(t.dtype()), to_string(t.shape())) +
                  std::string(p, static_cast<std::size_t>(t.numel()) * dtype_size(t.dtype())));
  }
  return out;
}

/// A small model with a submodule and an i64 buffer.
struct Net : nn::Module {
  std::shared_ptr<nn::Linear> first, second;
  Tensor steps;
  Net(std::int64_t in, std::uint64_t seed) {
    manual_seed(seed);
    first = register_module("first", std::make_shared<nn::Linear>(in, 4));
    second = register_module("second", std::make_shared<nn::Linear>(4, 2));
    steps = register_buffer("steps", scalar(static_cast<double>(seed), i64));
  }
  std::string type_name() const override { return "Net"; }
};

const std::string kValid = file_of(std::string("{") + entry("w", "F32", "[2]", 0, 8) + "}", std::string(8, '\0'));

Register rows{"files", {
  // --- paths that are not regular files ---------------------------------------------------------
  {"load a nonexistent path", [] {
     TempDir dir;
     const std::string path = dir.file("missing.safetensors");
     expect_error([&] { load_safetensors(path); }, "load_safetensors: cannot open .*missing\\.safetensors: No such file");
     nn::Linear layer(2, 2);
     expect_error([&] { layer.load(path); }, "cannot open .*missing\\.safetensors");
   }},
  {"load a directory", [] {
     TempDir dir;
     expect_error([&] { load_safetensors(dir.path); }, "load_safetensors: " + dir.path + " is not a regular file");
     fs::create_directory(dir.file("d.safetensors"));
     expect_error([&] { load_safetensors(dir.file("d.safetensors")); }, "d\\.safetensors is not a regular file");
     expect_error([&] { load_safetensors(dir.file("d.safetensors/")); }, "d\\.safetensors/ is not a regular file");
   }},
  {"load a FIFO, with and without a writer, without blocking", [] {
     TempDir dir;
     const std::string fifo = dir.file("pipe.safetensors");
     if (::mkfifo(fifo.c_str(), 0600) != 0) throw Wrong{"mkfifo failed"};
     const double took = seconds_of([&] { expect_error([&] { load_safetensors(fifo); }, "pipe\\.safetensors is not a regular file"); });
     expect(took < 2, fmt::format("a prompt refusal, took {} s", took));
     const int writer = ::open(fifo.c_str(), O_RDWR | O_NONBLOCK);  // now the FIFO has a writer (and data)
     if (::write(writer, kValid.data(), kValid.size()) != static_cast<ssize_t>(kValid.size())) throw Wrong{"FIFO write failed"};
     expect_error([&] { load_safetensors(fifo); }, "pipe\\.safetensors is not a regular file");
     ::close(writer);
   }},
  {"load /dev/zero, /dev/null and a /proc file that reports size 0", [] {
     expect_error([] { load_safetensors("/dev/zero"); }, "load_safetensors: /dev/zero is not a regular file");
     expect_error([] { load_safetensors("/dev/null"); }, "load_safetensors: /dev/null is not a regular file");
     expect_error([] { load_safetensors("/proc/self/status"); }, "/proc/self/status: 0 bytes is too short");
   }},
  {"load a sparse 2 GiB file: rejected fast from its first bytes", [] {
     TempDir dir;
     const std::string path = dir.file("sparse.safetensors");
     auto sparse = [&](const std::string& head) {
       const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
       if (fd < 0 || ::write(fd, head.data(), head.size()) != static_cast<ssize_t>(head.size()) ||
           ::ftruncate(fd, off_t{1} << 31) != 0)
         throw Wrong{"could not make the sparse file"};
       ::close(fd);
     };
     auto fast_error = [&](const std::string& pattern) {
       const double took = seconds_of([&] { expect_error([&] { load_safetensors(path); }, pattern); });
       expect(took < 1, fmt::format("a refusal in well under a second, took {} s", took));
     };
     sparse("");
     fast_error("sparse\\.safetensors: the header length at byte 0 is 0 \\(no JSON header\\)");
     sparse(le64((std::uint64_t{1} << 31) - 8));
     fast_error("the header length at byte 0 is 2147483640, over the 104857600-byte limit");
     const std::string header = std::string("{") + entry("w", "F32", "[2]", 0, 8) + "}";
     sparse(le64(header.size()) + header);
     fast_error("bytes \\d+ to 2147483648 at the end belong to no tensor");
     sparse(le64(50) + "not json at all");
     fast_error("the header \\(bytes 8 to 58\\) is not valid JSON");
   }},
  // --- corrupt files ----------------------------------------------------------------------------
  {"load truncations at several points", [] {
     TempDir dir;
     const std::string full = serialize_safetensors({{"a", tensor({1.0, 2.0, 3.0}, f64)}, {"b", tensor({4, 5}, i64)}});
     std::uint64_t header = 0;
     std::memcpy(&header, full.data(), 8);
     const std::size_t data_start = 8 + header;
     for (const std::size_t cut : {std::size_t{0}, std::size_t{1}, std::size_t{7}, std::size_t{8}, std::size_t{9},
                                   data_start - 1, data_start, data_start + 5, data_start + 24, full.size() - 1}) {
       const std::string pattern = cut < 8 ? fmt::format("{} bytes is too short", cut)
                                   : cut < data_start ? "the header length at byte 0 is \\d+, past the end"
                                                      : "past the end of the data|belong to no tensor";
       expect_load_error(dir, full.substr(0, cut), pattern);
     }
     write_bytes(dir.file("ok.safetensors"), full);
     expect_values(load_safetensors(dir.file("ok.safetensors"))[1].second, {4, 5});
   }},
  {"load a header length larger than the file, or 2^64 - 1", [] {
     TempDir dir;
     expect_load_error(dir, le64(100) + "{}", "the header length at byte 0 is 100, past the end of the 10-byte file");
     expect_load_error(dir, le64(std::numeric_limits<std::uint64_t>::max()) + "{}",
                       "the header length at byte 0 is 18446744073709551615, over the 104857600-byte limit");
     expect_load_error(dir, le64(kMaxSafetensorsHeader + 1) + "{}", "104857601, over the 104857600-byte limit");
   }},
  {"load non-JSON and non-object headers", [] {
     TempDir dir;
     expect_load_error(dir, file_of("{\"a\":"), "the header \\(bytes 8 to 13\\) is not valid JSON");
     expect_load_error(dir, file_of("not json"), "is not valid JSON");
     expect_load_error(dir, file_of("{} trailing"), "is not valid JSON");
     expect_load_error(dir, file_of(std::string("{}\0{\"x\":1}", 10)), "not valid JSON: a NUL byte at byte 10");
     expect_load_error(dir, file_of("[1, 2]"), "the header at byte 8 is not a JSON object");
     expect_load_error(dir, file_of("\"text\""), "the header at byte 8 is not a JSON object");
     expect_load_error(dir, file_of("{\"w\": 5}"), "tensor 'w' .*: is not an object");
     expect_load_error(dir, file_of(std::string(100000, '[') + std::string(100000, ']')), "nests arrays and objects more than 16 deep");
     expect_load_error(dir, file_of("{\"\xff\xfe\":1}"), "is not valid JSON");
   }},
  {"load wrong dtype strings", [] {
     TempDir dir;
     for (const char* dtype : {"F16", "BF16", "f32", "", "U8", "BOOL", "F32 ", "I32"})
       expect_load_error(dir, file_of(std::string("{") + entry("w", dtype, "[2]", 0, 8) + "}", std::string(8, '\0')),
                         "tensor 'w' .*unsupported dtype '" + std::string(dtype) + "' \\(xgrad reads F32, F64, I64\\)");
     expect_load_error(dir, file_of("{\"w\":{\"dtype\":7,\"shape\":[2],\"data_offsets\":[0,8]}}", std::string(8, '\0')),
                       "tensor 'w' .*has no dtype");
     expect_load_error(dir, file_of("{\"w\":{\"shape\":[2],\"data_offsets\":[0,8]}}", std::string(8, '\0')), "has no dtype");
   }},
  {"load shapes that overflow or are not sizes", [] {
     TempDir dir;
     auto with_shape = [&](const std::string& shape, const std::string& pattern) {
       expect_load_error(dir, file_of(std::string("{") + entry("w", "F32", shape, 0, 8) + "}", std::string(8, '\0')), pattern);
     };
     with_shape("[4294967296,4294967296,4294967296]", "has a shape \\[4294967296,4294967296,4294967296\\] whose element count overflows");
     with_shape("[18446744073709551615]", "whose element count overflows");
     with_shape("[9223372036854775808]", "whose element count overflows");
     with_shape("[2305843009213693952,4]", "F32 \\[2305843009213693952, 4\\] needs too many bytes but data_offsets \\[0, 8\\] hold 8");
     with_shape("[-1]", "a shape entry that is not a non-negative integer: -1");
     with_shape("[2.5]", "not a non-negative integer: 2.5");
     with_shape("[\"2\"]", "not a non-negative integer: \"2\"");
     with_shape("[3]", "F32 \\[3\\] needs 12 bytes but data_offsets \\[0, 8\\] hold 8");
     with_shape("2", "has no shape");
     std::string deep = "[";
     for (int i = 0; i < 65; ++i) deep += i ? ",1" : "1";
     with_shape(deep + "]", "a shape of rank 65 \\(at most 64");
   }},
  {"load data offsets overlapping, out of range, reversed, with holes", [] {
     TempDir dir;
     const std::string data(16, '\0');
     auto two = [&](std::uint64_t b0, std::uint64_t e0, std::uint64_t b1, std::uint64_t e1, std::size_t size,
                    const std::string& pattern) {
       expect_load_error(dir, file_of("{" + entry("a", "F32", "[2]", b0, e0) + "," + entry("b", "F32", "[2]", b1, e1) + "}",
                                      std::string(size, '\0')), pattern);
     };
     two(0, 8, 4, 12, 16, "tensor 'b' \\(bytes \\d+ to \\d+\\) overlaps the tensor before it");
     two(0, 8, 0, 8, 8, "overlaps the tensor before it");
     two(0, 8, 12, 20, 20, "a hole of unclaimed bytes \\d+ to \\d+ before tensor 'b'");
     two(0, 8, 8, 16, 12, "tensor 'b' .*data_offsets \\[8, 16\\] past the end of the data");
     two(0, 8, std::numeric_limits<std::uint64_t>::max() - 7, std::numeric_limits<std::uint64_t>::max(), 16, "past the end of the data");
     two(0, 8, 16, 8, 16, "data_offsets \\[16, 8\\] with end before begin");
     expect_load_error(dir, file_of("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}", data),
                       "needs data_offsets \\[begin, end\\] of non-negative integers");
     expect_load_error(dir, file_of("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,-8]}}", data),
                       "needs data_offsets");
   }},
  {"load duplicate names", [] {
     TempDir dir;
     expect_load_error(dir, file_of("{" + entry("w", "F32", "[1]", 0, 4) + "," + entry("w", "F32", "[1]", 4, 8) + "}",
                                    std::string(8, '\0')), "the header names 'w' twice");
     expect_load_error(dir, file_of("{\"w\":{\"dtype\":\"F32\",\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,4]}}",
                                    std::string(4, '\0')), "the header names 'dtype' twice");
   }},
  {"load a header of 10^5 tensors: parses, in data order", [] {
     constexpr int n = 100000;
     std::string header = "{", data;
     for (int i = 0; i < n; ++i) {  // names sorted in the reverse of their data order
       header += (i ? "," : "") + entry(fmt::format("t{:06}", n - i), "F32", "[1]", 4 * i, 4 * i + 4);
       const float v = static_cast<float>(i);
       data.append(reinterpret_cast<const char*>(&v), 4);
     }
     header += "}";
     TempDir dir;
     write_bytes(dir.file("many.safetensors"), file_of(header, data));
     NamedTensors loaded;
     const double took = seconds_of([&] { loaded = load_safetensors(dir.file("many.safetensors")); });
     expect(took < 20, fmt::format("10^5 tensors in seconds, took {} s", took));
     expect(loaded.size() == n, fmt::format("{} tensors, got {}", n, loaded.size()));
     expect(loaded.front().first == "t100000" && loaded.back().first == "t000001", "the tensors in data order");
     expect_values(loaded[12345].second, {12345});
   }},
  // --- saving -----------------------------------------------------------------------------------
  {"save into a missing directory, over a directory, under a regular file", [] {
     TempDir dir;
     const NamedTensors one{{"w", tensor({1.0})}};
     expect_error([&] { save_safetensors(dir.file("missing/x.safetensors"), one); },
                  "save_safetensors: cannot open .*missing/x\\.safetensors\\.tmp\\.\\d+\\.\\d+ for writing: No such file");
     expect(!fs::exists(dir.file("missing")), "the missing directory not created");
     fs::create_directory(dir.file("taken"));
     expect_error([&] { save_safetensors(dir.file("taken"), one); }, "save_safetensors: cannot rename .* to .*taken: Is a directory");
     expect(fs::is_directory(dir.file("taken")), "the directory still there");
     write_bytes(dir.file("plain"), "x");
     expect_error([&] { save_safetensors(dir.file("plain/x.safetensors"), one); }, "save_safetensors: cannot open .*Not a directory");
     expect(!dir.has_temporaries(), "no temporary file left behind");
     expect_error([&] { save_safetensors("", one); }, "save_safetensors: cannot rename .*\\.tmp\\.\\d+\\.\\d+ to : No such file");
     for (const auto& e : fs::directory_iterator("."))
       expect(e.path().filename().string().rfind(fmt::format(".tmp.{}.", ::getpid()), 0) != 0,
              "no temporary file left in the working directory, found " + e.path().string());
     nn::Linear layer(2, 2);
     expect_error([&] { layer.save(dir.file("missing/m.safetensors")); }, "save_safetensors: cannot open .*missing/m\\.safetensors");
   }},
  {"save through a symlink writes the link's target and keeps the link", [] {
     TempDir dir;
     fs::create_directories(dir.file("real"));
     const std::string target = dir.file("real/model.safetensors"), link = dir.file("link.safetensors");
     save_safetensors(target, {{"w", tensor({1.0, 2.0}, f64)}});
     fs::create_symlink("real/model.safetensors", link);  // relative to the link's directory
     save_safetensors(link, {{"w", tensor({3.0, 4.0}, f64)}});
     expect(fs::is_symlink(link) && fs::read_symlink(link) == "real/model.safetensors", "the link kept, pointing where it did");
     expect(fs::is_regular_file(fs::symlink_status(target)), "the target a regular file");
     expect_values(load_safetensors(target)[0].second, {3, 4});
     expect_values(load_safetensors(link)[0].second, {3, 4});
     // a dangling link: its target is created
     const std::string dangling = dir.file("dangling.safetensors");
     fs::create_symlink(dir.file("real/new.safetensors"), dangling);
     save_safetensors(dangling, {{"v", tensor({6.0}, f64)}});
     expect(fs::is_symlink(dangling), "the dangling link kept");
     expect_values(load_safetensors(dir.file("real/new.safetensors"))[0].second, {6});
     // a loop of links
     fs::create_symlink(dir.file("loop_b"), dir.file("loop_a"));
     fs::create_symlink(dir.file("loop_a"), dir.file("loop_b"));
     expect_error([&] { save_safetensors(dir.file("loop_a"), {{"w", tensor({1.0})}}); }, "loop_a: too many levels of symbolic links");
     expect_error([&] { load_safetensors(dir.file("loop_a")); }, "cannot open .*loop_a: Too many levels of symbolic links");
     expect(!dir.has_temporaries(), "no temporary file left behind");
   }},
  {"save a tensor named __metadata__ (the loader would drop it)", [] {
     TempDir dir;
     const std::string path = dir.file("meta.safetensors");
     expect_error([&] { save_safetensors(path, {{"w", tensor({1.0})}, {"__metadata__", tensor({2.0})}}); },
                  "save_safetensors: .*'__metadata__'");
     expect(!fs::exists(path) && !dir.has_temporaries(), "nothing written");
   }},
  {"save a name that is not UTF-8, and duplicate names", [] {
     TempDir dir;
     const std::string path = dir.file("names.safetensors");
     expect_error([&] { save_safetensors(path, {{"bad\xff", tensor({1.0})}}); }, "save_safetensors: .*name.*UTF-8");
     expect_error([&] { save_safetensors(path, {{"w", tensor({1.0})}, {"w", tensor({2.0})}}); },
                  "save_safetensors: the name 'w' appears twice");
     expect(!fs::exists(path) && !dir.has_temporaries(), "nothing written");
     // names JSON must escape survive a round trip
     const std::string odd = std::string("q\"uote\\back\nline\x01\0nul", 22);
     save_safetensors(path, {{odd, tensor({1.0})}, {"", tensor({2.0})}, {"\xc3\xa9t\xc3\xa9", tensor({3.0})}});
     const NamedTensors back = load_safetensors(path);
     expect(back.size() == 3 && back[0].first == odd && back[1].first.empty() && back[2].first == "\xc3\xa9t\xc3\xa9",
            "the names back as written, in order");
   }},
  {"save and load: NaN payloads, infinities, -0, denormals, i64 extremes, 0-d and empty tensors bit-exact", [] {
     TempDir dir;
     Tensor f = empty({6}, f64);
     double* p = f.data<double>();
     const std::uint64_t payload = 0x7ff4000000000123ull;  // a signalling NaN with a payload
     std::memcpy(&p[0], &payload, 8);
     p[1] = std::numeric_limits<double>::infinity();
     p[2] = -std::numeric_limits<double>::infinity();
     p[3] = -0.0;
     p[4] = std::numeric_limits<double>::denorm_min();
     p[5] = std::numeric_limits<double>::max();
     Tensor g = full({2}, std::nan(""), f32);
     Tensor k = tensor({0.0, 0.0}, i64);
     k.data<std::int64_t>()[0] = std::numeric_limits<std::int64_t>::min();
     k.data<std::int64_t>()[1] = std::numeric_limits<std::int64_t>::max();
     const NamedTensors state{{"f", f}, {"g", g}, {"k", k}, {"s", scalar(2.5, f64)}, {"e", zeros({0, 3})}, {"e2", zeros({4, 0}, i64)}};
     save_safetensors(dir.file("x.safetensors"), state);
     const NamedTensors back = load_safetensors(dir.file("x.safetensors"));
     expect(snapshot(back) == snapshot(state), "every tensor back bit-identical, with dtype, shape and name");
     save_safetensors(dir.file("none.safetensors"), {});
     expect(load_safetensors(dir.file("none.safetensors")).empty(), "an empty list round trips");
   }},
  // --- Module and Optimizer checkpoints ---------------------------------------------------------
  {"Module: save then load into a fresh model gives equal values", [] {
     TempDir dir;
     Net a(3, 1), b(3, 2);
     expect(snapshot(a.state_dict()) != snapshot(b.state_dict()), "two different initialisations");
     a.save(dir.file("net.safetensors"));
     b.load(dir.file("net.safetensors"));
     expect(snapshot(a.state_dict()) == snapshot(b.state_dict()), "the loaded model bit-identical to the saved one");
     const Tensor x = tensor({{0.5, -1.0, 2.0}});
     expect_values(b.second->forward(b.first->forward(x)), a.second->forward(a.first->forward(x)).to_vector<double>());
     // saved twice over the same path: the second save wins, no leftovers
     b.first->weight.data<float>()[0] = 42;
     b.save(dir.file("net.safetensors"));
     a.load(dir.file("net.safetensors"));
     expect(a.first->weight.data<float>()[0] == 42 && !dir.has_temporaries(), "the second save loaded, no temporaries");
   }},
  {"Module: a failed load leaves the model unchanged", [] {
     TempDir dir;
     Net source(3, 1), model(3, 2);
     source.save(dir.file("good.safetensors"));
     std::ifstream in(dir.file("good.safetensors"), std::ios::binary);
     const std::string good((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
     const auto before = snapshot(model.state_dict());
     auto refused = [&](const std::string& bytes, const std::string& pattern) {
       write_bytes(dir.file("bad.safetensors"), bytes);
       expect_error([&] { model.load(dir.file("bad.safetensors")); }, pattern);
       expect(snapshot(model.state_dict()) == before, "the model unchanged after: " + pattern);
     };
     refused(good.substr(0, good.size() - 1), "bad\\.safetensors.*belong to no tensor|bad\\.safetensors.*past the end");
     refused(good.substr(0, 20), "bad\\.safetensors");
     // a valid file missing one entry: rejected as a whole, nothing copied
     NamedTensors partial;
     for (const auto& [name, t] : source.state_dict())
       if (name != "steps") partial.emplace_back(name, t);
     save_safetensors(dir.file("bad.safetensors"), partial);
     expect_error([&] { model.load(dir.file("bad.safetensors")); }, "load_state_dict into Net: missing 'steps'.*bad\\.safetensors");
     expect(snapshot(model.state_dict()) == before, "the model unchanged after a partial checkpoint");
     // the right names, one with a wrong shape
     NamedTensors reshaped = source.state_dict();
     for (auto& [name, t] : reshaped)
       if (name == "steps") t = zeros({3}, i64);
     save_safetensors(dir.file("bad.safetensors"), reshaped);
     expect_error([&] { model.load(dir.file("bad.safetensors")); }, "'steps' has shape \\[3\\], the module expects \\[\\]");
     expect(snapshot(model.state_dict()) == before, "the model unchanged after a wrongly shaped entry");
   }},
  {"Module: a checkpoint of another architecture is refused naming the entries", [] {
     TempDir dir;
     Net wide(5, 1), model(3, 2);
     wide.save(dir.file("wide.safetensors"));
     const auto before = snapshot(model.state_dict());
     expect_error([&] { model.load(dir.file("wide.safetensors")); },
                  "load_state_dict into Net: 'first.weight' has shape \\[4, 5\\], the module expects \\[4, 3\\].*wide\\.safetensors");
     expect(snapshot(model.state_dict()) == before, "the model unchanged");
     nn::LSTM lstm(3, 4);
     lstm.save(dir.file("lstm.safetensors"));
     expect_error([&] { model.load(dir.file("lstm.safetensors")); }, "missing 'first.weight'.*unexpected 'weight_ih_l0'");
     expect(snapshot(model.state_dict()) == before, "the model unchanged");
     // a checkpoint with f64 where the model has i64
     NamedTensors state = model.state_dict();
     for (auto& [name, t] : state)
       if (name == "steps") t = scalar(1.0, f64);
     save_safetensors(dir.file("dtype.safetensors"), state);
     expect_error([&] { model.load(dir.file("dtype.safetensors")); }, "'steps' is f64, the module expects i64");
   }},
  {"Optimizer: state save/load round trip continues bit-identically; a model file is refused", [] {
     TempDir dir;
     auto run = [](Net& net, optim::Optimizer& opt, int steps) {
       for (int i = 0; i < steps; ++i) {
         opt.zero_grad();
         sum(pow(net.second->forward(net.first->forward(tensor({{0.5, -1.0, 2.0}}))), 2.0)).backward();
         opt.step();
       }
     };
     Net a(3, 1), b(3, 1);
     optim::Adam opt_a(a.parameters(), {.lr = 0.01}), opt_b(b.parameters(), {.lr = 0.01});
     run(a, opt_a, 3);
     a.save(dir.file("net.safetensors"));
     opt_a.save(dir.file("adam.safetensors"));
     b.load(dir.file("net.safetensors"));
     opt_b.load(dir.file("adam.safetensors"));
     expect(snapshot(opt_b.state_dict()) == snapshot(opt_a.state_dict()), "the optimizer state back bit-identical");
     run(a, opt_a, 2);
     run(b, opt_b, 2);
     expect(snapshot(a.state_dict()) == snapshot(b.state_dict()), "the resumed run bit-identical to the uninterrupted one");
     const auto before = snapshot(opt_b.state_dict());
     expect_error([&] { opt_b.load(dir.file("net.safetensors")); }, "optimizer load_state_dict: .*unexpected entry '(first|second|steps)");
     expect(snapshot(opt_b.state_dict()) == before, "the optimizer state unchanged");
     expect_error([&] { opt_b.load(dir.file("absent.safetensors")); }, "load_safetensors: cannot open .*absent\\.safetensors");
   }},
}};

}  // namespace
}  // namespace xgrad::attacks
