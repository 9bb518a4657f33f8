#include "xgrad/core/safetensors.hpp"

#include <algorithm>
#include <atomic>
#include <bit>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <limits>
#include <set>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

namespace xgrad {

static_assert(std::endian::native == std::endian::little, "safetensors I/O assumes a little-endian host");

namespace {

// A plain JSON object (a sorted map): inserting a key is logarithmic. nlohmann's ordered_json
// finds each key by a linear scan, so a header of n tensors took O(n^2) (10^6 tensors: hours).
// The order tensors were written in is kept another way: by their data offsets, and, for ties
// (adjacent zero-size tensors), by the order of the keys, recorded while parsing.
using json = nlohmann::json;

const char* format_name(Dtype d) {
  switch (d) {
    case Dtype::f32: return "F32";
    case Dtype::f64: return "F64";
    case Dtype::i64: return "I64";
  }
  return "?";
}

/// Largest rank accepted when loading: a header of "[0,0,0,...]" must not become a 50-million-axis shape.
constexpr std::size_t kMaxRank = 64;
/// Deepest nesting accepted in a header (it needs 3: the header, a tensor, its shape).
constexpr int kMaxDepth = 16;

/// `text` with control bytes (and, if asked, every non-ASCII byte) written as \xNN, so that a
/// message quoting a hostile file is printable text. Tensor names are valid UTF-8 once parsed;
/// the JSON parser's messages quote raw input bytes, which may not be.
std::string printable(const std::string& text, bool ascii_only = false) {
  std::string out;
  for (const char c : text) {
    const auto b = static_cast<unsigned char>(c);
    if (b < 0x20 || b == 0x7f || (ascii_only && b >= 0x80)) out += fmt::format("\\x{:02x}", b);
    else out += c;
  }
  return out;
}

/// A JSON value for a message: scalars as written (cut at 40 characters), arrays and objects by
/// kind only (a hostile one can be long).
std::string brief(const json& v) {
  if (v.is_array()) return "an array";
  if (v.is_object()) return "an object";
  const std::string text = printable(v.dump());
  return text.size() > 40 ? text.substr(0, 40) + "..." : text;
}

/// A shape array for a message, its entries brief and at most 8 of them.
std::string brief_shape(const json& shape) {
  std::string out = "[";
  for (std::size_t i = 0; i < shape.size() && i < 8; ++i) out += (i ? "," : "") + brief(shape[i]);
  return out + (shape.size() > 8 ? ",...]" : "]");
}

struct Entry {
  std::string name;
  Dtype dtype;
  Shape shape;
  std::uint64_t begin, end;
};

/// The SAX events of a header: fails on nesting deeper than kMaxDepth and on a key given twice
/// in one object; records the keys of the header object itself, in order.
struct HeaderChecks {
  const std::string& source;
  std::uint64_t data_start;
  std::vector<std::string> order;
  std::vector<std::set<std::string>> open_objects;
  int depth = 0;

  using number_integer_t = json::number_integer_t;
  using number_unsigned_t = json::number_unsigned_t;
  using number_float_t = json::number_float_t;
  using string_t = json::string_t;
  using binary_t = json::binary_t;

  bool null() { return true; }
  bool boolean(bool) { return true; }
  bool number_integer(number_integer_t) { return true; }
  bool number_unsigned(number_unsigned_t) { return true; }
  bool number_float(number_float_t, const string_t&) { return true; }
  bool string(string_t&) { return true; }
  bool binary(binary_t&) { return true; }
  bool start_object(std::size_t) {
    open();
    open_objects.emplace_back();
    return true;
  }
  bool key(string_t& key) {
    if (!open_objects.back().insert(key).second)
      fail("safetensors: {}: the header names '{}' twice", source, printable(key));
    if (depth == 1) order.push_back(key);  // a key of the header object itself
    return true;
  }
  bool end_object() {
    open_objects.pop_back();
    --depth;
    return true;
  }
  bool start_array(std::size_t) {
    open();
    return true;
  }
  bool end_array() {
    --depth;
    return true;
  }
  [[noreturn]] bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& e) {
    fail("safetensors: {}: the header (bytes 8 to {}) is not valid JSON: {}", source, data_start,
         printable(e.what(), true));
  }

 private:
  void open() {
    if (depth >= kMaxDepth)
      fail("safetensors: {}: the header (bytes 8 to {}) nests arrays and objects more than {} deep", source,
           data_start, kMaxDepth);
    ++depth;
  }
};

/// The header length of the first 8 bytes of a `file_size`-byte file, checked against the
/// limit and the file's size before anything else is read.
std::uint64_t header_length(const char* first8, std::uint64_t file_size, const std::string& source) {
  if (file_size < 8) fail("safetensors: {}: {} bytes is too short for the 8-byte header length", source, file_size);
  std::uint64_t header_size = 0;
  std::memcpy(&header_size, first8, 8);
  if (header_size > kMaxSafetensorsHeader)
    fail("safetensors: {}: the header length at byte 0 is {}, over the {}-byte limit", source, header_size,
         kMaxSafetensorsHeader);
  if (header_size > file_size - 8)
    fail("safetensors: {}: the header length at byte 0 is {}, past the end of the {}-byte file", source, header_size,
         file_size);
  if (header_size == 0) fail("safetensors: {}: the header length at byte 0 is 0 (no JSON header)", source);
  return header_size;
}

/// Parses and validates the header; data_size is the number of bytes after it.
std::vector<Entry> parse_header(const std::string& text, std::uint64_t data_size, const std::string& source) {
  const std::uint64_t data_start = 8 + text.size();
  // The JSON parser takes a NUL byte for the end of its input and would ignore whatever follows;
  // in JSON a NUL may only appear escaped (\u0000), so a raw one is an error.
  if (const auto nul = text.find('\0'); nul != std::string::npos)
    fail("safetensors: {}: the header (bytes 8 to {}) is not valid JSON: a NUL byte at byte {}", source, data_start,
         8 + nul);
  // A first pass over the text as SAX events rejects a key given twice in any object (which
  // the JSON parser would silently merge) and nesting deeper than a header has (the parser
  // would build a value 100 000 arrays deep), and records the order of the header's keys. The
  // checks used to run as a parse callback, but nlohmann's callback parser scans the parent
  // object for discarded values after every child object: quadratic in the number of tensors.
  HeaderChecks checks{source, data_start};
  json header;
  try {
    json::sax_parse(text, &checks);
    header = json::parse(text);  // the same text again, now known to be valid and shallow
  } catch (const json::exception& e) {
    fail("safetensors: {}: the header (bytes 8 to {}) is not valid JSON: {}", source, data_start,
         printable(e.what(), true));
  }
  const std::vector<std::string>& order = checks.order;  // the tensor names in the header's order
  if (!header.is_object()) fail("safetensors: {}: the header at byte 8 is not a JSON object", source);

  std::vector<Entry> entries;
  entries.reserve(order.size());
  for (const std::string& name : order) {
    if (name == "__metadata__") continue;
    const json& info = header.find(name).value();
    auto bad = [&](const std::string& what) {
      fail("safetensors: {}: tensor '{}' in the header (bytes 8 to {}): {}", source, printable(name), data_start, what);
    };
    if (!info.is_object()) bad("is not an object");
    if (!info.contains("dtype") || !info["dtype"].is_string()) bad("has no dtype");
    const std::string dt = info["dtype"].get<std::string>();
    Entry e{name, Dtype::f32, {}, 0, 0};
    if (dt == "F32") e.dtype = Dtype::f32;
    else if (dt == "F64") e.dtype = Dtype::f64;
    else if (dt == "I64") e.dtype = Dtype::i64;
    else bad(fmt::format("unsupported dtype '{}' (xgrad reads F32, F64, I64)", printable(dt)));
    if (!info.contains("shape") || !info["shape"].is_array()) bad("has no shape");
    const json& shape = info["shape"];
    if (shape.size() > kMaxRank) bad(fmt::format("has a shape of rank {} (at most {} is accepted)", shape.size(), kMaxRank));
    std::uint64_t count = 1;
    for (const auto& d : shape) {
      if (!d.is_number_unsigned()) bad(fmt::format("has a shape entry that is not a non-negative integer: {}", brief(d)));
      const auto v = d.get<std::uint64_t>();
      if (v > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()) ||
          (v != 0 && count > std::numeric_limits<std::uint64_t>::max() / v))
        bad(fmt::format("has a shape {} whose element count overflows", brief_shape(shape)));
      count *= v;
      e.shape.push_back(static_cast<std::int64_t>(v));
    }
    const json* off = info.contains("data_offsets") ? &info["data_offsets"] : nullptr;
    if (!off || !off->is_array() || off->size() != 2 || !(*off)[0].is_number_unsigned() || !(*off)[1].is_number_unsigned())
      bad("needs data_offsets [begin, end] of non-negative integers");
    e.begin = (*off)[0].get<std::uint64_t>();
    e.end = (*off)[1].get<std::uint64_t>();
    if (e.end < e.begin) bad(fmt::format("has data_offsets [{}, {}] with end before begin", e.begin, e.end));
    if (e.end > data_size)
      bad(fmt::format("has data_offsets [{}, {}] past the end of the data (bytes {} to {} of a {}-byte file)", e.begin,
                      e.end, data_start + e.begin, data_start + e.end, data_start + data_size));
    const std::uint64_t item = dtype_size(e.dtype);
    if (count > std::numeric_limits<std::uint64_t>::max() / item || count * item != e.end - e.begin)
      bad(fmt::format("{} {} needs {} bytes but data_offsets [{}, {}] hold {}", dt, to_string(e.shape),
                      count > std::numeric_limits<std::uint64_t>::max() / item ? std::string("too many")
                                                                               : std::to_string(count * item),
                      e.begin, e.end, e.end - e.begin));
    entries.push_back(std::move(e));
  }
  // In data order (the order tensors were written in; ties such as adjacent zero-size tensors
  // keep the header's order), the byte ranges must tile the data exactly: no overlaps, no holes.
  std::stable_sort(entries.begin(), entries.end(),
                   [](const Entry& a, const Entry& b) { return a.begin != b.begin ? a.begin < b.begin : a.end < b.end; });
  std::uint64_t cursor = 0;
  for (const Entry& e : entries) {
    if (e.begin < cursor)
      fail("safetensors: {}: tensor '{}' (bytes {} to {}) overlaps the tensor before it", source, printable(e.name),
           data_start + e.begin, data_start + e.end);
    if (e.begin > cursor)
      fail("safetensors: {}: a hole of unclaimed bytes {} to {} before tensor '{}'", source, data_start + cursor,
           data_start + e.begin, printable(e.name));
    cursor = e.end;
  }
  if (cursor != data_size)
    fail("safetensors: {}: bytes {} to {} at the end belong to no tensor", source, data_start + cursor,
         data_start + data_size);
  return entries;
}

}  // namespace

NamedTensors parse_safetensors(const std::string& bytes, const std::string& source) {
  const std::uint64_t header_size = header_length(bytes.data(), bytes.size(), source);
  const std::string text = bytes.substr(8, header_size);
  const std::uint64_t data_start = 8 + header_size;
  auto entries = parse_header(text, bytes.size() - data_start, source);
  NamedTensors out;
  for (const auto& e : entries) {
    Tensor t = empty(e.shape, e.dtype);
    if (e.end > e.begin) std::memcpy(t.impl().storage->data(), bytes.data() + data_start + e.begin, e.end - e.begin);
    out.emplace_back(e.name, t);
  }
  return out;
}

std::string serialize_safetensors(const NamedTensors& tensors) {
  // The header written entry by entry in the tensors' order (building an ordered_json object
  // would be quadratic in the number of tensors); each entry's keys in the reference order.
  std::string text = "{";
  std::uint64_t offset = 0;
  std::set<std::string> names;
  for (const auto& [name, t] : tensors) {
    if (!names.insert(name).second) fail("save_safetensors: the name '{}' appears twice", printable(name, true));
    // A loader skips this key (it holds the file's metadata): the tensor would silently vanish.
    if (name == "__metadata__")
      fail("save_safetensors: the name '__metadata__' is reserved for the header's metadata; a tensor of that name "
           "would not load back");
    const std::uint64_t bytes = static_cast<std::uint64_t>(t.numel()) * dtype_size(t.dtype());
    const nlohmann::ordered_json info = {{"dtype", format_name(t.dtype())},
                                         {"shape", std::vector<std::int64_t>(t.shape().begin(), t.shape().end())},
                                         {"data_offsets", {offset, offset + bytes}}};
    if (text.size() > 1) text += ',';
    std::string key;
    try {
      key = json(name).dump();  // the JSON writer refuses bytes that are not UTF-8
    } catch (const json::exception&) {
      fail("save_safetensors: the name '{}' is not valid UTF-8 (a JSON header holds only UTF-8 names)",
           printable(name, true));
    }
    text += key + ':' + info.dump();
    offset += bytes;
  }
  text += '}';
  text.append((8 - text.size() % 8) % 8, ' ');  // keeps the data 8-byte aligned, as the reference writer does
  std::string out(8, '\0');
  const std::uint64_t n = text.size();
  std::memcpy(out.data(), &n, 8);
  out += text;
  for (const auto& [name, t] : tensors) {
    const char* p = static_cast<const char*>(t.impl().storage->data()) + t.impl().offset * dtype_size(t.dtype());
    out.append(p, static_cast<std::size_t>(t.numel()) * dtype_size(t.dtype()));
  }
  return out;
}

namespace {

/// Writes all of `bytes` to `fd`, through short writes and interrupted calls.
bool write_all(int fd, const std::string& bytes) {
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (n == 0) errno = EIO;
      return false;
    }
    done += static_cast<std::size_t>(n);
  }
  return true;
}

}  // namespace

namespace {

/// Where a save to `path` lands: a symbolic link is followed (hop by hop, relative targets
/// from the link's directory) to the file it names, which may not exist yet. Saving to a link
/// thus updates the file it points to and leaves the link in place, as writing through it
/// would; the atomic temporary-file-and-rename then happens beside that target.
std::string save_target(const std::string& path) {
  namespace fs = std::filesystem;
  fs::path p = path;
  for (int hop = 0; hop < 40; ++hop) {  // 40: Linux's limit (ELOOP)
    std::error_code error;
    if (!fs::is_symlink(fs::symlink_status(p, error))) return p.string();
    const fs::path target = fs::read_symlink(p, error);
    if (error) fail("save_safetensors: cannot read the symbolic link {}: {}", p.string(), error.message());
    p = target.is_absolute() ? target : p.parent_path() / target;
  }
  fail("save_safetensors: {}: too many levels of symbolic links", path);
}

}  // namespace

void save_safetensors(const std::string& path_or_link, const NamedTensors& tensors) {
  const std::string bytes = serialize_safetensors(tensors);
  // Through a symbolic link to its target: renaming over the link itself would replace the
  // link with a regular file and leave the file it pointed to stale.
  const std::string path = save_target(path_or_link);
  // A temporary file of our own beside the target ("<path>.tmp.<pid>.<n>", created exclusively):
  // two processes or threads saving to one path never write into the same file, and whichever
  // renames last leaves its complete file. A save killed midway leaves only its temporary file.
  static std::atomic<std::uint64_t> counter{0};
  std::string tmp;
  int fd = -1;
  for (int attempt = 0; fd < 0; ++attempt) {
    tmp = fmt::format("{}.tmp.{}.{}", path, ::getpid(), counter++);
    fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    // EEXIST: the leftover of a killed process that had our pid; take the next name
    if (fd < 0 && (errno != EEXIST || attempt == 100))
      fail("save_safetensors: cannot open {} for writing: {}", tmp, std::strerror(errno));
  }
  std::string problem;
  if (!write_all(fd, bytes) || ::fsync(fd) != 0) problem = std::strerror(errno);
  if (::close(fd) != 0 && problem.empty()) problem = std::strerror(errno);
  if (!problem.empty()) {
    ::unlink(tmp.c_str());
    fail("save_safetensors: writing {} failed: {}", tmp, problem);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    problem = std::strerror(errno);
    ::unlink(tmp.c_str());
    fail("save_safetensors: cannot rename {} to {}: {}", tmp, path, problem);
  }
  // The new directory entry must reach the disk too, or a power cut could bring back the old
  // file (or none). Some file systems cannot sync a directory (EINVAL); the data is synced anyway.
  std::string dir = std::filesystem::path(path).parent_path().string();
  if (dir.empty()) dir = ".";
  const int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd >= 0) {
    const bool synced = ::fsync(dir_fd) == 0 || errno == EINVAL;
    problem = std::strerror(errno);
    ::close(dir_fd);
    if (!synced) fail("save_safetensors: {} was written but syncing its directory {} failed: {}", path, dir, problem);
  }
}

NamedTensors load_safetensors(const std::string& path) {
  // POSIX reads, so that a directory, a device or a read error is an error rather than an empty
  // file. O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer forever; it
  // changes nothing for the regular files read below.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) fail("load_safetensors: cannot open {}: {}", path, std::strerror(errno));
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0) fail("load_safetensors: cannot read {}: {}", path, std::strerror(errno));
  if (!S_ISREG(st.st_mode)) fail("load_safetensors: {} is not a regular file", path);
  const auto file_size = static_cast<std::uint64_t>(st.st_size);
  // Reads bytes [at, at + n) into `into`; a file that shrank since fstat is an error.
  auto read_at = [&](std::uint64_t at, std::uint64_t n, char* into, const std::string& what) {
    std::uint64_t done = 0;
    while (done < n) {
      const ssize_t got = ::pread(fd, into + done, n - done, static_cast<off_t>(at + done));
      if (got < 0 && errno == EINTR) continue;
      if (got < 0) fail("load_safetensors: reading {} failed at byte {}: {}", path, at + done, std::strerror(errno));
      if (got == 0)
        fail("load_safetensors: {} ended at byte {} while reading {} (bytes {} to {}): the file shrank", path,
             at + done, what, at, at + n);
      done += static_cast<std::uint64_t>(got);
    }
  };
  // Piece by piece, each checked before the next is read: the 8-byte length (against the limit
  // and the file's size), then the header, then the data of each tensor straight into its
  // storage. A huge file is never read whole to find its header wrong.
  char first8[8] = {0};
  if (file_size >= 8) read_at(0, 8, first8, "the header length");
  const std::uint64_t header_size = header_length(first8, file_size, path);
  std::string text(static_cast<std::size_t>(header_size), '\0');
  read_at(8, header_size, text.data(), "the header");
  const std::uint64_t data_start = 8 + header_size;
  const auto entries = parse_header(text, file_size - data_start, path);
  NamedTensors out;
  out.reserve(entries.size());
  for (const auto& e : entries) {
    Tensor t = empty(e.shape, e.dtype);
    read_at(data_start + e.begin, e.end - e.begin, static_cast<char*>(t.impl().storage->data()),
            fmt::format("tensor '{}'", printable(e.name)));
    out.emplace_back(e.name, t);
  }
  return out;
}

}  // namespace xgrad
