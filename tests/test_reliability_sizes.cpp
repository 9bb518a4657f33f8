// Reliability round 2 (issue 13), sizes, files and optimizers: every class of hostile input
// found beside the tested paths gets a regression test named after the class. Sizes that
// overflow int64 (or cannot be held) are xgrad::Errors naming the op and the sizes, never a
// wrapped-around buffer, an endless loop or std::bad_alloc; loading a file never blocks or
// reads a huge file whole; optimizers and schedules refuse NaN, infinite and out-of-range
// settings and loaded states.
#include <sys/stat.h>
#include <sys/types.h>
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <string>

#include "xgrad/core/gemm.hpp"
#include "testing.hpp"

using namespace xgrad;
using namespace xgrad::testing;
namespace fs = std::filesystem;

namespace {

constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();
constexpr std::int64_t k2e62 = std::int64_t{1} << 62;
const double kNaN = std::numeric_limits<double>::quiet_NaN();
const double kInf = std::numeric_limits<double>::infinity();

/// Seconds `f` takes.
template <class F>
double seconds(F&& f) {
  const auto start = std::chrono::steady_clock::now();
  f();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kSanitized = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || __has_feature(undefined_behavior_sanitizer)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif
#else
constexpr bool kSanitized = false;
#endif

Tensor param(const Shape& shape = {2}) { return ones(shape, f64).requires_grad_(); }

}  // namespace

// --- sizes ---------------------------------------------------------------------------------------

TEST_CASE("size overflow: the checked helpers name the op and the operands") {
  CHECK(checked_mul(3, 4, "op") == 12);
  CHECK(checked_add(kMax - 1, 1, "op") == kMax);
  CHECK(matches(error_of([] { checked_mul(k2e62, 2, "my_op"); }),
                R"(^my_op: size overflow: 4611686018427387904 \* 2 does not fit in int64$)"));
  CHECK(matches(error_of([] { checked_add(kMax, 1, "my_op"); }),
                R"(^my_op: size overflow: 9223372036854775807 \+ 1 does not fit in int64$)"));
  CHECK(checked_numel({k2e62, 4, 0}, "op") == 0);  // holds nothing, whatever the other sizes
  CHECK(matches(error_of([] { checked_numel({k2e62, 4}, "my_op"); }),
                R"(^my_op: the element count of shape \[4611686018427387904, 4\] overflows int64$)"));
  CHECK(matches(error_of([] { numel({std::int64_t{1} << 32, std::int64_t{1} << 32}); }), R"(^numel: .*overflows int64)"));
  CHECK(ceil_div(0, 3) == 0);
  CHECK(ceil_div(7, 3) == 3);
  CHECK(ceil_div(kMax, kMax) == 1);
  CHECK(ceil_div(5, kMax) == 1);
  CHECK(matches(error_of([] { check_fits_in_memory(kMax / 2, 8, "my_op", "the list"); }),
                R"(^my_op: the list needs 4611686018427387903 x 8 bytes, more than this machine's memory)"));
}

TEST_CASE("size overflow: reshape whose shape product overflows int64 is an error, not a view past the storage") {
  // 2^32 x 2^32 wraps around to 0 elements: it used to be accepted for an empty tensor
  const Tensor empty_x = zeros({0});
  CHECK(matches(error_of([&] { reshape(empty_x, {std::int64_t{1} << 32, std::int64_t{1} << 32}); }),
                R"(^reshape: the element count of shape \[4294967296, 4294967296\] overflows int64 \(input shape \[0\]\))"));
  const Tensor x = zeros({4});
  CHECK(matches(error_of([&] { reshape(x, {k2e62, 4, 1}); }), R"(^reshape: the element count of shape \[4611686018427387904, 4, 1\] overflows int64)"));
  CHECK(matches(error_of([&] { reshape(x, {-1, k2e62, 4}); }), R"(^reshape: the element count of shape \[-1, 4611686018427387904, 4\] overflows)"));
  // a zero size anywhere: no overflow, the ordinary element-count rule
  CHECK(reshape(empty_x, {k2e62, 0}).shape() == Shape{k2e62, 0});
  CHECK(reshape(x, {2, -1}).shape() == Shape{2, 2});
}

TEST_CASE("size overflow: matmul with a zero-size output dimension is an empty product, not SIGFPE") {
  const Tensor a = input({2, 3, 4}), b = input({4, 0});
  const Tensor y = matmul(a, b);  // [..., M, K] @ [K, 0]: divided numel(out) by 0
  CHECK(y.shape() == Shape{2, 3, 0});
  sum(y).backward();
  CHECK(a.grad().shape() == a.shape());
  CHECK(max_abs_diff(a.grad(), zeros({2, 3, 4}, f64)) == 0);
  CHECK(matmul(input({2, 0, 4}), input({4, 5})).shape() == Shape{2, 0, 5});
  CHECK(matmul(input({0, 4}), input({4, 0})).shape() == Shape{0, 0});
  const Tensor z = matmul(input({2, 3, 0}), input({0, 5}));  // an empty sum: zeros
  CHECK(z.shape() == Shape{2, 3, 5});
  CHECK(max_abs_diff(z, zeros({2, 3, 5}, f64)) == 0);
}

TEST_CASE("size overflow: GEMM refuses sizes that 32-bit BLAS ints cannot take") {
  const std::int64_t big = std::int64_t{1} << 31;
  // refused before any memory is touched (the pointers are never read)
  CHECK(matches(error_of([&] { gemm<float>(false, false, big, 1, 1, 1.0f, nullptr, nullptr, 0.0f, nullptr); }),
                R"(^gemm: matrix sizes m = 2147483648, n = 1, k = 1 are outside what BLAS takes \(0 to 2147483647\))"));
  CHECK(matches(error_of([&] { gemm<double>(true, true, 1, 1, big, 1.0, nullptr, nullptr, 0.0, nullptr); }),
                R"(^gemm: matrix sizes m = 1, n = 1, k = 2147483648)"));
  CHECK(matches(error_of([&] {
                  gemm_batched<float>(false, false, 1, big, 1, 1.0f, nullptr, 0, nullptr, 0, 0.0f, nullptr, 0, 3);
                }),
                R"(^gemm: matrix sizes m = 1, n = 2147483648, k = 1)"));
  double c = 7;
  const double one = 1;
  gemm<double>(false, false, 1, 1, 1, 2.0, &one, &one, 0.0, &c);  // the largest sizes still pass
  CHECK(c == 2);
}

TEST_CASE("size overflow: chunk with a huge chunk count") {
  const Tensor x = arange(5, f64);
  const auto pieces = chunk(x, kMax, 0);  // (len + chunks - 1) wrapped around to a negative chunk size
  REQUIRE(pieces.size() == 5);
  for (const auto& p : pieces) CHECK(p.shape() == Shape{1});
  CHECK(chunk(zeros({0}), kMax, 0).size() == 1);
  CHECK(chunk(x, 2, 0).size() == 2);
}

TEST_CASE("size overflow: concat and split sizes whose sum overflows int64") {
  // zero-size tensors can have huge other axes: three of [0, 2^62] along axis 1 overflow
  const Tensor wide = zeros({0, k2e62});
  CHECK(matches(error_of([&] { concat({wide, wide, wide}, 1); }),
                R"(^concat: size overflow: 4611686018427387904 \+ 4611686018427387904 does not fit in int64$)"));
  CHECK(concat({wide, wide}, 0).shape() == Shape{0, k2e62});
  // sizes that wrap around to the axis length (2 (2^63 - 1) + 4 = 2 mod 2^64) used to be accepted
  const Tensor x = zeros({2});
  CHECK(matches(error_of([&] { split(x, {kMax, kMax, 4}, 0); }),
                R"(^split: size overflow: 9223372036854775807 \+ 9223372036854775807 does not fit in int64)"));
  CHECK(split(x, {1, 1}, 0).size() == 2);
}

TEST_CASE("size overflow: conv1d dilation arithmetic") {
  const Tensor x = input({1, 5, 2}), w = input({3, 2, 3});
  CHECK(matches(error_of([&] { nn::conv1d(x, w, {}, 1, k2e62); }),
                R"(^conv1d: size overflow: 4611686018427387904 \* 2 does not fit in int64)"));
  for (auto padding : {nn::Padding::same, nn::Padding::causal})
    CHECK(matches(error_of([&] { nn::conv1d(x, w, {}, 1, k2e62, padding); }), R"(^conv1d: size overflow)"));
  CHECK(matches(error_of([&] { nn::Conv1D(2, 3, 3, 1, k2e62); }), R"(^Conv1D: size overflow: 4611686018427387904 \* 2)"));
  // a large but representable span is an ordinary error ('valid'), or zeros padded in ('same')
  CHECK(matches(error_of([&] { nn::conv1d(x, w, {}, 1, k2e62 / 2); }), R"(^conv1d: input \[1, 5, 2\] has 5 time steps, fewer than the kernel span)"));
  CHECK(nn::conv1d(x, w, {}, kMax, 1, nn::Padding::same).shape() == Shape{1, 1, 3});  // a huge stride: one output
}

TEST_CASE("size overflow: data utilities (batches, windows, StreamBatcher)") {
  CHECK(matches(error_of([] { data::batches(1000000000000, 1); }),
                R"(^batches: the list of n indices needs 1000000000000 x 8 bytes, more than this machine's memory)"));
  CHECK(matches(error_of([] { data::permutation(kMax); }), R"(^permutation: .*more than this machine's memory)"));
  const auto one_batch = data::batches(5, kMax, false);  // begin + batch_size used to wrap around
  REQUIRE(one_batch.size() == 1);
  CHECK(one_batch[0].size() == 5);
  CHECK(data::batches(5, 2, false).size() == 3);

  const Tensor series = arange(10, f64);
  // (3 - 1) * 2^62 wrapped around to a negative reach: the loop ran on, growing memory
  CHECK(matches(error_of([&] { data::timeseries_windows(series, 3, 1, k2e62); }),
                R"(^timeseries_windows: size overflow: 2 \* 4611686018427387904 does not fit in int64)"));
  CHECK(matches(error_of([] { data::window_starts(10, 3, 1, k2e62); }), R"(^window_starts: size overflow)"));
  // a huge stride: one window (s += stride used to wrap around too)
  CHECK(data::window_starts(10, 2, kMax, 1) == std::vector<std::int64_t>{0});
  CHECK(data::timeseries_windows(series, 3, kMax).shape() == Shape{1, 3});
  CHECK(data::window_starts(10, 3, 3, 2) == std::vector<std::int64_t>{0, 3});
  CHECK(data::timeseries_windows(series, 20, 1).shape() == Shape{0, 20});
  CHECK(matches(error_of([] { data::next_token_windows({1, 2, 3}, kMax); }),
                R"(^next_token_windows: size overflow: 9223372036854775807 \+ 1)"));
  CHECK(matches(error_of([] { data::pad_sequences({{1, 2}}, std::int64_t{1} << 61); }),
                R"(^pad_sequences: the padded batch needs .* bytes, more than this machine's memory)"));

  std::vector<std::int64_t> tokens(10);
  for (std::int64_t i = 0; i < 10; ++i) tokens[i] = i;
  const data::StreamBatcher streams(tokens, 2, kMax);  // (L - 1 + bptt - 1) / bptt wrapped around
  CHECK(streams.size() == 1);
  CHECK(streams.window(0).inputs.shape() == Shape{2, 4});
  CHECK(data::StreamBatcher(tokens, 2, 2).size() == 2);
}

TEST_CASE("size overflow: TruncatedBPTT with huge k1 and k2") {
  const nn::TruncatedBPTT huge(k2e62, k2e62);
  const auto w = huge.windows(10);
  REQUIRE(w.size() == 1);
  CHECK((w[0].begin == 0 && w[0].loss_begin == 0 && w[0].end == 10));
  const auto longest = huge.windows(kMax);  // loss_begin += k1 used to wrap around and loop
  REQUIRE(longest.size() == 2);
  CHECK((longest[1].begin == k2e62 && longest[1].loss_begin == k2e62 && longest[1].end == kMax));
  const auto reach = nn::TruncatedBPTT(1, k2e62).windows(3);
  REQUIRE(reach.size() == 3);
  CHECK((reach[2].begin == 0 && reach[2].loss_begin == 2 && reach[2].end == 3));
  CHECK(matches(error_of([] { nn::TruncatedBPTT(1, 1).windows(1000000000000000); }),
                R"(^TruncatedBPTT::windows: the window list needs 1000000000000000 x 24 bytes, more than this machine's memory)"));
  CHECK(matches(error_of([] { nn::TruncatedBPTT(2, 4).windows(-1); }), R"(^TruncatedBPTT::windows: steps must be non-negative, got -1)"));
  nn::TruncatedBPTT tbptt(2, 4);
  CHECK(matches(error_of([&] { tbptt.keep(std::numeric_limits<std::int64_t>::min(), {}); }), R"(^TruncatedBPTT::keep: step must be non-negative)"));
}

// --- files ---------------------------------------------------------------------------------------

TEST_CASE("safetensors files: a FIFO is refused without blocking in open") {
  TempDir dir("sizes_fifo");
  const std::string fifo = dir.file("pipe.safetensors");
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  // with no writer, open(O_RDONLY) waited forever
  CHECK(matches(error_of([&] { load_safetensors(fifo); }), R"(^load_safetensors: .*pipe\.safetensors is not a regular file$)"));
}

TEST_CASE("safetensors files: a huge sparse file is judged by its first 8 bytes, not read whole") {
  TempDir dir("sizes_sparse");
  const std::string path = dir.file("sparse.safetensors");
  const auto sparse = [&](std::uint64_t header_length) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    REQUIRE(fd >= 0);
    REQUIRE(::write(fd, &header_length, 8) == 8);
    REQUIRE(::ftruncate(fd, off_t{1} << 34) == 0);  // 16 GiB of zeros, no disk blocks
    ::close(fd);
  };
  sparse(0);
  std::string message;
  CHECK(seconds([&] { message = error_of([&] { load_safetensors(path); }); }) < 2);
  CHECK(matches(message, R"(^safetensors: .*sparse\.safetensors: the header length at byte 0 is 0 \(no JSON header\))"));
  sparse(std::uint64_t{1} << 40);
  CHECK(seconds([&] { message = error_of([&] { load_safetensors(path); }); }) < 2);
  CHECK(matches(message, R"(the header length at byte 0 is 1099511627776, over the 104857600-byte limit)"));
  // a valid header whose tensors do not tile the 16 GiB: refused from the header, data unread
  sparse(2);
  const int fd = ::open(path.c_str(), O_WRONLY);
  REQUIRE(::pwrite(fd, "{}", 2, 8) == 2);
  ::close(fd);
  CHECK(seconds([&] { message = error_of([&] { load_safetensors(path); }); }) < 2);
  CHECK(matches(message, R"(bytes 10 to 17179869184 at the end belong to no tensor)"));
}

TEST_CASE("safetensors files: a header of 10^6 tensors parses in seconds, in the tensors' order") {
  // 1-element tensors whose names sort in the reverse of their data order, and zero-size ones
  // at one offset whose order only the header itself gives
  const int n = kSanitized ? 100000 : 1000000;
  std::string header = "{";
  for (int i = 0; i < n; ++i)
    header += fmt::format("{}\"t{:07}\":{{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[{},{}]}}", i ? "," : "",
                          n - i, 4 * i, 4 * i + 4);
  for (const char* name : {"zb", "za", "zc"})
    header += fmt::format(",\"{}\":{{\"dtype\":\"F64\",\"shape\":[0],\"data_offsets\":[{},{}]}}", name, 4 * n, 4 * n);
  header += "}";
  std::string bytes(8, '\0');
  const std::uint64_t length = header.size();
  std::memcpy(bytes.data(), &length, 8);
  bytes += header;
  for (int i = 0; i < n; ++i) {
    const float v = static_cast<float>(i);
    bytes.append(reinterpret_cast<const char*>(&v), 4);
  }
  NamedTensors loaded;
  const double took = seconds([&] { loaded = parse_safetensors(bytes, "many"); });
  CHECK(took < 30);  // an ordered JSON object took hours
  REQUIRE(loaded.size() == static_cast<std::size_t>(n) + 3);
  CHECK(loaded[0].first == fmt::format("t{:07}", n));
  CHECK(loaded[n - 1].first == "t0000001");
  CHECK(loaded[n - 1].second.item() == n - 1);
  CHECK((loaded[n].first == "zb" && loaded[n + 1].first == "za" && loaded[n + 2].first == "zc"));

  // and the writer: linear too, and in the given order
  NamedTensors many;
  for (int i = 0; i < 100000; ++i) many.emplace_back(fmt::format("w{}", 100000 - i), scalar(i, f64));
  std::string written;
  CHECK(seconds([&] { written = serialize_safetensors(many); }) < 30);
  const NamedTensors back = parse_safetensors(written, "written");
  REQUIRE(back.size() == many.size());
  CHECK((back[0].first == "w100000" && back[99999].first == "w1" && back[99999].second.item() == 99999));
}

TEST_CASE("safetensors files: saving through a symlink writes the link's target") {
  TempDir dir("sizes_symlink");
  fs::create_directories(dir.path / "real");
  const std::string target = dir.file("real/model.safetensors"), link = dir.file("link.safetensors");
  save_safetensors(target, {{"w", tensor({1.0, 2.0}, f64)}});
  fs::create_symlink("real/model.safetensors", link);  // relative to the link's directory
  save_safetensors(link, {{"w", tensor({3.0, 4.0}, f64)}});
  CHECK(fs::is_symlink(link));  // still a link, not replaced by a regular file
  CHECK(load_safetensors(target)[0].second.to_vector<double>() == std::vector<double>{3.0, 4.0});
  CHECK(load_safetensors(link)[0].second.to_vector<double>() == std::vector<double>{3.0, 4.0});
  // a chain of links, and a dangling one (its target is created)
  const std::string second = dir.file("second.safetensors"), dangling = dir.file("dangling.safetensors");
  fs::create_symlink(link, second);
  save_safetensors(second, {{"w", tensor({5.0}, f64)}});
  CHECK(fs::is_symlink(second));
  CHECK(load_safetensors(target)[0].second.to_vector<double>() == std::vector<double>{5.0});
  fs::create_symlink(dir.file("real/new.safetensors"), dangling);
  save_safetensors(dangling, {{"v", tensor({6.0}, f64)}});
  CHECK(fs::is_symlink(dangling));
  CHECK(load_safetensors(dir.file("real/new.safetensors"))[0].first == "v");
  // no temporary file is left beside the link or the target
  for (const auto& entry : fs::recursive_directory_iterator(dir.path))
    CHECK(entry.path().filename().string().find(".tmp.") == std::string::npos);
  // a loop of links is an error naming the path
  fs::create_symlink(dir.file("loop_b"), dir.file("loop_a"));
  fs::create_symlink(dir.file("loop_a"), dir.file("loop_b"));
  CHECK(matches(error_of([&] { save_safetensors(dir.file("loop_a"), {{"w", tensor({1.0}, f64)}}); }),
                R"(^save_safetensors: .*loop_a: too many levels of symbolic links)"));
}

// --- optimizers and schedules --------------------------------------------------------------------

TEST_CASE("optimizer hyper-parameters: NaN, infinite, negative and out-of-range values are errors naming the field") {
  struct Case {
    const char* name;
    std::function<void()> make;
    const char* pattern;
  };
  const std::vector<Case> cases{
      {"SGD inf lr", [] { optim::SGD({param()}, {.lr = kInf}); }, R"(^optimizer: the learning rate must be finite, got inf \(SGD, lr\))"},
      {"SGD NaN lr", [] { optim::SGD({param()}, {.lr = kNaN}); }, R"(^optimizer: the learning rate must be non-negative, got nan \(SGD, lr\))"},
      {"Adam -1 lr", [] { optim::Adam({param()}, {.lr = -1}); }, R"(^optimizer: the learning rate must be non-negative, got -1 \(Adam, lr\))"},
      {"AdamW inf lr", [] { optim::AdamW({param()}, {.lr = kInf}); }, R"(\(AdamW, lr\))"},
      {"SGD NaN momentum", [] { optim::SGD({param()}, {.momentum = kNaN}); }, R"(^SGD: momentum must be non-negative, got nan)"},
      {"SGD inf momentum", [] { optim::SGD({param()}, {.momentum = kInf}); }, R"(^SGD: momentum must be finite, got inf)"},
      {"SGD NaN weight decay", [] { optim::SGD({param()}, {.weight_decay = kNaN}); }, R"(^SGD: weight_decay must be non-negative, got nan)"},
      {"SGD NaN dampening", [] { optim::SGD({param()}, {.momentum = 0.9, .dampening = kNaN}); }, R"(^SGD: dampening must be finite, got nan)"},
      {"Adam beta2 NaN", [] { optim::Adam({param()}, {.beta2 = kNaN}); }, R"(^Adam: betas must be in \[0, 1\), got \(0.9, nan\))"},
      {"Adam beta1 -0.1", [] { optim::Adam({param()}, {.beta1 = -0.1}); }, R"(^Adam: betas must be in \[0, 1\))"},
      {"Adam eps 0", [] { optim::Adam({param()}, {.eps = 0}); }, R"(^Adam: eps must be positive, got 0)"},
      {"Adam eps NaN", [] { optim::Adam({param()}, {.eps = kNaN}); }, R"(^Adam: eps must be non-negative, got nan)"},
      {"Adam weight decay inf", [] { optim::Adam({param()}, {.weight_decay = kInf}); }, R"(^Adam: weight_decay must be finite, got inf)"},
      {"RMSprop alpha 2", [] { optim::RMSprop({param()}, {.alpha = 2}); }, R"(^RMSprop: alpha must be at most 1, got 2)"},
      {"RMSprop eps 0", [] { optim::RMSprop({param()}, {.eps = 0}); }, R"(^RMSprop: eps must be positive, got 0)"},
      {"RMSprop momentum NaN", [] { optim::RMSprop({param()}, {.momentum = kNaN}); }, R"(^RMSprop: momentum must be non-negative, got nan)"},
      {"Adagrad eps -1", [] { optim::Adagrad({param()}, {.eps = -1}); }, R"(^Adagrad: eps must be non-negative, got -1)"},
      {"Adagrad eps 0", [] { optim::Adagrad({param()}, {.eps = 0}); }, R"(^Adagrad: eps must be positive, got 0)"},
      {"Adagrad lr_decay inf", [] { optim::Adagrad({param()}, {.lr_decay = kInf}); }, R"(^Adagrad: lr_decay must be finite, got inf)"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.name);
    const std::string message = error_of(c.make);
    CAPTURE(message);
    CHECK(matches(message, c.pattern));
  }
}

TEST_CASE("optimizer set_lr: NaN, negative and infinite learning rates are refused and the rate kept") {
  optim::Adam adam({param()}, {.lr = 0.1});
  CHECK(matches(error_of([&] { adam.set_lr(kNaN); }), R"(^optimizer: the learning rate must be non-negative, got nan \(Adam, set_lr\))"));
  CHECK(matches(error_of([&] { adam.set_lr(-1); }), R"(^optimizer: the learning rate must be non-negative, got -1 \(Adam, set_lr\))"));
  CHECK(matches(error_of([&] { adam.set_lr(kInf); }), R"(^optimizer: the learning rate must be finite, got inf \(Adam, set_lr\))"));
  CHECK(adam.lr() == 0.1);
  adam.set_lr(0);
  CHECK(adam.lr() == 0);
}

TEST_CASE("optimizer load_state_dict: every loaded field is checked and a failed load changes nothing") {
  Tensor w = param({2, 3});
  optim::Adam adam({w}, {.lr = 0.1});
  sum(w * w).backward();
  adam.step();
  const NamedTensors good = adam.state_dict();
  const auto with = [&](const std::string& key, const Tensor& value) {
    NamedTensors s = good;
    bool found = false;
    for (auto& [name, t] : s)
      if (name == key) t = value, found = true;
    if (!found) s.emplace_back(key, value);
    return s;
  };
  struct Case {
    const char* name;
    NamedTensors state;
    const char* pattern;
  };
  const std::vector<Case> cases{
      {"step -1", with("state.0.step", scalar(-1, f64)), R"(^optimizer load_state_dict: 'state\.0\.step' is -1; a step count must be a whole number >= 0 \(Adam\))"},
      {"step 1.5", with("state.0.step", scalar(1.5, f64)), R"('state\.0\.step' is 1\.5; a step count must be a whole number)"},
      {"step NaN", with("state.0.step", scalar(kNaN, f64)), R"('state\.0\.step' is nan)"},
      {"lr NaN", with("lr", scalar(kNaN, f64)), R"(^optimizer: the learning rate must be non-negative, got nan \(Adam, load_state_dict 'lr'\))"},
      {"lr inf", with("lr", scalar(kInf, f64)), R"(^optimizer: the learning rate must be finite, got inf \(Adam, load_state_dict 'lr'\))"},
      {"parameter count", with("num_parameters", scalar(3, i64)), R"(^optimizer load_state_dict: the state is for 3 parameters, but this Adam has 1)"},
      {"unknown buffer", with("state.0.momentum_buffer", zeros({2, 3}, f64)), R"(^optimizer load_state_dict: unexpected entry 'state\.0\.momentum_buffer': Adam keeps no buffer 'momentum_buffer')"},
      {"negative second moment", with("state.0.exp_avg_sq", full({2, 3}, -1, f64)), R"(^optimizer load_state_dict: 'state\.0\.exp_avg_sq' holds -1; it must be >= 0 \(Adam\))"},
      {"another shape", with("state.0.exp_avg", zeros({3, 2}, f64)), R"(^optimizer load_state_dict: 'state\.0\.exp_avg' has shape \[3, 2\], expected \[2, 3\])"},
  };
  const std::vector<double> before = good.back().second.to_vector<double>();
  for (const auto& c : cases) {
    CAPTURE(c.name);
    const std::string message = error_of([&] { adam.load_state_dict(c.state); });
    CAPTURE(message);
    CHECK(matches(message, c.pattern));
    CHECK(adam.lr() == 0.1);
  }
  // another optimizer's parameter count: the state of a 2-parameter Adam
  Tensor v = param({4});
  optim::Adam two({w, v});
  CHECK(matches(error_of([&] { adam.load_state_dict(two.state_dict()); }), R"(the state is for 2 parameters, but this Adam has 1)"));
  // the good state still loads, and states without a parameter count (older files) too
  adam.load_state_dict(good);
  NamedTensors older;
  for (const auto& entry : good)
    if (entry.first != "num_parameters") older.push_back(entry);
  adam.load_state_dict(older);
  CHECK(adam.state_dict().back().second.to_vector<double>() == before);
  // SGD keeps only its momentum buffer
  optim::SGD sgd({w}, {.lr = 0.1, .momentum = 0.9});
  CHECK(matches(error_of([&] { sgd.load_state_dict({{"state.0.exp_avg", zeros({2, 3}, f64)}}); }), R"(SGD keeps no buffer 'exp_avg')"));
}

TEST_CASE("optimizer duplicate parameters: a tensor listed twice is kept once and stepped once") {
  Tensor shared = param({2}), other = param({2});
  optim::SGD twice({shared, other, shared}, {.lr = 0.1});  // e.g. two modules' parameters with a tied tensor
  CHECK(twice.parameters().size() == 2);
  CHECK(&twice.parameters()[0].impl() == &shared.impl());
  shared.set_grad(ones({2}, f64));
  other.set_grad(ones({2}, f64));
  twice.step();
  CHECK(shared.to_vector<double>() == std::vector<double>{0.9, 0.9});  // not 0.8
  CHECK(other.to_vector<double>() == std::vector<double>{0.9, 0.9});
  Tensor a = param({1});
  optim::Adam adam({a, a, a});
  CHECK(adam.parameters().size() == 1);
  a.set_grad(ones({1}, f64));
  adam.step();
  CHECK(adam.state_dict().size() == 5);  // lr, num_parameters, step, exp_avg, exp_avg_sq
}

TEST_CASE("schedules: NaN, infinite and out-of-range factors are refused") {
  optim::SGD o({param()}, {.lr = 0.1});
  CHECK(matches(error_of([&] { optim::StepLR(o, 1, kNaN); }), R"(^StepLR: gamma must be positive, got nan)"));
  CHECK(matches(error_of([&] { optim::StepLR(o, 1, kInf); }), R"(^StepLR: gamma must be finite, got inf)"));
  CHECK(matches(error_of([&] { optim::ExponentialLR(o, kInf); }), R"(^ExponentialLR: gamma must be finite, got inf)"));
  CHECK(matches(error_of([&] { optim::ExponentialLR(o, kNaN); }), R"(^ExponentialLR: gamma must be positive, got nan)"));
  CHECK(matches(error_of([&] { optim::CosineAnnealingLR(o, 10, kNaN); }), R"(^CosineAnnealingLR: eta_min must be non-negative, got nan)"));
  CHECK(matches(error_of([&] { optim::CosineAnnealingLR(o, 10, kInf); }), R"(^CosineAnnealingLR: eta_min must be finite, got inf)"));
  CHECK(matches(error_of([&] { optim::CosineAnnealingLR(o, 10, -1); }), R"(^CosineAnnealingLR: eta_min must be non-negative, got -1)"));
  CHECK(matches(error_of([&] { optim::LinearLR(o, kNaN); }), R"(^LinearLR: start_factor must be in \(0, 1\])"));
  CHECK(matches(error_of([&] { optim::LinearLR(o, 0.5, kNaN); }), R"(^LinearLR: start_factor must be in \(0, 1\])"));
  using Plateau = optim::ReduceLROnPlateau;
  CHECK(matches(error_of([&] { Plateau(o, Plateau::Mode::min, kNaN); }), R"(^ReduceLROnPlateau: factor must be in \(0, 1\), got nan)"));
  CHECK(matches(error_of([&] { Plateau(o, Plateau::Mode::min, 0.5, 1, kInf); }), R"(^ReduceLROnPlateau: threshold must be finite, got inf)"));
  CHECK(matches(error_of([&] { Plateau(o, Plateau::Mode::min, 0.5, 1, 1e-4, 0, kInf); }), R"(^ReduceLROnPlateau: min_lr must be finite, got inf)"));
  CHECK(o.lr() == 0.1);
  // a rate that grows past double is refused where it is set, and the last finite one kept
  optim::ExponentialLR grow(o, 1e300);
  grow.step();
  CHECK(matches(error_of([&] { grow.step(); }), R"(^optimizer: the learning rate must be finite, got inf \(SGD, set_lr\))"));
  CHECK(o.lr() == doctest::Approx(0.1 * 1e300));
}

TEST_CASE("fit: FitOptions::out = nullptr trains silently instead of crashing") {
  nn::Linear model(2, 1);
  model.to(f64);
  Generator gen(3);
  const Tensor x = uniform({8, 2}, -1, 1, f64, &gen), y = uniform({8, 1}, -1, 1, f64, &gen);
  optim::SGD sgd(model.parameters(), {.lr = 0.1});
  optim::Batches train{2, [&](std::int64_t i) {
                         return optim::StepResult{nn::mse_loss(model(slice(x, 0, 4 * i, 4 * i + 4)), slice(y, 0, 4 * i, 4 * i + 4))};
                       }};
  optim::FitOptions options;
  options.epochs = 2;
  options.out = nullptr;
  optim::History history;
  CHECK_NOTHROW(history = optim::fit(model, sgd, train, options));
  CHECK(history.epochs.size() == 2);
  CHECK(history.epochs[1].at("loss") < history.epochs[0].at("loss"));
}

TEST_CASE("sampling from NaN logits: an error naming the op, not token 0") {
  const Tensor nan_logits = tensor({{1.0, 2.0}, {kNaN, 0.0}}, f64);
  CHECK(matches(error_of([&] { nn::choose_tokens(nan_logits); }),
                R"(^choose_tokens: logits \[2, 2\] hold nan at row 1, column 0: no token can be chosen)"));
  Generator gen(1);
  CHECK(matches(error_of([&] { nn::choose_tokens(nan_logits, {.temperature = 1.0, .generator = &gen}); }),
                R"(^choose_tokens: logits \[2, 2\] hold nan at row 1)"));
  CHECK(matches(error_of([&] { nn::choose_tokens(tensor({{kInf, 0.0}}, f64), {.temperature = 1.0, .generator = &gen}); }),
                R"(^choose_tokens: logits \[1, 2\] hold inf at row 0, column 0)"));
  CHECK(matches(error_of([&] { nn::choose_tokens(tensor({{-kInf, -kInf}}, f64), {.temperature = 1.0, .generator = &gen}); }),
                R"(^choose_tokens: softmax\(logits / 1\) of logits \[1, 2\] is NaN at row 0)"));
  CHECK(matches(error_of([&] { nn::choose_tokens(tensor({{1.0, 2.0}}, f64), {.temperature = kInf}); }),
                R"(^choose_tokens: temperature must be finite, got inf)"));
  // a decoder whose step produces NaN: generate stops with the error
  const nn::DecoderStep step = [](const Tensor& token, const nn::State& state) {
    return std::make_pair(full({token.size(0), 3}, kNaN, f64), state);
  };
  CHECK(matches(error_of([&] { nn::generate(step, zeros({1, 1}, i64), {}, 2); }), R"(^choose_tokens: logits \[1, 3\] hold nan)"));
  // finite logits still choose as before
  CHECK(nn::choose_tokens(tensor({{1.0, 3.0, 2.0}, {-kInf, 0.0, -1.0}}, f64)).to_vector<std::int64_t>() ==
        std::vector<std::int64_t>{1, 1});
}
